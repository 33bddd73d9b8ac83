"""Real ISO 15118-20 sessions and messages from ../shared/exi-vectors/all.jsonl.gz, rebuilt for
replay into our SECC core.

What the vector file gives (see its README and tests/secc/replay.py):

- dSPACE DS5366 captures (the test system's EV against Josev's SECC, over TLS 1.3): each
  distinct EXI document once, sorted by type, the ``direction`` field swapped (a request is
  recognised by its name). -20 messages carry the EV's TimeStamp (unix seconds) in their
  header, so a session's requests are put back in order by it, and by the standard's
  sequence within one second. The captured charger's answers tell how our SECC must be
  configured to mean the same thing by the same numbers: its ServiceDiscoveryRes (the
  services), its ServiceDetailRes (which control mode the ParameterSetID the EV selected
  stands for) and its ScheduleExchangeRes (the ScheduleTuples, with their IDs and powers,
  which the rig's CSMS then offers through our SECC).
- EVerest libiso15118 unit-test messages: single requests, not sessions. Each is fed to a
  fresh core walked (with our own valid requests) to the state that expects it, with the
  service and control mode the request itself implies.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from pnc_bridge import exi
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc.effects import ControlMode, EnergyService
from pnc_bridge.secc.iso20 import read_parameter_set
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod, from_rational
from tests.conftest import SHARED

ALL_VECTORS = SHARED / "exi-vectors" / "all.jsonl.gz"
DS5366 = "dspace-group/dsV2Gshark"
LIBISO = "EVerest/libiso15118"

ORDER = [
    "SessionSetupReq", "AuthorizationSetupReq", "CertificateInstallationReq", "AuthorizationReq", "ServiceDiscoveryReq",
    "ServiceDetailReq", "ServiceSelectionReq", "AC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq",
    "ScheduleExchangeReq", "DC_CableCheckReq", "DC_PreChargeReq", "PowerDeliveryReq:start", "AC_ChargeLoopReq",
    "DC_ChargeLoopReq", "MeteringConfirmationReq", "PowerDeliveryReq:stop", "DC_WeldingDetectionReq", "SessionStopReq",
]
#: requests a charger may answer with EVSEProcessing=Ongoing (the EV repeats them)
ONGOING = {"AuthorizationReq", "ScheduleExchangeReq", "DC_CableCheckReq"}


def key_name(message) -> str:
    name = type(message).__name__
    if name == "PowerDeliveryReq":
        return "PowerDeliveryReq:stop" if message.charge_progress is m.ChargeProgress.Stop else "PowerDeliveryReq:start"
    return name


@lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    with gzip.open(ALL_VECTORS, "rt") as fh:
        return tuple(r for r in (json.loads(line) for line in fh)
                     if r["ns"].startswith("iso20") and not r.get("negative") and r["source"]["repo"] in (DS5366, LIBISO))


@dataclass
class Session20:
    path: str
    dc: bool
    requests: list  # decoded requests, in order
    charger: dict[str, list]  # response name -> the captured charger's responses
    service: EnergyService | None = None
    control_mode: ControlMode | None = None
    control_modes: tuple[ControlMode, ...] = ()
    schedules: tuple[ChargingSchedule, ...] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[-1].removesuffix(".pcapng")


def _order(requests: list) -> list:
    def key(item):
        i, message = item
        return (message.header.time_stamp, ORDER.index(key_name(message)),
                # an EV still processing its power profile comes before the final PowerDeliveryReq
                0 if getattr(message, "ev_processing", None) is m.Processing.Ongoing else 1, i)

    return [msg for _, msg in sorted(enumerate(requests), key=key)]


def _schedules(res: m.ScheduleExchangeRes) -> tuple[ChargingSchedule, ...] | None:
    """The captured charger's ScheduleTuples as the schedules a CSMS would have sent."""
    mode = res.scheduled_se_res_control_mode
    if mode is None:
        return None
    out = []
    for tup in mode.schedule_tuple:
        charge = tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
        discharge = (tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
                     if tup.discharging_schedule is not None else [None] * len(charge))
        periods, start = [], 0
        for c, d in zip(charge, discharge):
            periods.append(SchedulePeriod(start, from_rational(c.power), discharge_limit=None if d is None else -abs(from_rational(d.power))))
            start += c.duration
        out.append(ChargingSchedule(tup.schedule_tuple_id, LimitUnit.W, tuple(periods), duration=start))
    return tuple(out)


