"""A sans-I/O EV (EVCC) for the rig and the tests: DIN 70121 DC, ISO 15118-2 AC and DC, with
EIM or Plug & Charge (contract installation / update, signed AuthorizationReq and
MeteringReceiptReq), renegotiation, pause and resume.

Rules of this module:

- Payload bytes in, payload bytes out, time passed in: ``start(now)``, ``receive_payload``,
  ``tick(now)`` when ``deadline()`` passed. It never reads a clock or a socket; the asyncio
  client (``hil.ev._client``) and the in-memory pairs in the tests drive it.
- It behaves as an EV must: it waits V2G_EVCC_Msg_Timeout for each response, repeats
  requests answered ``Ongoing`` (at most V2G_EVCC_Ongoing_Timeout), and ends the session on a
  FAILED code, saying why in :attr:`EvSession.result`.
- Everything it sent and received is in :attr:`EvSession.timeline`.
- ``faults`` make it misbehave on purpose for negative tests (see :data:`FAULTS`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge import exi, timing, xmldsig
from pnc_bridge.messages import apphand, din, iso2
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.pki import ContractKeyError, decrypt_contract_private_key
from pnc_bridge.secc.effects import EnergyTransferMode, PaymentOption
from pnc_bridge.secc.schedule import physical_value

__all__ = ["FAULTS", "EvConfig", "EvCredentials", "EvResult", "EvSession", "EvStep", "TimelineEntry"]

#: Faults an EV can be told to commit:
#: ``unsigned_authorization``, ``bad_authorization_signature`` (one bit flipped),
#: ``wrong_gen_challenge``, ``bad_metering_signature``, ``silent_in_loop`` (stops sending after
#: the first charge-loop response, connection stays open), ``foreign_session_id`` (uses another
#: SessionID after SessionSetup), ``skip_to_power_delivery`` (PowerDeliveryReq right after
#: ServiceDiscovery: a sequence error).
FAULTS = frozenset(
    {
        "unsigned_authorization",
        "bad_authorization_signature",
        "wrong_gen_challenge",
        "bad_metering_signature",
        "silent_in_loop",
        "foreign_session_id",
        "skip_to_power_delivery",
    }
)

_NAMESPACES = {
    "iso2": ("urn:iso:15118:2:2013:MsgDef", 2, 0),
    "din": ("urn:din:70121:2012:MsgDef", 2, 0),
}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class EvCredentials:
    """An EV's Plug & Charge material: the OEM provisioning chain and key, the V2G root it
    trusts, and (once installed) the contract chain and key."""

    oem_chain: tuple[x509.Certificate, ...]  # leaf first
    oem_key: ec.EllipticCurvePrivateKey
    v2g_root: x509.Certificate
    contract_chain: tuple[x509.Certificate, ...] = ()
    contract_key: ec.EllipticCurvePrivateKey | None = None
    emaid: str | None = None

    @classmethod
    def from_test_pki(cls, pki: Any, *, with_contract: bool) -> "EvCredentials":
        leaf, subs = pki.chain("oem")
        contract: tuple = ()
        key = emaid = None
        if with_contract:
            c_leaf, c_subs = pki.chain("contract")
            contract, key, emaid = (c_leaf, *c_subs), pki.key("contract_leaf"), pki.emaid
        return cls((leaf, *subs), pki.key("oem_prov_leaf"), pki.v2g_root, contract, key, emaid)


@dataclass(frozen=True)
class EvConfig:
    """How the emulated EV behaves. ``loop_messages`` charge-loop requests are sent
    ``loop_interval`` apart; requests answered Ongoing are repeated ``ongoing_interval`` apart."""

    protocols: tuple[str, ...] = ("iso2", "din")  # offered in this priority order
    energy_mode: EnergyTransferMode = EnergyTransferMode.DC_extended
    payment: PaymentOption = PaymentOption.ExternalPayment
    credentials: EvCredentials | None = None
    certificate_action: str | None = None  # None: install when no contract; "install" / "update" / "none"
    evcc_id: bytes = bytes.fromhex("0200000000e1")
    loop_messages: int = 5
    loop_interval: float = 0.05
    ongoing_interval: float = 0.05
    departure_time: int | None = None
    max_entries: int | None = None
    battery_voltage_v: float = 400.0
    max_voltage_v: float = 450.0
    max_current_a: float = 200.0  # DC; AC uses ac_max_current_a
    ac_max_current_a: float = 16.0
    max_power_w: float = 150000.0
    energy_request_wh: float = 40000.0
    capacity_wh: float = 75000.0
    start_soc: int = 40
    renegotiate_after: int | None = None  # EV-initiated renegotiation after this many loop messages
    pause: bool = False  # end with SessionStop Pause instead of Terminate
    resume_session_id: bytes | None = None  # resume this paused session
    faults: frozenset[str] = frozenset()
    msg_timeouts_iso2: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_ISO2))
    msg_timeouts_din: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_DIN))
    ongoing_timeout: float = timing.V2G_EVCC_Ongoing_Timeout
    cable_check_timeout: float = timing.V2G_EVCC_CableCheck_Timeout
    pre_charge_timeout: float = timing.V2G_EVCC_PreCharge_Timeout
    random_bytes: Callable[[int], bytes] = os.urandom

    def __post_init__(self) -> None:
        unknown = set(self.faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown EV faults: {sorted(unknown)}")
        if self.payment is PaymentOption.Contract and self.credentials is None:
            raise ValueError("Plug & Charge (Contract) needs credentials")
        if not self.protocols or any(p not in _NAMESPACES for p in self.protocols):
            raise ValueError(f"protocols must be a non-empty subset of {sorted(_NAMESPACES)}")


@dataclass(frozen=True)
class TimelineEntry:
    t: float  # seconds since start
    direction: str  # "EV->EVSE" or "EVSE->EV"
    message: str
    detail: str


@dataclass
class EvResult:
    ok: bool = False
    reason: str = ""
    protocol: str | None = None
    session_id: bytes = b""
    loop_messages: int = 0
    receipts: int = 0
    renegotiations: int = 0
    installed_contract: bool = False
    updated_contract: bool = False
    schedules: Any = None  # the SAScheduleList received last
    paused: bool = False
    resumed: bool = False
    last_code: str | None = None


@dataclass(frozen=True)
class EvStep:
    """What the EV sends (``send`` in a V2GTP frame of ``payload_type``) and whether it closes."""

    send: bytes | None = None
    close: bool = False
    payload_type: int = 0x8001  # EXI_ENCODED_V2G_MESSAGE / SAP; ISO 15118-20 uses one per message set


def _code(body: Any) -> str:
    code = getattr(body, "response_code", None)
    return code.value if code is not None else "?"


class EvSession:
    """One EV communication session over one connection."""

    def __init__(self, config: EvConfig, *, now: float, unix_time: float) -> None:
        self.config = config
        self.result = EvResult()
        self.timeline: list[TimelineEntry] = []
        self.credentials = config.credentials
        self._t0 = now
        self._unix_base = unix_time - now
        self._schema: str | None = None
        self._session_id = bytes(1)
        self._expect: tuple[type, str] | None = None  # (response type, request name)
        self._response_deadline: float | None = None
        self._next_send: tuple[float, Callable[[float], Any]] | None = None
        self._ongoing_since: dict[str, float] = {}
        self._phase_started: dict[str, float] = {}
        self._gen_challenge: bytes | None = None
        self._sa_schedule_tuple_id = 1
        self._loop_count = 0
        self._soc = config.start_soc
        self._evse_voltage = 0.0
        self._renegotiating = False
        self._stop_after = config.loop_messages
        self._done = False
        self._stopping = False
        self._pending_selection: list = []

    # -- driving ----------------------------------------------------------- #
    @property
    def done(self) -> bool:
        return self._done

    def deadline(self) -> float | None:
        if self._done:
            return None
        candidates = [d for d in (self._response_deadline, self._next_send[0] if self._next_send else None) if d is not None]
        return min(candidates) if candidates else None

    def start(self, now: float) -> EvStep:
        offers = [
            apphand.AppProtocol(protocol_namespace=ns, version_number_major=major, version_number_minor=minor,
                                schema_id=i + 1, priority=i + 1)
            for i, (ns, major, minor) in enumerate(_NAMESPACES[p] for p in self.config.protocols)
        ]
        return self._send(apphand.SupportedAppProtocolReq(app_protocol=offers), now)

    def tick(self, now: float) -> EvStep:
        if self._done:
            return EvStep()
        if self._response_deadline is not None and now >= self._response_deadline:
            name = self._expect[1] if self._expect else "request"
            return self._finish(False, f"no response to {name} within V2G_EVCC_Msg_Timeout")
        if self._next_send is not None and now >= self._next_send[0]:
            _, build = self._next_send
            self._next_send = None
            return self._send(build(now), now)
        return EvStep()

    def abort(self, reason: str) -> None:
        """End the session from outside (connection failed, bad framing)."""
        if not self._done:
            self._finish(False, reason)

    def connection_lost(self, now: float) -> None:
        if not self._done:
            self._finish(False, "the SECC closed the connection")

    def receive_payload(self, payload: bytes, now: float, payload_type: int | None = None) -> EvStep:
        if self._done:
            return EvStep()
        schema = self._schema or "apphand"
        try:
            message = exi.decode(schema, payload)
        except exi.ExiDecodeError as exc:
            return self._finish(False, f"undecodable response: {exc}")
        body = message if schema == "apphand" else message.body.body_element
        self._log(now, "EVSE->EV", body)
        if self._expect is None or not isinstance(body, self._expect[0]):
            return self._finish(False, f"unexpected {type(body).__name__}")
        self._response_deadline = None
        self._expect = None
        self.result.last_code = _code(body)
        if schema != "apphand" and _code(body).startswith("FAILED"):
            return self._finish(False, f"{type(body).__name__}: {_code(body)}")
        try:
            return self._on_response(message, body, now)
        except _EvFailure as exc:
            return self._finish(False, str(exc))

    # -- sending ------------------------------------------------------------ #
    def _msg_timeout(self, name: str) -> float:
        table = self.config.msg_timeouts_din if self._schema == "din" else self.config.msg_timeouts_iso2
        return table.get(name, 2.0)

    def _envelope(self, body: Any, signature: Any = None) -> Any:
        m = iso2 if self._schema == "iso2" else din
        session_id = self._session_id
        if "foreign_session_id" in self.config.faults and not isinstance(body, m.SessionSetupReq):
            session_id = bytes(b ^ 0xFF for b in session_id)
        return m.V2G_Message(header=m.MessageHeader(session_id=session_id, signature=signature), body=m.Body(body_element=body))

    def _send(self, message: Any, now: float) -> EvStep:
        if isinstance(message, apphand.SupportedAppProtocolReq):
            payload, body, schema = exi.encode("apphand", message), message, "apphand"
            self._expect = (apphand.SupportedAppProtocolRes, "supportedAppProtocolReq")
            timeout = timing.V2G_EVCC_Msg_Timeout_DIN["supportedAppProtocolReq"]
        else:
            schema = self._schema
            payload, body = exi.encode(schema, message), message.body.body_element
            name = type(body).__name__
            response = getattr(iso2 if schema == "iso2" else din, ("SessionStopRes" if name == "SessionStop" else name[:-3] + "Res"))
            self._expect = (response, name)
            timeout = self._msg_timeout("SessionStopReq" if name == "SessionStop" else name)
        self._log(now, "EV->EVSE", body)
        self._response_deadline = now + timeout
        return EvStep(send=payload)

    def _later(self, delay: float, build: Callable[[float], Any], now: float) -> EvStep:
        if delay <= 0:
            return self._send(build(now), now)
        self._next_send = (now + delay, build)
        return EvStep()

    def _finish(self, ok: bool, reason: str) -> EvStep:
        self._done = True
        self._response_deadline = None
        self._next_send = None
        self.result.ok = ok
        self.result.reason = reason
        return EvStep(close=True)

    def _log(self, now: float, direction: str, body: Any) -> None:
        name = type(body).__name__
        name = "SessionStopReq" if name == "SessionStop" else name
        if name.startswith("SupportedAppProtocol"):
            name = "s" + name[1:]
        detail = []
        for attr in ("response_code", "evse_processing", "charge_progress", "charging_session", "selected_payment_option"):
            v = getattr(body, attr, None)
            if v is not None:
                detail.append(f"{attr}={getattr(v, 'value', v)}")
        if getattr(body, "ready_to_charge_state", None) is not None:
            detail.append(f"ReadyToChargeState={body.ready_to_charge_state}")
        if getattr(body, "receipt_required", None):
            detail.append("ReceiptRequired")
        self.timeline.append(TimelineEntry(now - self._t0, direction, name, " ".join(detail)))

    def _ongoing(self, name: str, now: float, limit: float | None = None) -> None:
        since = self._ongoing_since.setdefault(name, now)
        if now - since >= (limit if limit is not None else self.config.ongoing_timeout):
            raise _EvFailure(f"{name} still Ongoing after the EV's timeout")

    def _at(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._unix_base + now, dt.timezone.utc)

    # -- the sequence -------------------------------------------------------- #
    def _on_response(self, message: Any, body: Any, now: float) -> EvStep:
        handler = getattr(self, f"_on_{type(body).__name__}", None)
        if handler is None:  # pragma: no cover - every expected response has a handler
            raise _EvFailure(f"no handling for {type(body).__name__}")
        return handler(message, body, now)

    def _on_SupportedAppProtocolRes(self, message: Any, body: apphand.SupportedAppProtocolRes, now: float) -> EvStep:
        if body.response_code is apphand.ResponseCode.Failed_NoNegotiation or body.schema_id is None:
            return self._finish(False, "SupportedAppProtocol: no common protocol")
        index = body.schema_id - 1
        if not 0 <= index < len(self.config.protocols):
            return self._finish(False, f"SupportedAppProtocol: unknown SchemaID {body.schema_id}")
        self._schema = self.config.protocols[index]
        self.result.protocol = self._schema
        if self._schema == "din" and not self.config.energy_mode.is_dc:
            return self._finish(False, "DIN 70121 chosen but this EV charges AC")
        m = iso2 if self._schema == "iso2" else din
        if self.config.resume_session_id is not None:
            self._session_id = self.config.resume_session_id
        evcc_id = self.config.evcc_id
        return self._send(self._envelope(m.SessionSetupReq(evccid=evcc_id)), now)

    def _on_SessionSetupRes(self, message: Any, body: Any, now: float) -> EvStep:
        self._session_id = message.header.session_id
        self.result.session_id = self._session_id
        self.result.resumed = body.response_code.value == "OK_OldSessionJoined"
        m = iso2 if self._schema == "iso2" else din
        return self._send(self._envelope(m.ServiceDiscoveryReq()), now)

    # ISO 15118-2 ------------------------------------------------------------
    def _on_ServiceDiscoveryRes(self, message: Any, body: Any, now: float) -> EvStep:
        if "skip_to_power_delivery" in self.config.faults:
            if self._schema == "din":
                return self._send(self._envelope(din.PowerDeliveryReq(ready_to_charge_state=True)), now)
            return self._send(self._envelope(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Start, sa_schedule_tuple_id=1)), now)
        if self._schema == "din":
            return self._send(self._envelope(din.ServicePaymentSelectionReq(
                selected_payment_option=din.PaymentOption.ExternalPayment,
                selected_service_list=din.SelectedServiceList(selected_service=[din.SelectedService(service_id=1)]),
            )), now)
        offered = [p.value for p in body.payment_option_list.payment_option]
        if self.config.payment.value not in offered:
            return self._finish(False, f"{self.config.payment.value} not offered (offered: {offered})")
        modes = [e.value for e in body.charge_service.supported_energy_transfer_mode.energy_transfer_mode]
        if self.config.energy_mode.value not in modes:
            return self._finish(False, f"{self.config.energy_mode.value} not offered (offered: {modes})")
        selected = [iso2.SelectedService(service_id=1)]
        action = self._certificate_action()
        if action is not None:
            services = body.service_list.service if body.service_list else []
            if not any(s.service_id == 2 for s in services):
                return self._finish(False, "contract certificate service not offered")
            selected.append(iso2.SelectedService(service_id=2, parameter_set_id=1 if action == "install" else 2))
            self._pending_selection = selected
            return self._send(self._envelope(iso2.ServiceDetailReq(service_id=2)), now)
        return self._send(self._payment_selection(selected), now)

    def _certificate_action(self) -> str | None:
        if self.config.payment is not PaymentOption.Contract or self.result.resumed:
            return None
        action = self.config.certificate_action
        if action == "none":
            return None
        if action is None:
            return "install" if not self.credentials.contract_chain else None
        return action

    def _payment_selection(self, selected: list) -> Any:
        return self._envelope(iso2.PaymentServiceSelectionReq(
            selected_payment_option=iso2.PaymentOption(self.config.payment.value),
            selected_service_list=iso2.SelectedServiceList(selected_service=selected),
        ))

    def _on_ServiceDetailRes(self, message: Any, body: iso2.ServiceDetailRes, now: float) -> EvStep:
        return self._send(self._payment_selection(self._pending_selection), now)

    def _root_ids(self) -> iso2.ListOfRootCertificateIDs:
        root = self.credentials.v2g_root
        return iso2.ListOfRootCertificateIDs(root_certificate_id=[
            ds.X509IssuerSerial(x509_issuer_name=root.issuer.rfc4514_string(), x509_serial_number=root.serial_number)
        ])

    def _on_PaymentServiceSelectionRes(self, message: Any, body: Any, now: float) -> EvStep:
        if self.config.payment is PaymentOption.ExternalPayment:
            return self._send(self._envelope(iso2.AuthorizationReq()), now)
        creds = self.credentials
        action = self._certificate_action()
        if action == "install":
            req = iso2.CertificateInstallationReq(id="ID1", oem_provisioning_cert=_der(creds.oem_chain[0]),
                                                  list_of_root_certificate_ids=self._root_ids())
            return self._send(xmldsig.sign_message(self._envelope(req), creds.oem_key), now)
        if action == "update":
            leaf, *subs = creds.contract_chain
            req = iso2.CertificateUpdateReq(
                id="ID1",
                contract_signature_cert_chain=iso2.CertificateChain(
                    certificate=_der(leaf), sub_certificates=iso2.SubCertificates(certificate=[_der(c) for c in subs]) if subs else None),
                e_maid=creds.emaid or "", list_of_root_certificate_ids=self._root_ids(),
            )
            return self._send(xmldsig.sign_message(self._envelope(req), creds.contract_key), now)
        return self._send(self._payment_details(), now)

    def _on_CertificateInstallationRes(self, message: Any, body: Any, now: float) -> EvStep:
        self._take_contract(message, body, self.credentials.oem_key, now)
        self.result.installed_contract = True
        return self._send(self._payment_details(), now)

    def _on_CertificateUpdateRes(self, message: Any, body: Any, now: float) -> EvStep:
        self._take_contract(message, body, self.credentials.contract_key, now)
        self.result.updated_contract = True
        return self._send(self._payment_details(), now)

    def _take_contract(self, message: Any, body: Any, recipient_key: Any, now: float) -> None:
        # the CPS chain against the V2G root the EV trusts, then the CPS signature over the contract parts
        verdict = xmldsig.verify_certificate_installation_res(message, store=[self.credentials.v2g_root], at=self._at(now))
        if not verdict.valid:
            raise _EvFailure(f"{type(body).__name__} refused: {verdict.as_dict()}")
        chain = body.contract_signature_cert_chain
        try:
            leaf = x509.load_der_x509_certificate(chain.certificate)
            subs = [x509.load_der_x509_certificate(c) for c in (chain.sub_certificates.certificate if chain.sub_certificates else [])]
            key = decrypt_contract_private_key(body.contract_signature_encrypted_private_key.value, body.dh_publickey.value,
                                               recipient_key, expected_public_key=leaf.public_key())
        except (ValueError, ContractKeyError) as exc:
            raise _EvFailure(f"contract key not usable: {exc}") from None
        self.credentials = replace(self.credentials, contract_chain=(leaf, *subs), contract_key=key, emaid=body.e_maid.value)

    def _payment_details(self) -> Any:
        creds = self.credentials
        if not creds.contract_chain:
            raise _EvFailure("no contract certificate")
        leaf, *subs = creds.contract_chain
        return self._envelope(iso2.PaymentDetailsReq(
            e_maid=creds.emaid or "",
            contract_signature_cert_chain=iso2.CertificateChain(
                certificate=_der(leaf), sub_certificates=iso2.SubCertificates(certificate=[_der(c) for c in subs]) if subs else None),
        ))

    def _on_PaymentDetailsRes(self, message: Any, body: iso2.PaymentDetailsRes, now: float) -> EvStep:
        self._gen_challenge = body.gen_challenge
        return self._send(self._authorization(), now)

    def _authorization(self) -> Any:
        if self.config.payment is PaymentOption.ExternalPayment:
            return self._envelope(iso2.AuthorizationReq())
        challenge = self._gen_challenge or bytes(16)
        if "wrong_gen_challenge" in self.config.faults:
            challenge = bytes(b ^ 0x55 for b in challenge)
        message = self._envelope(iso2.AuthorizationReq(id="ID1", gen_challenge=challenge))
        if "unsigned_authorization" in self.config.faults:
            return message
        signed = xmldsig.sign_authorization_req(message, self.credentials.contract_key)
        if "bad_authorization_signature" in self.config.faults:
            _flip(signed.header.signature)
        return signed

    def _on_AuthorizationRes(self, message: Any, body: iso2.AuthorizationRes, now: float) -> EvStep:
        if body.evse_processing is not iso2.EVSEProcessing.Finished:
            self._ongoing("AuthorizationReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._authorization(), now)
        return self._send(self._charge_parameter_discovery(), now)

    def _charge_parameter_discovery(self) -> Any:
        c = self.config
        if self._schema == "din":
            return self._envelope(din.ChargeParameterDiscoveryReq(
                ev_requested_energy_transfer_type=din.EVRequestedEnergyTransfer(c.energy_mode.value),
                ev_charge_parameter=din.DC_EVChargeParameter(
                    dc_ev_status=self._din_status(), ev_maximum_current_limit=physical_value(din, c.max_current_a, "A"),
                    ev_maximum_power_limit=physical_value(din, c.max_power_w, "W"),
                    ev_maximum_voltage_limit=physical_value(din, c.max_voltage_v, "V"),
                    ev_energy_capacity=physical_value(din, c.capacity_wh, "Wh"),
                    ev_energy_request=physical_value(din, c.energy_request_wh, "Wh"), full_soc=100, bulk_soc=80,
                ),
            ))
        if c.energy_mode.is_dc:
            parameter: Any = iso2.DC_EVChargeParameter(
                departure_time=c.departure_time, dc_ev_status=self._iso2_status(),
                ev_maximum_current_limit=physical_value(iso2, c.max_current_a, "A"),
                ev_maximum_power_limit=physical_value(iso2, c.max_power_w, "W"),
                ev_maximum_voltage_limit=physical_value(iso2, c.max_voltage_v, "V"),
                ev_energy_capacity=physical_value(iso2, c.capacity_wh, "Wh"),
                ev_energy_request=physical_value(iso2, c.energy_request_wh, "Wh"), full_soc=100, bulk_soc=80,
            )
        else:
            parameter = iso2.AC_EVChargeParameter(
                departure_time=c.departure_time, e_amount=physical_value(iso2, c.energy_request_wh, "Wh"),
                ev_max_voltage=physical_value(iso2, 400.0, "V"), ev_max_current=physical_value(iso2, c.ac_max_current_a, "A"),
                ev_min_current=physical_value(iso2, 6.0, "A"),
            )
        return self._envelope(iso2.ChargeParameterDiscoveryReq(
            max_entries_sa_schedule_tuple=c.max_entries,
            requested_energy_transfer_mode=iso2.EnergyTransferMode(c.energy_mode.value), ev_charge_parameter=parameter,
        ))

    def _iso2_status(self) -> iso2.DC_EVStatus:
        return iso2.DC_EVStatus(ev_ready=True, ev_error_code=iso2.DC_EVErrorCode.NO_ERROR, evresssoc=min(100, self._soc))

    def _din_status(self) -> din.DC_EVStatus:
        return din.DC_EVStatus(ev_ready=True, ev_error_code=din.DC_EVErrorCode.NO_ERROR, evresssoc=min(100, self._soc))

    def _on_ChargeParameterDiscoveryRes(self, message: Any, body: Any, now: float) -> EvStep:
        if body.evse_processing is not body.evse_processing.__class__.Finished:
            self._ongoing("ChargeParameterDiscoveryReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._charge_parameter_discovery(), now)
        self._ongoing_since.pop("ChargeParameterDiscoveryReq", None)
        self.result.schedules = body.sa_schedules
        tuples = getattr(body.sa_schedules, "sa_schedule_tuple", None) or []
        if not tuples:
            return self._finish(False, "no SAScheduleTuple offered")
        self._sa_schedule_tuple_id = tuples[0].sa_schedule_tuple_id
        if self._renegotiating or not self.config.energy_mode.is_dc:
            self._renegotiating = False
            return self._send(self._power_delivery_start(tuples[0]), now)
        self._phase_started["cable_check"] = now
        return self._send(self._cable_check(), now)

    def _cable_check(self) -> Any:
        if self._schema == "din":
            return self._envelope(din.CableCheckReq(dc_ev_status=self._din_status()))
        return self._envelope(iso2.CableCheckReq(dc_ev_status=self._iso2_status()))

    def _on_CableCheckRes(self, message: Any, body: Any, now: float) -> EvStep:
        if body.evse_processing is not body.evse_processing.__class__.Finished:
            self._ongoing("CableCheckReq", now, self.config.cable_check_timeout)
            return self._later(self.config.ongoing_interval, lambda t: self._cable_check(), now)
        self._phase_started["pre_charge"] = now
        return self._send(self._pre_charge(), now)

    def _pre_charge(self) -> Any:
        c = self.config
        m = din if self._schema == "din" else iso2
        status = self._din_status() if self._schema == "din" else self._iso2_status()
        return self._envelope(m.PreChargeReq(dc_ev_status=status, ev_target_voltage=physical_value(m, c.battery_voltage_v, "V"),
                                             ev_target_current=physical_value(m, 2.0, "A")))

    def _on_PreChargeRes(self, message: Any, body: Any, now: float) -> EvStep:
        pv = body.evse_present_voltage
        self._evse_voltage = pv.value * 10.0**pv.multiplier
        if abs(self._evse_voltage - self.config.battery_voltage_v) > 10.0:
            if now - self._phase_started.get("pre_charge", now) >= self.config.pre_charge_timeout:
                return self._finish(False, "PreCharge did not reach the battery voltage in V2G_EVCC_PreCharge_Timeout")
            return self._later(self.config.ongoing_interval, lambda t: self._pre_charge(), now)
        tuples = self.result.schedules.sa_schedule_tuple
        return self._send(self._power_delivery_start(tuples[0]), now)

    def _power_delivery_start(self, tuple_: Any) -> Any:
        if self._schema == "din":
            return self._envelope(din.PowerDeliveryReq(
                ready_to_charge_state=True,
                charging_profile=din.ChargingProfile(sa_schedule_tuple_id=tuple_.sa_schedule_tuple_id, profile_entry=[
                    din.ProfileEntry(charging_profile_entry_start=0, charging_profile_entry_max_power=min(32767, int(self.config.max_power_w)))]),
                ev_power_delivery_parameter=din.DC_EVPowerDeliveryParameter(dc_ev_status=self._din_status(), charging_complete=False),
            ))
        entries = tuple_.p_max_schedule.p_max_schedule_entry
        profile = iso2.ChargingProfile(profile_entry=[
            iso2.ProfileEntry(charging_profile_entry_start=e.time_interval.start, charging_profile_entry_max_power=e.p_max)
            for e in entries[:24]
        ])
        parameter = None
        if self.config.energy_mode.is_dc:
            parameter = iso2.DC_EVPowerDeliveryParameter(dc_ev_status=self._iso2_status(), charging_complete=False)
        return self._envelope(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Start,
                                                    sa_schedule_tuple_id=tuple_.sa_schedule_tuple_id,
                                                    charging_profile=profile, ev_power_delivery_parameter=parameter))

    def _power_delivery(self, progress: str) -> Any:
        if self._schema == "din":
            return self._envelope(din.PowerDeliveryReq(
                ready_to_charge_state=False,
                ev_power_delivery_parameter=din.DC_EVPowerDeliveryParameter(dc_ev_status=self._din_status(), charging_complete=True),
            ))
        parameter = None
        if self.config.energy_mode.is_dc:
            parameter = iso2.DC_EVPowerDeliveryParameter(dc_ev_status=self._iso2_status(), charging_complete=progress == "Stop")
        return self._envelope(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress(progress),
                                                    sa_schedule_tuple_id=self._sa_schedule_tuple_id,
                                                    ev_power_delivery_parameter=parameter))

    def _on_PowerDeliveryRes(self, message: Any, body: Any, now: float) -> EvStep:
        if self._stopping:
            if self.config.energy_mode.is_dc:
                return self._send(self._welding(), now)
            return self._send(self._session_stop(), now)
        if self._renegotiating:
            return self._send(self._charge_parameter_discovery(), now)
        return self._later(0.0, lambda t: self._loop_request(), now)

    def _loop_request(self) -> Any:
        self._soc = min(100, self._soc + 1)
        last = self._loop_count + 1 >= self._stop_after
        if self._schema == "din":
            c = self.config
            return self._envelope(din.CurrentDemandReq(
                dc_ev_status=self._din_status(), ev_target_current=physical_value(din, c.max_current_a, "A"),
                ev_maximum_voltage_limit=physical_value(din, c.max_voltage_v, "V"),
                ev_maximum_current_limit=physical_value(din, c.max_current_a, "A"),
                ev_maximum_power_limit=physical_value(din, c.max_power_w, "W"),
                bulk_charging_complete=False, charging_complete=last,
                ev_target_voltage=physical_value(din, c.battery_voltage_v, "V"),
            ))
        if not self.config.energy_mode.is_dc:
            return self._envelope(iso2.ChargingStatusReq())
        c = self.config
        return self._envelope(iso2.CurrentDemandReq(
            dc_ev_status=self._iso2_status(), ev_target_current=physical_value(iso2, c.max_current_a, "A"),
            ev_maximum_voltage_limit=physical_value(iso2, c.max_voltage_v, "V"),
            ev_maximum_current_limit=physical_value(iso2, c.max_current_a, "A"),
            ev_maximum_power_limit=physical_value(iso2, c.max_power_w, "W"),
            bulk_charging_complete=False, charging_complete=last,
            ev_target_voltage=physical_value(iso2, c.battery_voltage_v, "V"),
        ))

    def _on_loop_response(self, body: Any, now: float) -> EvStep:
        self._loop_count += 1
        self.result.loop_messages += 1
        if "silent_in_loop" in self.config.faults:
            self._response_deadline = None
            return EvStep()  # the EV goes quiet; the connection stays open
        status = getattr(body, "ac_evse_status", None) or getattr(body, "dc_evse_status", None)
        notification = getattr(getattr(status, "evse_notification", None), "value", "None")
        if getattr(body, "receipt_required", None):
            return self._send(self._metering_receipt(body), now)
        renegotiate = notification == "ReNegotiation" or (
            self.config.renegotiate_after is not None and self._loop_count == self.config.renegotiate_after
        )
        if renegotiate and self._schema == "iso2":
            self._renegotiating = True
            self.result.renegotiations += 1
            return self._send(self._power_delivery("Renegotiate"), now)
        if notification == "StopCharging" or self._loop_count >= self._stop_after:
            self._stopping = True
            return self._send(self._power_delivery("Stop"), now)
        return self._later(self.config.loop_interval, lambda t: self._loop_request(), now)

    def _on_ChargingStatusRes(self, message: Any, body: Any, now: float) -> EvStep:
        return self._on_loop_response(body, now)

    def _on_CurrentDemandRes(self, message: Any, body: Any, now: float) -> EvStep:
        return self._on_loop_response(body, now)

    def _metering_receipt(self, body: Any) -> Any:
        message = self._envelope(iso2.MeteringReceiptReq(
            id="ID1", session_id=self._session_id, sa_schedule_tuple_id=self._sa_schedule_tuple_id,
            meter_info=body.meter_info or iso2.MeterInfo(meter_id="unknown")))
        if self.config.payment is not PaymentOption.Contract:
            return message
        signed = xmldsig.sign_metering_receipt_req(message, self.credentials.contract_key)
        if "bad_metering_signature" in self.config.faults:
            _flip(signed.header.signature)
        return signed

    def _on_MeteringReceiptRes(self, message: Any, body: Any, now: float) -> EvStep:
        self.result.receipts += 1
        if self._loop_count >= self._stop_after:
            self._stopping = True
            return self._send(self._power_delivery("Stop"), now)
        return self._later(self.config.loop_interval, lambda t: self._loop_request(), now)

    def _welding(self) -> Any:
        m = din if self._schema == "din" else iso2
        status = self._din_status() if self._schema == "din" else self._iso2_status()
        return self._envelope(m.WeldingDetectionReq(dc_ev_status=status))

    def _on_WeldingDetectionRes(self, message: Any, body: Any, now: float) -> EvStep:
        return self._send(self._session_stop(), now)

    def _session_stop(self) -> Any:
        if self._schema == "din":
            return self._envelope(din.SessionStop())
        session = iso2.ChargingSession.Pause if self.config.pause else iso2.ChargingSession.Terminate
        return self._envelope(iso2.SessionStopReq(charging_session=session))

    def _on_SessionStopRes(self, message: Any, body: Any, now: float) -> EvStep:
        self.result.paused = self.config.pause and self._schema == "iso2"
        return self._finish(True, "session paused" if self.result.paused else "session ended")

    # DIN 70121 -------------------------------------------------------------
    def _on_ServicePaymentSelectionRes(self, message: Any, body: Any, now: float) -> EvStep:
        return self._send(self._envelope(din.ContractAuthenticationReq()), now)

    def _on_ContractAuthenticationRes(self, message: Any, body: Any, now: float) -> EvStep:
        if body.evse_processing is not din.EVSEProcessing.Finished:
            self._ongoing("ContractAuthenticationReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._envelope(din.ContractAuthenticationReq()), now)
        return self._send(self._charge_parameter_discovery(), now)


class _EvFailure(Exception):
    pass


def _flip(signature) -> None:
    """Break a signature on purpose (one bit of r)."""
    raw = bytearray(signature.signature_value.value)
    raw[5] ^= 0x01
    signature.signature_value.value = bytes(raw)
