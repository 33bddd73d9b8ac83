"""``pnc-bridge demo``: one complete charging session on this machine, with nothing to set up.

Everything runs on loopback in one process, in a temporary directory:

- a test PKI (``pnc_bridge.pki.generate_test_pki``) and a trust store made from it (V2G, MO
  and OEM roots, the SECC certificate);
- the ``hil.csms`` CSMS emulator (on the ``ocpp`` package) with the Plug & Charge behaviour
  of ``hil.demo_csms``: Get15118EVCertificate answered by a CPS stand-in, a SetChargingProfile
  with a multi-period TxProfile after NotifyEVChargingNeeds, a remote start for EIM;
- the bridge: ``pnc_bridge.bridge.Service``, exactly what ``pnc-bridge run`` runs, with the
  EVSE simulator;
- the EV emulator (``hil.ev``) over TLS (Plug & Charge, contract installation) or TCP (EIM);
  ``iso20-dc-bpt``: the ISO 15118-20 EV over TLS 1.3 (DC BPT, Plug & Charge with contract
  installation), the EVSE able to discharge, and a CSMS (OCPP 2.1 by default, ``--ocpp
  2.0.1``) whose TxProfile charges, discharges and charges again.

It prints the timeline of the session as the SECC saw it (EV ⇄ SECC) and as the CSMS saw it
(SECC ⇄ CSMS), with the key fields of each message and the elapsed time, then checks the
outcome: exit status 0 when the session ran as it should, 1 with the reasons otherwise.
``--json`` prints the same as one JSON document for rigs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PROTOCOLS", "DemoResult", "run_demo"]

log = logging.getLogger("hil.demo")

@dataclass(frozen=True)
class Protocol:
    title: str
    schema: str  # the EV's protocol: iso2 / din / iso20
    dc: bool
    pnc: bool
    loops: int = 20  # default charge-loop messages

    @property
    def iso20(self) -> bool:
        return self.schema == "iso20"


#: ``--protocol`` choices.
PROTOCOLS: dict[str, Protocol] = {
    "iso2-dc": Protocol("ISO 15118-2 DC, Plug & Charge with contract installation", "iso2", True, True),
    "iso2-ac": Protocol("ISO 15118-2 AC (three-phase), Plug & Charge with contract installation", "iso2", False, True),
    "din-dc": Protocol("DIN SPEC 70121 DC, EIM authorized by a remote start", "din", True, False),
    "iso20-dc-bpt": Protocol("ISO 15118-20 DC BPT, Plug & Charge over TLS 1.3: charge, discharge, charge again",
                             "iso20", True, True, loops=60),
}
#: The -20 demo: the EVSE can give back this much (``[[evse]] max_discharge_power_w``), the
#: CSMS's schedule charges at CHARGE_W, discharges at DISCHARGE_W, charges again.
DEMO_DISCHARGE_CAPABILITY_W = 30000.0
DEMO_CHARGE_W = 20000.0
DEMO_DISCHARGE_W = 7000.0
#: seconds from the transaction's start to the first charge-loop message (authorization,
#: schedule exchange, cable check, pre-charge) that the schedule allows for
DEMO_LEAD_S = 1


def v2x_schedule(loops: int, interval: float, ocpp: str) -> list[dict[str, Any]]:
    """The -20 demo's TxProfile chargingSchedule: charge for the first third of the charge
    loop, discharge for the second, charge again. OCPP 2.0.1 says discharge with a negative
    ``limit``; OCPP 2.1 natively with ``dischargeLimit`` and a central ``setpoint``."""
    third = max(1.0, loops * interval / 3)
    t1, t2 = round(DEMO_LEAD_S + third), round(DEMO_LEAD_S + 2 * third)
    t2 = max(t2, t1 + 1)
    if ocpp == "2.1":
        discharge = {"startPeriod": t1, "limit": 0.0, "dischargeLimit": -DEMO_DISCHARGE_W, "setpoint": -DEMO_DISCHARGE_W,
                     "operationMode": "CentralSetpoint"}
    else:
        discharge = {"startPeriod": t1, "limit": -DEMO_DISCHARGE_W}
    return [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": DEMO_CHARGE_W}, discharge, {"startPeriod": t2, "limit": DEMO_CHARGE_W}]}]


@dataclass
class Entry:
    t: float  # monotonic seconds
    direction: str
    message: str
    fields: dict[str, Any]


@dataclass
class DemoResult:
    ok: bool
    protocol: str
    problems: list[str]
    entries: list[Entry] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "protocol": self.protocol,
            "problems": self.problems,
            "summary": self.summary,
            "timeline": [
                {"t_ms": round((e.t - self.t0) * 1000, 1), "direction": e.direction, "message": e.message, "fields": e.fields}
                for e in self.entries
            ],
        }


# --------------------------------------------------------------------------- #
# Key fields                                                                   #
# --------------------------------------------------------------------------- #


def _pv(p: Any, unit: str = "") -> str | None:
    """A PhysicalValue, or a plain number in ``unit`` (DIN 70121's PMax is a short in W)."""
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        value = float(p)
    elif p is None or not hasattr(p, "multiplier"):
        return None
    else:
        value = p.value * 10.0 ** p.multiplier
        unit = getattr(getattr(p, "unit", None), "value", "") or ""
    if unit == "W" and abs(value) >= 1000:
        return f"{value / 1000:g} kW"
    return f"{value:g} {unit}".strip()


def _enum(x: Any) -> Any:
    return getattr(x, "value", x)


def _schedules(sa: Any) -> list[str]:
    out = []
    for t in getattr(sa, "sa_schedule_tuple", None) or []:
        entries = t.p_max_schedule.p_max_schedule_entry
        periods = ", ".join(f"{e.time_interval.start}s {_pv(e.p_max, 'W')}" for e in entries)
        tariff = " + SalesTariff" if getattr(t, "sales_tariff", None) is not None else ""
        out.append(f"#{t.sa_schedule_tuple_id}: {periods}{tariff}")
    return out


def v2g_fields(body: Any) -> dict[str, Any]:
    """The key fields of one ISO 15118-2 / DIN 70121 message body."""
    f: dict[str, Any] = {}
    for attr in ("response_code", "evse_processing", "selected_payment_option", "charge_progress", "charging_session",
                 "requested_energy_transfer_mode", "e_maid", "receipt_required", "ready_to_charge_state"):
        value = getattr(body, attr, None)
        if value is not None and value is not False:
            f[attr] = _enum(getattr(value, "value", value)) if attr == "e_maid" else _enum(value)
    for attr in ("ev_target_voltage", "ev_target_current", "evse_present_voltage", "evse_present_current"):
        value = _pv(getattr(body, attr, None))
        if value is not None:
            f[attr] = value
    for status_attr in ("dc_evse_status", "ac_evse_status"):
        status = getattr(body, status_attr, None)
        notification = _enum(getattr(status, "evse_notification", None)) if status is not None else None
        if notification not in (None, "None"):
            f["evse_notification"] = notification
    sa = getattr(body, "sa_schedules", None) or getattr(body, "sa_schedule_list", None)
    if sa is not None:
        f["sa_schedules"] = _schedules(sa)
    meter = getattr(body, "meter_info", None)
    if meter is not None and getattr(meter, "meter_reading", None) is not None:
        f["meter_reading_wh"] = meter.meter_reading
    if getattr(body, "contract_signature_cert_chain", None) is not None and type(body).__name__.startswith("Certificate"):
        f["contract_certificate"] = "signed by the CPS" if getattr(body, "e_maid", None) is not None else "sent"
    return f


def _rational(r: Any) -> float | None:
    from pnc_bridge.secc.schedule import from_rational

    return from_rational(r) if r is not None else None


def _kw(value: float | None) -> str | None:
    return None if value is None else f"{value / 1000:+.1f} kW"


def iso20_fields(message: Any) -> dict[str, Any]:
    """The key fields of one ISO 15118-20 message (they carry no V2G_Message envelope)."""
    f: dict[str, Any] = {}
    for attr in ("response_code", "evse_processing", "ev_processing", "charge_progress", "selected_energy_transfer_service"):
        value = getattr(message, attr, None)
        if value is not None:
            f[attr] = _enum(getattr(value, "service_id", value))
    control = getattr(message, "cl_req_control_mode", None)
    target = _rational(getattr(control, "ev_target_current", None)) if control is not None else None
    voltage = _rational(getattr(message, "ev_present_voltage", None))
    if target is not None:
        f["ev_target_current"] = f"{target:+g} A"
        if voltage:
            f["ev_target_power"] = _kw(target * voltage)
    current = _rational(getattr(message, "evse_present_current", None))
    present_v = _rational(getattr(message, "evse_present_voltage", None))
    if current is not None and present_v is not None:
        f["evse_present"] = f"{present_v:g} V {current:+g} A"
        f["power"] = _kw(current * present_v)
    meter = getattr(message, "meter_info", None)
    if meter is not None:
        f["meter_wh"] = f"in {meter.charged_energy_reading_wh} / out {meter.bpt_discharged_energy_reading_wh or 0}"
    status = getattr(message, "evse_status", None)
    notification = _enum(getattr(status, "evse_notification", None)) if status is not None else None
    if notification not in (None, "ExitStandby", "None"):
        f["evse_notification"] = notification
    scheduled = getattr(message, "scheduled_se_res_control_mode", None)
    if scheduled is not None:
        f["schedule_tuples"] = [_iso20_tuple(t) for t in scheduled.schedule_tuple]
    return f


def _iso20_tuple(t: Any) -> str:
    def entries(schedule: Any) -> str:
        at, out = 0, []
        for e in schedule.power_schedule.power_schedule_entries.power_schedule_entry:
            out.append(f"{at}s {_kw(_rational(e.power))}")
            at += e.duration
        return ", ".join(out[:6]) + (f" (+{len(out) - 6})" if len(out) > 6 else "")

    text = f"#{t.schedule_tuple_id}: charge {entries(t.charging_schedule)}"
    if t.discharging_schedule is not None:
        text += f"; discharge {entries(t.discharging_schedule)}"
    return text


def _energy_fields(p: dict[str, Any], f: dict[str, Any]) -> None:
    for mv in p.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("measurand") == "Energy.Active.Import.Register":
                f["energy_wh"] = sv["value"]
            elif sv.get("measurand") == "Energy.Active.Export.Register":
                f["export_wh"] = sv["value"]


def ocpp_fields(action: str | None, payload: Any, request: dict[str, Any] | None) -> dict[str, Any]:
    """The key fields of one OCPP payload (request, or response to ``request``)."""
    if not isinstance(payload, dict):
        return {"payload": payload}
    f: dict[str, Any] = {}
    p = payload
    if action == "TransactionEvent" and "eventType" in p:
        f.update(eventType=p["eventType"], triggerReason=p["triggerReason"], seqNo=p["seqNo"])
        info = p.get("transactionInfo", {})
        for key in ("chargingState", "stoppedReason", "remoteStartId"):
            if key in info:
                f[key] = info[key]
        if "idToken" in p:
            f["idToken"] = f"{p['idToken'].get('type')} {p['idToken'].get('idToken')}".strip()
        _energy_fields(p, f)
        if p.get("offline"):
            f["offline"] = True
        return f
    if action == "Authorize" and "idToken" in p:
        f["idToken"] = f"{p['idToken']['type']} {p['idToken']['idToken']}"
        if p.get("iso15118CertificateHashData"):
            f["iso15118CertificateHashData"] = f"{len(p['iso15118CertificateHashData'])} certificates"
        if p.get("certificate"):
            f["certificate"] = "contract chain (central validation)"
        return f
    if action == "Get15118EVCertificate":
        if "exiRequest" in p:
            return {"action": p["action"], "exiRequest": f"{len(p['exiRequest'])} base64 chars"}
        return {"status": p.get("status"), "exiResponse": f"{len(p.get('exiResponse', ''))} base64 chars"}
    if action == "GetCertificateStatus":
        if "ocspRequestData" in p:
            return {"serialNumber": p["ocspRequestData"]["serialNumber"], "responderURL": p["ocspRequestData"]["responderURL"]}
        return {"status": p.get("status"), "ocspResult": f"{len(p.get('ocspResult', ''))} base64 chars"}
    if action == "SetChargingProfile" and "chargingProfile" in p:
        profile = p["chargingProfile"]
        f.update(purpose=profile["chargingProfilePurpose"], transactionId=profile.get("transactionId", "-")[:8] + "…")
        f["chargingSchedule"] = [
            f"#{s['id']}: " + ", ".join(_period(q, s["chargingRateUnit"]) for q in s["chargingSchedulePeriod"])
            + (" + salesTariff" if s.get("salesTariff") else "")
            for s in profile["chargingSchedule"]
        ]
        return f
    if action == "NotifyEVChargingNeeds" and "chargingNeeds" in p:
        needs = p["chargingNeeds"]
        f["requestedEnergyTransfer"] = needs["requestedEnergyTransfer"]
        extra = needs.get("customData", {})  # OCPP 2.0.1: the -20 parts under our vendorId
        if extra.get("requestedEnergyTransfer"):
            f["requestedEnergyTransfer"] += f" ({extra['requestedEnergyTransfer']} in customData)"
        v2x = needs.get("v2xChargingParameters") or extra.get("v2xChargingParameters")
        if v2x:
            f["v2x"] = ", ".join(f"{k}={v2x[k]:g}" for k in ("maxChargePower", "maxDischargePower") if k in v2x)
        if needs.get("controlMode") or extra.get("controlMode"):
            f["controlMode"] = needs.get("controlMode") or extra.get("controlMode")
        params = needs.get("dcChargingParameters") or needs.get("acChargingParameters") or {}
        for key in ("energyAmount", "evMaxPower", "evMaxCurrent", "stateOfCharge"):
            if key in params:
                f[key] = params[key]
        return f
    if action == "NotifyEVChargingSchedule" and "chargingSchedule" in p:
        s = p["chargingSchedule"]
        f["chargingSchedule"] = f"#{s['id']}: " + ", ".join(
            f"{q['startPeriod']}s {q['limit'] / 1000:g} kW" for q in s["chargingSchedulePeriod"][:6])
        return f
    if action == "MeterValues" and "meterValue" in p:
        _energy_fields(p, f)
        return f
    if action == "UpdateDynamicSchedule" and "scheduleUpdate" in p:
        return {"chargingProfileId": p["chargingProfileId"], **p["scheduleUpdate"]}
    if action == "RequestStartTransaction" and "idToken" in p:
        return {"evseId": p.get("evseId"), "idToken": p["idToken"]["idToken"], "remoteStartId": p["remoteStartId"]}
    for key in ("status", "connectorStatus", "type", "reason", "idTokenInfo", "certificateStatus", "interval"):
        if key in p:
            value = p[key]
            f[key] = value.get("status") if isinstance(value, dict) and "status" in value else value
    return f


def _period(q: dict[str, Any], unit: str) -> str:
    text = f"{q['startPeriod']}s {q.get('limit', 0) / 1000:g} k{unit}"
    for key in ("dischargeLimit", "setpoint"):
        if key in q:
            text += f" {key} {q[key] / 1000:g} k{unit}"
    return text


# --------------------------------------------------------------------------- #
# The run                                                                      #
# --------------------------------------------------------------------------- #


async def run_demo(protocol_name: str = "iso2-dc", *, loops: int | None = None, interval: float = 0.1,
                   work_dir: Path | None = None, progress=None, ocpp: str | None = None) -> DemoResult:
    """Run the demo session; returns what happened. ``progress(text)`` reports the set-up
    steps. ``ocpp`` is the CSMS's OCPP version ("2.0.1" / "2.1"; default 2.1 for ISO 15118-20,
    2.0.1 for the others); ``loops`` defaults to the protocol's."""
    from hil.demo_rig import BridgeRig
    from hil.ev import Ev20Config, EvConfig, EvCredentials, iso20_tls_context, iso2_tls_context, run_ev
    from pnc_bridge.pki import generate_test_pki
    from pnc_bridge.secc import message_name
    from pnc_bridge.secc.effects import EnergyService, EnergyTransferMode, PaymentOption

    say = progress or (lambda text: None)
    protocol = PROTOCOLS[protocol_name]
    loops = loops or protocol.loops
    ocpp = ocpp or ("2.1" if protocol.iso20 else "2.0.1")
    fields_of = iso20_fields if protocol.iso20 else v2g_fields
    loop = asyncio.get_running_loop()
    entries: list[Entry] = []

    def on_step(ctx: Any, adapter: Any, step: Any) -> None:
        now = loop.time()
        if step.request is not None:
            body = getattr(getattr(step.request, "body", None), "body_element", step.request)
            entries.append(Entry(adapter.frame_received_at or now, "EV → SECC", message_name(step.request), fields_of(body)))
        if step.response is not None:
            body = getattr(getattr(step.response, "body", None), "body_element", step.response)
            entries.append(Entry(now, "SECC → EV", message_name(step.response), fields_of(body)))

    problems: list[str] = []
    ev = None
    rig = None
    t0 = loop.time()
    with contextlib.ExitStack() as stack:
        root = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pnc-bridge-demo-")))
        say(f"test PKI and trust store in {root}")
        pki = generate_test_pki(root / "pki")
        pki20 = generate_test_pki(root / "pki20", variant="iso20") if protocol.iso20 else None
        options: dict[str, Any] = dict(
            phases=0 if protocol.dc else 3, csms={"subprotocols": [f"ocpp{ocpp}"]},
            device_model={"ISO15118Ctrlr/RequestMeteringReceipt": "true", "SampledDataCtrlr/TxUpdatedInterval": "1"},
            behaviour={"remote_start_on_plug_in": not protocol.pnc}, service={"on_step": on_step},
        )
        if protocol.iso20:
            options.update(pki20=pki20, evse={"max_discharge_power_w": DEMO_DISCHARGE_CAPABILITY_W},
                           v2g={"protocols": ["iso20-dc", "iso2", "din"]})
            options["behaviour"]["schedules"] = v2x_schedule(loops, interval, ocpp)
        rig = BridgeRig(root, pki, **options)
        say(f"starting the CSMS emulator (OCPP {ocpp}) and the bridge")
        try:
            async with rig:
                host = rig.v2g["host"]
                say(f"EV emulator: {protocol.title}")
                t0 = loop.time()
                if protocol.iso20:
                    creds = EvCredentials.from_test_pki(pki20, with_contract=False)
                    ev = await run_ev(
                        Ev20Config(service=EnergyService.DC_BPT, payment=PaymentOption.Contract, credentials=creds,
                                   certificate_installation=True, loop_messages=loops, loop_interval=interval),
                        host, rig.endpoint.tls_port, tls=iso20_tls_context([pki20.v2g_root], creds.oem_chain, creds.oem_key))
                else:
                    mode = EnergyTransferMode.DC_extended if protocol.dc else EnergyTransferMode.AC_three_phase_core
                    ev_config = EvConfig(
                        protocols=(protocol.schema,), energy_mode=mode,
                        payment=PaymentOption.Contract if protocol.pnc else PaymentOption.ExternalPayment,
                        credentials=EvCredentials.from_test_pki(pki, with_contract=False) if protocol.pnc else None,
                        certificate_action="install" if protocol.pnc else None, loop_messages=loops,
                        loop_interval=interval,
                    )
                    if protocol.pnc:
                        ev = await run_ev(ev_config, host, rig.endpoint.tls_port, tls=iso2_tls_context([pki.v2g_root]))
                    else:
                        ev = await run_ev(ev_config, host, rig.endpoint.tcp_port)
                try:
                    await rig.wait_ended(10)
                    await rig.wait_idle(5)
                except TimeoutError:
                    problems.append("the CSMS got no TransactionEvent Ended")
                await rig.stop_service()
                entries.extend(_ocpp_entries(rig.csms))
                invalid = rig.csms.invalid_frames()
        except (TimeoutError, RuntimeError, OSError, ValueError) as exc:
            problems.append(f"the bench did not run: {exc or type(exc).__name__}")
            invalid = []
    entries.sort(key=lambda e: e.t)
    summary: dict[str, Any] = {"ocpp": ocpp}
    if ev is not None:
        r = ev.result
        summary.update(protocol=r.protocol, charge_loop_messages=r.loop_messages, metering_receipts=r.receipts,
                       contract_installed=r.installed_contract, ev_result=r.reason)
        if protocol.iso20:
            summary.update(ev_charged_wh=round(r.charged_wh, 2), ev_discharged_wh=round(r.discharged_wh, 2),
                           power_signs=_signs(r.loop))
            problems += _check20(r, entries, rig, ocpp, summary)
        else:
            problems += _check(protocol, r, entries, rig.behaviour)
    if invalid:
        problems.append(f"{len(invalid)} OCPP frame(s) failed the ocpp package's schema check: "
                        + "; ".join(f"{f.action}: {f.error}" for f in invalid[:3]))
    summary["duration_ms"] = round(((entries[-1].t if entries else t0) - t0) * 1000, 1)
    return DemoResult(not problems, protocol_name, problems, [e for e in entries if e.t >= t0 - 1], summary, t0)


def _signs(samples: list[Any], threshold_w: float = 100.0) -> str:
    """The charge loop's power directions in order, runs collapsed: "+-+" is charge,
    discharge, charge again ("0" for no power)."""
    out = ""
    for sample in samples:
        sign = "+" if sample.power_w > threshold_w else "-" if sample.power_w < -threshold_w else "0"
        if not out or out[-1] != sign:
            out += sign
    return out


def _registers(payload: dict[str, Any]) -> tuple[float | None, float | None]:
    found: dict[str, float] = {}
    for mv in payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            found[sv.get("measurand", "")] = float(sv["value"])
    return found.get("Energy.Active.Import.Register"), found.get("Energy.Active.Export.Register")


def _check20(r: Any, entries: list[Entry], rig: Any, ocpp: str, summary: dict[str, Any]) -> list[str]:
    """The -20 BPT demo's outcome: the session, the power's sign changes, the energy both
    ways as the EV and the CSMS saw it, and the V2X frames of the OCPP version."""
    problems = []
    if not r.ok:
        problems.append(f"the EV's session failed: {r.reason}")
    if r.loop_messages < 1:
        problems.append("the session did not reach the charge loop")
    if "+-+" not in summary["power_signs"].replace("0", ""):
        problems.append(f"the power did not go charge, discharge, charge (directions seen: {summary['power_signs']})")
    names = [e.message for e in entries]
    wanted = ["Authorize", "TransactionEvent", "NotifyEVChargingNeeds", "SetChargingProfile", "NotifyEVChargingSchedule"]
    if r.installed_contract:
        wanted.append("Get15118EVCertificate")
    problems += [f"no {w} in the OCPP record" for w in wanted if w not in names]
    if not rig.behaviour.profile_sent.is_set():
        problems.append(f"the CSMS's SetChargingProfile was not accepted: {rig.behaviour.profile_answers}")
    needs = rig.calls("NotifyEVChargingNeeds")
    if needs:
        charging = needs[0]["chargingNeeds"]
        v2x_part = charging if ocpp == "2.1" else charging.get("customData", {})
        if v2x_part.get("requestedEnergyTransfer") != "DC_BPT" or "maxDischargePower" not in v2x_part.get(
                "v2xChargingParameters", {}):
            problems.append(f"NotifyEVChargingNeeds on OCPP {ocpp} does not carry the EV's BPT limits: {charging}")
    tuples = [e for e in entries if e.message == "ScheduleExchangeRes" and e.fields.get("schedule_tuples")]
    if not tuples or "discharge" not in tuples[-1].fields["schedule_tuples"][0]:
        problems.append("the EV was not offered a schedule with a discharging part")
    ended = next((p for p in rig.tx_events() if p["eventType"] == "Ended"), None)
    if ended is not None:
        imported, exported = _registers(ended)
        summary.update(csms_import_wh=imported, csms_export_wh=exported)
        for name, register, ev_value in (("import", imported, r.charged_wh), ("export", exported, r.discharged_wh)):
            if register is None:
                problems.append(f"TransactionEvent Ended has no {name} register")
            elif ev_value <= 0 or abs(register - ev_value) > 0.5 + 0.1 * ev_value:
                problems.append(f"energy {name}: the CSMS's register says {register} Wh, the EV counted {ev_value:.1f} Wh")
    return problems


def _ocpp_entries(csms: Any) -> list[Entry]:
    calls = {r.message_id: r for r in csms.record if r.message_type == 2}
    out = []
    for r in csms.record:
        if r.dropped:
            continue
        if r.message_type == 2:
            direction = "SECC → CSMS" if r.direction == "in" else "CSMS → SECC"
            out.append(Entry(r.at, direction, r.action or "?", ocpp_fields(r.action, r.payload, None)))
        elif r.message_type in (3, 4):
            call = calls.get(r.message_id)
            action = call.action if call is not None else r.action
            direction = "SECC → CSMS" if r.direction == "in" else "CSMS → SECC"
            name = f"{action}Response" if r.message_type == 3 else f"{action} CALLERROR"
            out.append(Entry(r.at, direction, name, ocpp_fields(action, r.payload, call.payload if call else None)))
    return out


def _check(protocol: Protocol, r: Any, entries: list[Entry], behaviour: Any) -> list[str]:
    problems = []
    if not r.ok:
        problems.append(f"the EV's session failed: {r.reason}")
    if r.loop_messages < 1:
        problems.append("the session did not reach the charge loop")
    names = [e.message for e in entries]
    wanted = ["TransactionEvent", "NotifyEVChargingNeeds", "SetChargingProfile", "NotifyEVChargingSchedule"]
    if protocol.pnc:
        wanted += ["Get15118EVCertificate", "Authorize"]
        if not r.installed_contract:
            problems.append("no contract certificate was installed")
        if r.receipts < 1:
            problems.append("no MeteringReceipt")
    else:
        wanted.append("RequestStartTransaction")
    problems += [f"no {w} in the OCPP record" for w in wanted if w not in names]
    if not behaviour.profile_sent.is_set():
        problems.append(f"the CSMS's SetChargingProfile was not accepted: {behaviour.profile_answers}")
    schedules = [e for e in entries if e.message == "ChargeParameterDiscoveryRes" and e.fields.get("sa_schedules")]
    if not schedules or not any(entry.count(",") >= 2 for entry in schedules[-1].fields["sa_schedules"]):
        problems.append("the EV was not offered the CSMS's multi-period schedule")
    return problems


# --------------------------------------------------------------------------- #
# Output                                                                       #
# --------------------------------------------------------------------------- #


def _format_fields(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, list):
            value = " | ".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "  ".join(parts)


def print_timeline(result: DemoResult, out=sys.stdout) -> None:
    protocol = PROTOCOLS[result.protocol]
    print(f"pnc-bridge demo: {protocol.title}", file=out)
    print("EV emulator (hil.ev) ⇄ pnc-bridge (SECC + OCPP) ⇄ CSMS emulator (hil.csms on the ocpp package), loopback\n",
          file=out)
    print(f"{'t ms':>8}  {'direction':<12}  {'message':<34} key fields", file=out)
    for e in result.entries:
        print(f"{(e.t - result.t0) * 1000:8.1f}  {e.direction:<12}  {e.message:<34} {_format_fields(e.fields)}", file=out)
    print(file=out)
    s = result.summary
    if s.get("protocol"):
        print(f"session: {s.get('protocol')} (OCPP {s.get('ocpp')}), {s.get('charge_loop_messages')} charge-loop messages, "
              f"{s.get('metering_receipts')} metering receipt(s), contract installed: {s.get('contract_installed')}, "
              f"{s.get('duration_ms')} ms", file=out)
    if "power_signs" in s:
        print(f"power directions in the charge loop: {' → '.join({'+': 'charge', '-': 'discharge', '0': 'none'}[c] for c in s['power_signs'])}",
              file=out)
        print(f"energy: EV charged {s['ev_charged_wh']} Wh and gave back {s['ev_discharged_wh']} Wh; the CSMS's "
              f"registers: import {s.get('csms_import_wh')} Wh, export {s.get('csms_export_wh')} Wh", file=out)
    if result.ok:
        print("OK: complete session, the CSMS saw every expected message", file=out)
    else:
        print("FAILED:", file=out)
        for problem in result.problems:
            print(f"  - {problem}", file=out)


def main(args: argparse.Namespace) -> int:
    logging.getLogger("pnc_bridge").setLevel(logging.INFO if args.verbose else logging.WARNING)
    # the station's "disconnected" warning at the end is the demo stopping, not a fault
    logging.getLogger("pnc_bridge.ocpp").setLevel(logging.INFO if args.verbose else logging.ERROR)
    for name in ("hil", "websockets", "ocpp"):
        logging.getLogger(name).setLevel(logging.INFO if args.verbose > 1 else logging.ERROR)
    progress = None if args.json else (lambda text: print(f"· {text}", file=sys.stderr))
    started = time.monotonic()
    result = asyncio.run(run_demo(args.protocol, loops=args.loops, interval=args.interval,
                                  work_dir=Path(args.keep) if args.keep else None, progress=progress,
                                  ocpp=getattr(args, "ocpp", None)))
    if args.json:
        json.dump(result.as_json(), sys.stdout, indent=1, default=str)
        print()
    else:
        print_timeline(result)
        print(f"(demo took {time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0 if result.ok else 1