@lru_cache(maxsize=1)
def ds5366_sessions() -> tuple[Session20, ...]:
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for r in _rows():
        if r["source"]["repo"] == DS5366:
            grouped[(r["source"]["path"], r["source"]["tcp_session"])].append(r)
    out = []
    for (path, _), rows in sorted(grouped.items()):
        requests, charger = [], defaultdict(list)
        for r in rows:
            message = exi.decode(r["ns"], bytes.fromhex(r["hex"]), strict=False)
            (requests if r["msg"].endswith("Req") else charger[r["msg"]]).append(message)
        dc = any(r["ns"] == "iso20-dc" for r in rows)
        session = Session20(path, dc, _order(requests), dict(charger))
        selection = next(q for q in requests if isinstance(q, m.ServiceSelectionReq)).selected_energy_transfer_service
        session.service = EnergyService.from_service_id(selection.service_id)
        detail = next(res for res in charger["ServiceDetailRes"] if res.service_id == selection.service_id)
        chosen = next(read_parameter_set(p) for p in detail.service_parameter_list.parameter_set
                      if p.parameter_set_id == selection.parameter_set_id)
        session.control_mode = ControlMode.ScheduledControl if chosen["ControlMode"] == 1 else ControlMode.DynamicControl
        other = ControlMode.DynamicControl if session.control_mode is ControlMode.ScheduledControl else ControlMode.ScheduledControl
        # our parameter sets are numbered per control mode in the configured order: put the
        # EV's choice where its ParameterSetID points
        session.control_modes = (session.control_mode, other)
        if "ScheduleExchangeRes" in charger:
            session.schedules = _schedules(charger["ScheduleExchangeRes"][0])
        out.append(session)
    return tuple(out)


@dataclass
class Single:
    """One libiso15118 request with what it implies about its session."""

    id: str
    request: object
    dc: bool
    service: EnergyService
    control_mode: ControlMode


def _implied(message) -> tuple[bool, EnergyService, ControlMode]:
    name = type(message).__name__
    mode = getattr(message, "cl_req_control_mode", None) or getattr(message, "ac_cpd_req_energy_transfer_mode", None) \
        or getattr(message, "dc_cpd_req_energy_transfer_mode", None)
    mode_name = type(mode).__name__ if mode is not None else ""
    dc = not name.startswith("AC_")
    bpt = mode_name.startswith("BPT_")
    control = ControlMode.DynamicControl if "Dynamic" in mode_name else ControlMode.ScheduledControl
    if isinstance(message, m.ScheduleExchangeReq):
        control = ControlMode.DynamicControl if message.dynamic_se_req_control_mode is not None else ControlMode.ScheduledControl
    if isinstance(message, (m.ServiceDetailReq, m.ServiceSelectionReq)):
        sid = message.service_id if isinstance(message, m.ServiceDetailReq) else message.selected_energy_transfer_service.service_id
        service = EnergyService.from_service_id(sid)
        return service.is_dc, service, control
    service = (EnergyService.DC_BPT if bpt else EnergyService.DC) if dc else (EnergyService.AC_BPT if bpt else EnergyService.AC)
    return dc, service, control


@lru_cache(maxsize=1)
def libiso_requests() -> tuple[Single, ...]:
    out = []
    for r in _rows():
        if r["source"]["repo"] != LIBISO or not r["msg"].endswith("Req"):
            continue
        message = exi.decode(r["ns"], bytes.fromhex(r["hex"]), strict=False)
        dc, service, control = _implied(message)
        out.append(Single(f"{r['source']['path'].rsplit('/', 1)[-1]}:{r['msg']}:{r['id'][:6]}", message, dc, service, control))
    return tuple(sorted(out, key=lambda s: s.id))
