"""The rig's stand-in for everything behind the SECC's effects: a simulated EVSE (contactors,
isolation monitor, DC power stage, meter), the local PKI (``pnc_bridge.pki.validate_chain``
against the test PKI's MO root), signature checks, a CPS for contract installation
(``hil.cps``) and a scripted CSMS (Authorize, schedules).

Rules of this module:

- :meth:`RigPorts.answer` is the synchronous answer to one effect (``None`` for
  notifications); :meth:`RigPorts.fulfil` is the same for the asyncio adapter, after the
  behaviour's delay (``math.inf``: the port never answers, as a silent CSMS).
- The simulated EVSE follows the session: ``SetDcTarget`` sets the output voltage and
  current at once (within the limits both ways: a negative current discharges the EV, up
  to the discharge limits), ``OpenContactor`` drops the current, the meter integrates
  power over time into imported and exported energy (:meth:`advance_to`). Listeners get
  each new :class:`~pnc_bridge.secc.EvseStatus` (the adapter's ``update_evse_status``).
- ISO 15118-20: with a -20 test PKI (P-521), contract installation is answered by
  ``hil.cps20``; :func:`v2g_schedule` is a schedule that charges, discharges, charges.
- It is a rig component: the bridge (issue 9, part 2) fulfils the same effects with the EVSE
  driver, the trust store and OCPP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Callable

from cryptography import x509

from hil.cps import answer_certificate_request
from hil.cps20 import answer_certificate_installation_20
from pnc_bridge import xmldsig
from pnc_bridge.pki import TestPki, validate_chain
from pnc_bridge.secc import EvseStatus, MeterReading
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    AuthorizeExternalPaymentResult,
    AuthorizeWithCsms,
    AuthorizeWithCsmsResult,
    CloseContactor,
    CloseContactorResult,
    Effect,
    EffectFailed,
    EffectResult,
    GetChargingSchedule,
    GetChargingScheduleResult,
    Isolation,
    OpenContactor,
    OpenContactorResult,
    RequestEvCertificate,
    RequestEvCertificateResult,
    SetDcTarget,
    StartCableCheck,
    StartCableCheckResult,
    ValidateContractChain,
    ValidateContractChainResult,
    VerifyAuthorizationSignature,
    VerifyAuthorizationSignatureResult,
    VerifyMeteringReceiptSignature,
    VerifyMeteringReceiptSignatureResult,
)
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod

__all__ = ["RigBehaviour", "RigPorts", "default_schedules", "rig_evse_status", "v2g_schedule"]


def default_schedules(dc: bool) -> tuple[ChargingSchedule, ...]:
    """A three-period schedule as a CSMS might send it: full power, half for an hour, full."""
    full = 50000.0 if dc else 11000.0
    return (
        ChargingSchedule(
            1, LimitUnit.W, (SchedulePeriod(0, full), SchedulePeriod(1800, full / 2), SchedulePeriod(5400, full)), duration=None
        ),
    )


def v2g_schedule(
    *, period_s: int = 1800, charge_w: float = 11000.0, discharge_w: float = 7000.0, setpoints: bool = False, id: int = 1,
) -> ChargingSchedule:
    """Charge, then discharge, then charge again (``period_s`` each, then charging on), as a
    V2X CSMS sends it: the discharging period has charge limit 0 and a discharge limit
    (OCPP 2.1 ``dischargeLimit``, negative). With ``setpoints`` each period also carries the
    power dynamic control steers to (+charge, -discharge, +charge)."""
    return ChargingSchedule(id, LimitUnit.W, (
        SchedulePeriod(0, charge_w, setpoint=charge_w if setpoints else None),
        SchedulePeriod(period_s, 0.0, discharge_limit=-discharge_w, setpoint=-discharge_w if setpoints else None),
        SchedulePeriod(2 * period_s, charge_w, setpoint=charge_w if setpoints else None),
    ))


def rig_evse_status() -> EvseStatus:
    return EvseStatus(
        max_current_a=200.0, max_power_w=150000.0, max_voltage_v=500.0, min_current_a=0.0, min_voltage_v=150.0,
        nominal_voltage_v=230.0, current_regulation_tolerance_a=1.0, peak_current_ripple_a=1.0,
        meter=MeterReading("RIG-METER-1", 0.0, status=0, timestamp=None, discharged_energy_wh=0.0),
        max_discharge_power_w=50000.0, max_discharge_current_a=125.0,
    )


@dataclass(frozen=True)
class RigBehaviour:
    """How the stand-ins answer. ``delays`` and ``fail`` are keyed by effect class name."""

    eim_accept: bool = True
    csms_status: str = "Accepted"
    csms_certificate_status: str | None = "Accepted"
    isolation: Isolation = Isolation.Valid
    contactor_ok: bool = True
    schedules: tuple[ChargingSchedule, ...] | None = None  # None: default_schedules()
    local_contract_validation: bool = True
    delays: dict[str, float] = field(default_factory=dict)
    fail: frozenset[str] = frozenset()


class RigPorts:
    def __init__(
        self,
        pki: TestPki | None,
        behaviour: RigBehaviour | None = None,
        *,
        status: EvseStatus | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        mo_roots: list[x509.Certificate] | None = None,
    ) -> None:
        """``mo_roots``: the MO roots the local contract validation trusts (default: the test
        PKI's). ``clock``: UTC time for certificate checks."""
        self.pki = pki
        self.mo_roots = mo_roots if mo_roots is not None else ([pki.mo_root] if pki is not None else [])
        self.behaviour = behaviour if behaviour is not None else RigBehaviour()
        self.status = status or rig_evse_status()
        self.clock = clock
        self.effects: list[Effect] = []
        self.listeners: list[Callable[[EvseStatus], None]] = []
        self.adapters: list = []  # SeccAdapters served by these ports (setpoints go to them)
        self.contactor_closed = False
        self._time: float | None = None
        self._unix_base = clock().timestamp()

    # -- the simulated EVSE ----------------------------------------------------- #
    def _set(self, **changes) -> None:
        self.status = replace(self.status, **changes)
        for listener in self.listeners:
            listener(self.status)

    def advance_to(self, now: float) -> None:
        """Integrate the output power into the meter up to ``now`` (monotonic seconds)."""
        if self._time is not None and now > self._time and self.status.meter is not None:
            power = self.status.present_voltage_v * self.status.present_current_a
            meter = self.status.meter
            energy = power * (now - self._time) / 3600.0
            if energy >= 0:
                meter = replace(meter, energy_wh=meter.energy_wh + energy)
            else:
                meter = replace(meter, discharged_energy_wh=(meter.discharged_energy_wh or 0.0) - energy)
            self._set(meter=replace(meter, timestamp=int(self._unix_base + now)))
        self._time = now

    def delay(self, effect: Effect) -> float:
        return self.behaviour.delays.get(type(effect).__name__, 0.0)

    async def fulfil(self, effect: Effect) -> EffectResult | None:
        delay = self.delay(effect)
        if math.isinf(delay):
            await asyncio.Event().wait()  # never answers; cancelled when the session ends
        if delay > 0:
            await asyncio.sleep(delay)
        self.advance_to(asyncio.get_running_loop().time())
        return self.answer(effect)

    # -- answers --------------------------------------------------------------- #
    def answer(self, effect: Effect) -> EffectResult | None:
        self.effects.append(effect)
        b = self.behaviour
        name = type(effect).__name__
        if name in b.fail:
            return EffectFailed(effect.id, f"{name} failed (rig)")
        if isinstance(effect, SetDcTarget):
            s = self.status
            voltage = min(effect.voltage_v, s.max_voltage_v)
            current = min(effect.current_a, s.max_current_a, s.max_power_w / voltage if voltage > 0 else 0.0)
            discharge = min(s.max_discharge_current_a, s.max_discharge_power_w / voltage if voltage > 0 else 0.0)
            current = max(current, -discharge)
            self._set(present_voltage_v=voltage, present_current_a=current if self.contactor_closed else 0.0)
            return None
        if isinstance(effect, CloseContactor):
            self.contactor_closed = b.contactor_ok
            return CloseContactorResult(effect.id, closed=b.contactor_ok, reason="" if b.contactor_ok else "contactor stuck open")
        if isinstance(effect, OpenContactor):
            self.contactor_closed = False
            self._set(present_current_a=0.0, present_voltage_v=0.0)
            return OpenContactorResult(effect.id, opened=True)
        if isinstance(effect, StartCableCheck):
            self._set(isolation=b.isolation, present_voltage_v=0.0)
            return StartCableCheckResult(effect.id, isolation=b.isolation)
        if isinstance(effect, AuthorizeExternalPayment):
            return AuthorizeExternalPaymentResult(effect.id, accepted=b.eim_accept, reason="" if b.eim_accept else "not authorized")
        if isinstance(effect, AuthorizeWithCsms):
            return AuthorizeWithCsmsResult(effect.id, status=b.csms_status, certificate_status=b.csms_certificate_status)
        if isinstance(effect, ValidateContractChain):
            if not b.local_contract_validation:
                return ValidateContractChainResult(effect.id, None, "left to the CSMS")
            verdict = validate_chain(effect.leaf, list(effect.sub_cas), purpose="contract",
                                     store=self.mo_roots, at=self.clock(), emaid=effect.emaid)
            return ValidateContractChainResult(effect.id, verdict.response_code, verdict.reason)
        if isinstance(effect, VerifyAuthorizationSignature):
            verdict = xmldsig.verify_authorization_req(effect.message, effect.certificate)
            return VerifyAuthorizationSignatureResult(effect.id, verdict.valid, verdict.name)
        if isinstance(effect, VerifyMeteringReceiptSignature):
            verdict = xmldsig.verify_metering_receipt_req(effect.message, effect.certificate)
            return VerifyMeteringReceiptSignatureResult(effect.id, verdict.valid, verdict.name)
        if isinstance(effect, RequestEvCertificate):
            if self.pki is None:
                return RequestEvCertificateResult(effect.id, False, b"", "no CPS in this rig")
            if "-20" in effect.schema_version:
                return RequestEvCertificateResult(
                    effect.id, True, answer_certificate_installation_20(effect.exi_request, self.pki, at=self.clock()))
            return RequestEvCertificateResult(effect.id, True, answer_certificate_request(effect.exi_request, self.pki))
        if isinstance(effect, GetChargingSchedule):
            dc = effect.needs is not None and effect.needs.energy_transfer_mode.is_dc
            return GetChargingScheduleResult(effect.id, b.schedules if b.schedules is not None else default_schedules(dc))
        return None  # notifications: StartTransaction, ReportEvStatus, ...



class RigSecc:
    """Our SECC cores behind the ``pnc_bridge.link`` TCP and/or TLS servers, fulfilled by
    :class:`RigPorts`: ``async with RigSecc(config, ports, pki=pki, tls=True) as secc:`` then
    connect to ``secc.tcp_port`` / ``secc.tls_port``. ``ports`` is one EVSE shared by every
    connection (one cable), or a callable making one per connection (many EVSEs, as in the
    benchmark). ``outcomes`` collects the last step of every finished connection;
    ``on_step(adapter, step)`` sees every step."""

    def __init__(
        self,
        config,
        ports: "RigPorts | Callable[[], RigPorts]",
        *,
        pki: TestPki | None = None,
        tcp: bool = True,
        tls: bool = False,
        host: str = "::1",
        interface: str | None = None,
        on_step: Callable | None = None,
        max_connections: int = 8,
        tcp_port: int = 0,
        tls_port: int = 0,
        pki20: TestPki | None = None,
    ) -> None:
        if tls and pki is None and pki20 is None:
            raise ValueError("TLS needs a test PKI for the SECC certificate")
        self.config, self.ports, self.pki, self.pki20 = config, ports, pki, pki20
        self._want_tcp, self._want_tls = tcp, tls
        self.host, self.interface = host, interface
        self.on_step = on_step
        self.max_connections = max_connections
        self.outcomes: list = []
        self.adapters: list = []
        self._ports_wanted = (tcp_port, tls_port)
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        self._servers: list = []
        from pnc_bridge.secc._adapter import ResumeSlot

        self.resume = ResumeSlot()

    async def _handle(self, conn) -> None:
        from pnc_bridge.secc._adapter import SeccAdapter

        hook = None
        if self.on_step is not None:
            def hook(step, on_step=self.on_step):
                on_step(adapter, step)
        ports = self.ports if isinstance(self.ports, RigPorts) else self.ports()
        adapter = SeccAdapter(conn, self.config, ports.fulfil, resume=self.resume, on_step=hook)
        ports.adapters.append(adapter)
        self.adapters.append(adapter)
        ports.listeners.append(adapter.update_evse_status)
        adapter.update_evse_status(ports.status)
        try:
            self.outcomes.append(await adapter.run())
        finally:
            ports.listeners.remove(adapter.update_evse_status)

    async def __aenter__(self) -> "RigSecc":
        from pnc_bridge.link.server import V2gtpServer
        from pnc_bridge.link.tls import (
            FileCredentialProvider,
            SeccCredential,
            StaticCredentialProvider,
            TlsProfile,
            TlsServerConfig,
        )
        from pnc_bridge.pki import Purpose

        if self._want_tcp:
            server = V2gtpServer(self._handle, host=self.host, port=self._ports_wanted[0], interface=self.interface,
                                 max_connections=self.max_connections)
            await server.start()
            self._servers.append(server)
            self.tcp_port = server.port
        if self._want_tls:
            if self.pki20 is None:
                tls = TlsServerConfig(credentials=FileCredentialProvider(
                    str(self.pki.chain_paths[Purpose.SECC]), str(self.pki["secc_leaf"].key_path)))
            else:
                # one port for both: TLS 1.2 for -2 EVs (P-256 chain), TLS 1.3 with mutual
                # authentication for -20 EVs (P-521 / Ed448 chain; the EV's OEM chain is checked)
                credentials = [SeccCredential(chain=(leaf, *subs), key=p.key("secc_leaf"), root=p.v2g_root)
                               for p in (self.pki, self.pki20) if p is not None for leaf, subs in [p.chain("secc")]]
                profiles = (TlsProfile.ISO15118_2, TlsProfile.ISO15118_20) if self.pki is not None else (TlsProfile.ISO15118_20,)
                tls = TlsServerConfig(credentials=StaticCredentialProvider(credentials), profiles=profiles,
                                      ev_trust_anchors=lambda: [self.pki20.oem_root])
            server = V2gtpServer(self._handle, tls=tls, host=self.host,
                                 port=self._ports_wanted[1], interface=self.interface, max_connections=self.max_connections)
            await server.start()
            self._servers.append(server)
            self.tls_port = server.port
        return self

    async def __aexit__(self, *exc) -> None:
        for server in self._servers:
            await server.close()
