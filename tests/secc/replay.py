"""Real-vehicle sessions from ../shared/exi-vectors/all.jsonl.gz, rebuilt for replay into our
SECC core.

What the vector file gives and what it does not (see its README):

- Each distinct EXI document is stored once, attributed to the first capture it was seen in,
  and the file is sorted by message type, not by time. A session (source path + TCP session)
  therefore holds each of its *distinct* requests once, without their order, and misses
  requests whose bytes another capture had first (most SupportedAppProtocolReq and many
  SessionSetupReq of the same car).
- Some captures label directions the wrong way round; a request is recognised by its
  message name (``...Req``), never by the ``direction`` field.

So the replay puts a session's requests into the order of the standard's sequence, fills a
missing mandatory request from another capture of the same car (or of any car, same
protocol), and records each fill. Requests the car repeated while the real charger said
``Ongoing`` are fed while ours says Ongoing; variants left over when ours is done sooner are
skipped, and recorded. Every request's header SessionID is replaced by the one our SECC
assigned (as the car uses the one its charger assigned).
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from pnc_bridge import exi
from pnc_bridge.messages import apphand
from tests.conftest import SHARED

ALL_VECTORS = SHARED / "exi-vectors" / "all.jsonl.gz"

#: the standard's order of the EV's requests (ISO 15118-2 and DIN 70121 names)
ORDER = [
    "SessionSetupReq",
    "ServiceDiscoveryReq",
    "ServiceDetailReq",
    "PaymentServiceSelectionReq",
    "ServicePaymentSelectionReq",
    "CertificateInstallationReq",
    "CertificateUpdateReq",
    "PaymentDetailsReq",
    "AuthorizationReq",
    "ContractAuthenticationReq",
    "ChargeParameterDiscoveryReq",
    "CableCheckReq",
    "PreChargeReq",
    "PowerDeliveryReq:start",
    "CurrentDemandReq",
    "ChargingStatusReq",
    "MeteringReceiptReq",
    "PowerDeliveryReq:stop",
    "WeldingDetectionReq",
    "SessionStopReq",
]
#: requests a charger answers with EVSEProcessing (the car repeats them while Ongoing)
ONGOING = {"AuthorizationReq", "ContractAuthenticationReq", "ChargeParameterDiscoveryReq", "CableCheckReq"}
#: requests every session needs up to the charge loop, in order; filled when missing
MANDATORY = {
    "din": ["SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq", "ContractAuthenticationReq",
            "ChargeParameterDiscoveryReq"],
    "iso2": ["SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq", "AuthorizationReq",
             "ChargeParameterDiscoveryReq"],
}
DC_PREPARATION = ["CableCheckReq", "PreChargeReq"]


@dataclass
class Request:
    name: str  # ORDER key
    message: object  # decoded V2G_Message
    id: str
    filled_from: str | None = None  # source path when taken from another capture


@dataclass
class Session:
    key: tuple[str, str, int]  # repo, path, tcp_session
    ns: str
    requests: list[Request]
    charger_responses: set[str]  # response names the real charger sent (OK codes only)
    charger_failures: list[str]  # FAILED codes the real charger sent
    apphand: object | None = None  # the car's supportedAppProtocolReq, when captured here
    fills: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        repo, path, tcp = self.key
        return f"{path.rsplit('/ethernet-traffic.dump', 1)[0]}#{tcp}"


def _key_name(ns: str, msg: str, message) -> str:
    if msg == "PowerDeliveryReq":
        body = message.body.body_element
        start = body.ready_to_charge_state if ns == "din" else body.charge_progress.value != "Stop"
        return "PowerDeliveryReq:start" if start else "PowerDeliveryReq:stop"
    return msg


def _car(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


@lru_cache(maxsize=1)
def sessions() -> tuple[Session, ...]:
    """Every real-vehicle DIN / ISO 15118-2 session of the vector file, ready to replay."""
    with gzip.open(ALL_VECTORS, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    rows = [r for r in rows if r.get("real") and not r.get("negative")]
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    handshakes: dict[tuple, object] = {}
    for r in rows:
        s = r["source"]
        key = (s["repo"], s["path"], s["tcp_session"])
        if r["ns"] == "apphand" and r["msg"] == "supportedAppProtocolReq":
            handshakes[key] = exi.decode("apphand", bytes.fromhex(r["hex"]))
        elif r["ns"] in ("din", "iso2"):
            grouped[key].append(r)
    pool: dict[tuple[str, bool, str], list[Request]] = defaultdict(list)  # (ns, dc, name) -> requests, any capture
    out = []
    for key, items in grouped.items():
        ns = items[0]["ns"]
        if any(i["ns"] != ns for i in items):
            continue
        requests, responses, failures = [], set(), []
        for r in items:
            message = exi.decode(ns, bytes.fromhex(r["hex"]), strict=False)
            if r["msg"].endswith("Req"):
                req = Request(_key_name(ns, r["msg"], message), message, r["id"])
                requests.append(req)
            else:
                code = message.body.body_element.response_code.value
                if code.startswith("FAILED"):
                    failures.append(f"{r['msg']}:{code}")
                else:
                    responses.add(r["msg"])
        if requests:
            session = Session(key, ns, requests, responses, failures, handshakes.get(key))
            out.append(session)
            dc = _is_dc(session)
            for req in requests:
                pool[(ns, dc, req.name)].append(Request(req.name, req.message, req.id, filled_from=key[1]))
    for session in out:
        _order_and_fill(session, pool)
    return tuple(sorted(out, key=lambda s: s.id))


def _order_and_fill(session: Session, pool: dict) -> None:
    by_name: dict[str, list[Request]] = defaultdict(list)
    for r in session.requests:
        by_name[r.name].append(r)
    dc = _is_dc(session)
    needed = list(MANDATORY[session.ns])
    loop = {"CurrentDemandReq", "ChargingStatusReq"}
    # the real charger answered it, so the car sent it (its bytes were first seen elsewhere)
    for res in sorted(session.charger_responses):
        req = "SessionStopReq" if res == "SessionStopRes" else res[:-3] + "Req"
        if req != "PowerDeliveryReq" and req not in needed:
            needed.append(req)
    if loop & (set(by_name) | set(needed)):
        needed.append("PowerDeliveryReq:start")
    if dc and ("CurrentDemandReq" in needed or "CurrentDemandReq" in by_name or "PowerDeliveryReq:start" in by_name):
        needed += DC_PREPARATION
    for name in needed:
        if name in by_name:
            continue
        candidates = pool.get((session.ns, dc, name), [])
        same_car = [c for c in candidates if _car(c.filled_from) == _car(session.key[1])]
        choice = (same_car or candidates or [None])[0]
        if choice is not None:
            by_name[name].append(choice)
            session.fills.append(f"{name} from {choice.filled_from}")
    session.requests = [r for name in ORDER for r in by_name.get(name, [])]


def _is_dc(session: Session) -> bool:
    if session.ns == "din":  # DIN 70121 is DC only
        return True
    if "CurrentDemandRes" in session.charger_responses or "CableCheckRes" in session.charger_responses:
        return True
    if "ChargingStatusRes" in session.charger_responses:
        return False
    for r in session.requests:
        body = r.message.body.body_element
        mode = getattr(body, "requested_energy_transfer_mode", None) or getattr(body, "ev_requested_energy_transfer_type", None)
        if mode is not None:
            return mode.value.startswith("DC")
    return any(r.name in ("CurrentDemandReq", "CableCheckReq", "PreChargeReq", "WeldingDetectionReq") for r in session.requests)


def requested_modes(session: Session) -> set[str]:
    modes = set()
    for r in session.requests:
        body = r.message.body.body_element
        mode = getattr(body, "requested_energy_transfer_mode", None) or getattr(body, "ev_requested_energy_transfer_type", None)
        if mode is not None:
            modes.add(mode.value)
    return modes


def handshake_namespaces(session: Session) -> list[str]:
    if not isinstance(session.apphand, apphand.SupportedAppProtocolReq):
        return []
    return [p.protocol_namespace for p in session.apphand.app_protocol]
