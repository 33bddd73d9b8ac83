"""ISO 15118-20 energy services and their parameter sets (ServiceDiscovery, ServiceDetail,
ServiceSelection), as pure functions of the configuration.

Rules of this module:

- Service IDs are those of :class:`~pnc_bridge.secc.effects.EnergyService` (1 AC, 2 DC,
  5 AC_BPT, 6 DC_BPT, as Josev's ``ServiceV20`` numbers them). A connection offers the
  configured services of the handshake's family only (``-20:DC``: DC and DC_BPT).
- Parameter names and values as the captured DS5366 sessions and Josev's ``ParameterName``
  spell them: ``Connector``, ``ControlMode`` (1 scheduled, 2 dynamic), ``EVSENominalVoltage``
  (AC), ``MobilityNeedsMode``, ``Pricing`` (0 none, 2 price levels), and for BPT
  ``BPTChannel`` and ``GeneratorMode``; every value is an ``intValue``.
- Each service gets one parameter set per configured control mode with ``Pricing`` 0, and
  scheduled control one more with ``Pricing`` 2 (price levels, sent when the CSMS gives a
  tariff). IDs are numbered from 1 in that order, the same for every service.
"""

from __future__ import annotations

from dataclasses import dataclass

from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc._common import EvseStatus, Iso20Config
from pnc_bridge.secc.effects import ControlMode, EnergyService, MobilityNeedsMode

__all__ = ["ParameterSetInfo", "offered_services", "parameter_list", "parameter_sets", "read_parameter_set"]

PRICING_NONE = 0
PRICING_LEVELS = 2


@dataclass(frozen=True, slots=True)
class ParameterSetInfo:
    """One offered parameter set of one energy service, as the session needs it."""

    id: int
    service: EnergyService
    control_mode: ControlMode
    pricing: int
    connector: int
    mobility_needs_mode: MobilityNeedsMode


def offered_services(config: Iso20Config, dc: bool) -> tuple[EnergyService, ...]:
    """The configured services of this connection's family, in the configured order."""
    return tuple(s for s in config.services if s.is_dc == dc)


def parameter_sets(config: Iso20Config, service: EnergyService) -> tuple[ParameterSetInfo, ...]:
    connector = config.dc_connector if service.is_dc else config.ac_connector
    out: list[ParameterSetInfo] = []
    for mode in config.control_modes:
        pricings = (PRICING_NONE, PRICING_LEVELS) if mode is ControlMode.ScheduledControl else (PRICING_NONE,)
        for pricing in pricings:
            out.append(ParameterSetInfo(len(out) + 1, service, mode, pricing, connector, config.mobility_needs_mode))
    return tuple(out)


def _int(name: str, value: int) -> m.Parameter:
    return m.Parameter(name=name, int_value=int(value))


def parameter_list(config: Iso20Config, status: EvseStatus, service: EnergyService) -> m.ServiceParameterList:
    """ServiceDetailRes ``ServiceParameterList`` for ``service``."""
    sets = []
    for info in parameter_sets(config, service):
        parameters = [_int("Connector", info.connector), _int("ControlMode", info.control_mode.parameter)]
        if not service.is_dc:
            parameters.append(_int("EVSENominalVoltage", round(status.nominal_voltage_v)))
        parameters += [_int("MobilityNeedsMode", info.mobility_needs_mode.parameter), _int("Pricing", info.pricing)]
        if service.is_bpt:
            parameters += [_int("BPTChannel", config.bpt_channel), _int("GeneratorMode", config.generator_mode)]
        sets.append(m.ParameterSet(parameter_set_id=info.id, parameter=parameters))
    return m.ServiceParameterList(parameter_set=sets)


def read_parameter_set(parameter_set: m.ParameterSet) -> dict[str, int | bool | str | float | None]:
    """A ParameterSet as ``{name: value}`` (the first value element that is set), for the
    EV emulator and for logs."""
    out: dict[str, int | bool | str | float | None] = {}
    for p in parameter_set.parameter:
        value = next((v for v in (p.int_value, p.short_value, p.byte_value, p.bool_value, p.finite_string) if v is not None), None)
        if value is None and p.rational_number is not None:
            value = p.rational_number.value * 10.0 ** p.rational_number.exponent
        out.setdefault(p.name, value)
    return out
