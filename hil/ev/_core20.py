"""A sans-I/O ISO 15118-20 EV (EVCC) for the rig and the tests: AC, DC, AC_BPT and DC_BPT, with
EIM or Plug & Charge (signed AuthorizationReq and MeteringConfirmationReq, contract
installation), scheduled or dynamic control, schedule renegotiation, standby, pause and
resume, service renegotiation, and a battery that charges and discharges.

Rules of this module (as ``hil.ev._core``):

- Payload bytes in, payload bytes out, time passed in: ``start(now)``,
  ``receive_payload(payload, now, payload_type)``, ``tick(now)`` when ``deadline()`` passed.
  Each step says the V2GTP payload type of what it sends (0x8001 for the handshake, then
  0x8002 common, 0x8003 AC, 0x8004 DC messages, as ISO 15118-20 has it).
- It behaves as an EV must: it waits V2G_EVCC_Msg_Timeout for each response, repeats
  requests answered ``Ongoing`` (at most V2G_EVCC_Ongoing_Timeout), stops on a FAILED code
  and, on a refused authorization (a WARNING code), stops the session politely with
  SessionStopReq; :attr:`Ev20Session.result` says why.
- How it drives power: scheduled control follows the chosen ScheduleTuple at each moment:
  it charges at the charging limit when there is one, and discharges at the discharging
  limit when the charging limit is 0 and it may discharge (a V2G-willing EV), both within
  its own limits. Dynamic control sends its limits and follows the EVSE's target (AC:
  EVSETargetActivePower; DC: the EVSE's maximum charge power, or its maximum discharge
  power when charging is 0). Every charge-loop response is recorded with the power the
  EVSE asked for (:attr:`Ev20Result.loop`).
- ``faults`` make it misbehave on purpose for negative tests (see :data:`FAULTS20`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hil.cps20 import rig_decrypt_contract_key
from hil.ev._core import EvCredentials, EvStep, TimelineEntry
from pnc_bridge import exi, timing, xmldsig
from pnc_bridge.link.v2gtp import PayloadType
from pnc_bridge.messages import apphand, iso20 as m
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.secc.effects import ControlMode, EnergyService, PaymentOption
from pnc_bridge.secc.iso20._services import read_parameter_set
from pnc_bridge.secc.schedule import from_rational, rational_number

__all__ = ["FAULTS20", "Ev20Config", "Ev20Result", "Ev20Session", "LoopSample"]

#: Faults the -20 EV can be told to commit:
#: ``unsigned_authorization``, ``bad_authorization_signature``, ``wrong_gen_challenge``,
#: ``bad_metering_signature``, ``silent_in_loop``, ``foreign_session_id``,
#: ``skip_to_power_delivery`` (PowerDeliveryReq right after AuthorizationSetup),
#: ``discharge_beyond_limits`` (asks to discharge twice what it may, in its power profile and
#: its scheduled DC targets), ``discharge_without_bpt`` (negative targets in a DC session
#: without BPT), ``wrong_control_mode`` (dynamic charge-loop requests in a scheduled session),
#: ``unknown_schedule_tuple`` (selects a ScheduleTupleID that was not offered).
FAULTS20 = frozenset({
    "unsigned_authorization", "bad_authorization_signature", "wrong_gen_challenge", "bad_metering_signature",
    "silent_in_loop", "foreign_session_id", "skip_to_power_delivery", "discharge_beyond_limits",
    "discharge_without_bpt", "wrong_control_mode", "unknown_schedule_tuple",
})

_NAMESPACE = {False: "urn:iso:std:iso:15118:-20:AC", True: "urn:iso:std:iso:15118:-20:DC"}
_TYPE = {"iso20-common": PayloadType.MAINSTREAM, "iso20-ac": PayloadType.AC_MAINSTREAM, "iso20-dc": PayloadType.DC_MAINSTREAM}
_SCHEMA_OF_TYPE = {PayloadType.MAINSTREAM: "iso20-common", PayloadType.AC_MAINSTREAM: "iso20-ac",
                   PayloadType.DC_MAINSTREAM: "iso20-dc", PayloadType.SCHEDULE_RENEGOTIATION: "iso20-common",
                   PayloadType.METERING_CONFIRMATION: "iso20-common"}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _rn(value: float) -> m.RationalNumber:
    return rational_number(value)


def _schema_of(message: Any) -> str:
    name = type(message).__name__
    if name.startswith("AC_"):
        return "iso20-ac"
    if name.startswith("DC_"):
        return "iso20-dc"
    return "iso20-common"


@dataclass(frozen=True)
class Ev20Config:
    """How the emulated -20 EV behaves. Powers in W (discharge limits as magnitudes)."""

    service: EnergyService = EnergyService.DC_BPT
    control_mode: ControlMode = ControlMode.ScheduledControl
    payment: PaymentOption = PaymentOption.ExternalPayment
    credentials: EvCredentials | None = None
    certificate_installation: bool | None = None  # None: install when there is no contract
    pricing: int = 0  # ServiceDetail parameter set with this Pricing (0 none, 2 price levels)
    evccid: str = "PNCBRIDGEEV0001"
    loop_messages: int = 5
    loop_interval: float = 0.05
    ongoing_interval: float = 0.05
    departure_time: int = 7200
    max_supporting_points: int = 1024
    capacity_wh: float = 60000.0
    start_soc: float = 40.0
    min_soc: int = 20
    target_soc: int = 80
    battery_voltage_v: float = 400.0
    max_voltage_v: float = 450.0
    min_voltage_v: float = 200.0
    max_charge_power_w: float = 50000.0
    min_charge_power_w: float = 0.0
    max_charge_current_a: float = 125.0
    min_charge_current_a: float = 0.0
    max_discharge_power_w: float = 10000.0
    min_discharge_power_w: float = 0.0
    max_discharge_current_a: float = 25.0
    min_discharge_current_a: float = 0.0
    ac_phases: int = 3
    renegotiate_after: int | None = None  # EV-initiated ScheduleRenegotiation after this many loop messages
    standby_after: int | None = None  # PowerDelivery Standby after this many loop messages ...
    standby_loops: int = 2  # ... for this many, then PowerDelivery Start
    pause: bool = False  # end with SessionStop Pause
    service_renegotiations: int = 0  # SessionStop ServiceRenegotiation this many times, then charge again
    resume_session_id: bytes | None = None
    faults: frozenset[str] = frozenset()
    msg_timeouts: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_ISO20))
    ongoing_timeout: float = timing.V2G_EVCC_Ongoing_Timeout
    cable_check_timeout: float = timing.V2G_EVCC_CableCheck_Timeout
    pre_charge_timeout: float = timing.V2G_EVCC_PreCharge_Timeout_ISO20
    random_bytes: Callable[[int], bytes] = os.urandom

    def __post_init__(self) -> None:
        unknown = set(self.faults) - FAULTS20
        if unknown:
            raise ValueError(f"unknown EV faults: {sorted(unknown)}")
        if self.payment is PaymentOption.Contract and self.credentials is None:
            raise ValueError("Plug & Charge (Contract) needs credentials")
        if self.service not in (EnergyService.AC, EnergyService.DC, EnergyService.AC_BPT, EnergyService.DC_BPT):
            raise ValueError(f"the emulator drives AC, DC, AC_BPT and DC_BPT, not {self.service.value}")
        if not 12 <= self.max_supporting_points <= 1024:
            raise ValueError("max_supporting_points must be 12..1024 (the XSD's range)")

    @property
    def dc(self) -> bool:
        return self.service.is_dc


@dataclass(frozen=True)
class LoopSample:
    """One charge-loop exchange as the EV saw it: ``t`` seconds since the session started,
    the power the EV drew (negative: gave back), the EVSE's target (dynamic control; None
    in scheduled), and the EV's state of charge after it."""

    t: float
    power_w: float
    evse_target_w: float | None
    soc: float


@dataclass
class Ev20Result:
    ok: bool = False
    reason: str = ""
    protocol: str | None = None
    session_id: bytes = b""
    loop_messages: int = 0
    receipts: int = 0
    renegotiations: int = 0
    service_renegotiations: int = 0
    standbys: int = 0
    installed_contract: bool = False
    schedule_tuples: list = field(default_factory=list)  # the ScheduleTuples received last
    selected_tuple: int | None = None
    parameter_set: dict = field(default_factory=dict)
    loop: list[LoopSample] = field(default_factory=list)
    charged_wh: float = 0.0
    discharged_wh: float = 0.0
    paused: bool = False
    resumed: bool = False
    last_code: str | None = None
    evse_discharge_limit_w: float | None = None  # from ChargeParameterDiscoveryRes (BPT)


class _EvFailure(Exception):
    pass


class Ev20Session:
    """One ISO 15118-20 EV communication session over one connection."""

    def __init__(self, config: Ev20Config, *, now: float, unix_time: float) -> None:
        self.config = config
        self.result = Ev20Result()
        self.timeline: list[TimelineEntry] = []
        self.credentials = config.credentials
        self._t0 = now
        self._now = now
        self._unix_base = unix_time - now
        self._session_id = bytes(8)
        self._expect: tuple[type, str] | None = None
        self._response_deadline: float | None = None
        self._next_send: tuple[float, Callable[[float], Any]] | None = None
        self._ongoing_since: dict[str, float] = {}
        self._phase_started: dict[str, float] = {}
        self._gen_challenge: bytes | None = None
        self._auth_services: list = []
        self._set_id: int | None = None
        self._tuple: Any = None
        self._schedule_t0 = now
        self._loop_count = 0
        self._soc = float(config.start_soc)
        self._last_loop_t: float | None = None
        self._power = 0.0
        self._evse_target: float | None = None
        self._evse_voltage = 0.0
        self._evse_limits: dict[str, float] = {}
        self._renegotiating = False
        self._standby_left = 0
        self._stopping = False
        self._service_renegotiations_left = config.service_renegotiations
        self._give_up: str | None = None
        self._done = False

    # -- driving ----------------------------------------------------------- #
    @property
    def done(self) -> bool:
        return self._done

    @property
    def soc(self) -> float:
        return self._soc

    def deadline(self) -> float | None:
        if self._done:
            return None
        candidates = [d for d in (self._response_deadline, self._next_send[0] if self._next_send else None) if d is not None]
        return min(candidates) if candidates else None

    def start(self, now: float) -> EvStep:
        self._now = now
        offer = apphand.AppProtocol(protocol_namespace=_NAMESPACE[self.config.dc], version_number_major=1,
                                    version_number_minor=0, schema_id=1, priority=1)
        return self._send(apphand.SupportedAppProtocolReq(app_protocol=[offer]), now)

    def tick(self, now: float) -> EvStep:
        if self._done:
            return EvStep()
        self._now = now
        if self._response_deadline is not None and now >= self._response_deadline:
            name = self._expect[1] if self._expect else "request"
            return self._finish(False, f"no response to {name} within V2G_EVCC_Msg_Timeout")
        if self._next_send is not None and now >= self._next_send[0]:
            _, build = self._next_send
            self._next_send = None
            try:
                return self._send(build(now), now)
            except _EvFailure as exc:
                return self._finish(False, str(exc))
        return EvStep()

    def abort(self, reason: str) -> None:
        if not self._done:
            self._finish(False, reason)

    def connection_lost(self, now: float) -> None:
        if not self._done:
            self._finish(False, "the SECC closed the connection")

    def receive_payload(self, payload: bytes, now: float, payload_type: int | None = None) -> EvStep:
        if self._done:
            return EvStep()
        self._now = now
        if self._expect is not None and self._expect[0] is apphand.SupportedAppProtocolRes:
            schema = "apphand"
        else:
            schema = _SCHEMA_OF_TYPE.get(payload_type) if payload_type is not None else None
            if schema is None:
                return self._finish(False, f"V2GTP payload type {payload_type!r} carries no -20 message")
        try:
            message = exi.decode(schema, payload)
        except exi.ExiDecodeError as exc:
            return self._finish(False, f"undecodable response: {exc}")
        self._log(now, "EVSE->EV", message)
        if self._expect is None or not isinstance(message, self._expect[0]):
            return self._finish(False, f"unexpected {type(message).__name__}")
        self._response_deadline = None
        self._expect = None
        if schema == "apphand":
            return self._on_handshake(message, now)
        code = message.response_code.value
        self.result.last_code = code
        if code.startswith("FAILED"):
            return self._finish(False, f"{type(message).__name__}: {code}")
        try:
            handler = getattr(self, f"_on_{type(message).__name__}")
            return handler(message, now)
        except _EvFailure as exc:
            return self._finish(False, str(exc))

    # -- sending ------------------------------------------------------------ #
    def _header(self, signature: Any = None, *, setup: bool = False) -> m.MessageHeader:
        session_id = self._session_id
        if "foreign_session_id" in self.config.faults and not setup:
            session_id = bytes(b ^ 0xFF for b in session_id)
        return m.MessageHeader(session_id=session_id, time_stamp=int(self._unix_base + self._now), signature=signature)

    def _send(self, message: Any, now: float) -> EvStep:
        self._now = now
        if isinstance(message, apphand.SupportedAppProtocolReq):
            payload, ptype = exi.encode("apphand", message), PayloadType.SAP
            self._expect = (apphand.SupportedAppProtocolRes, "supportedAppProtocolReq")
            timeout = timing.V2G_EVCC_Msg_Timeout_DIN["supportedAppProtocolReq"]
        else:
            schema = _schema_of(message)
            payload, ptype = exi.encode(schema, message), _TYPE[schema]
            name = type(message).__name__
            self._expect = (getattr(m, name[:-3] + "Res"), name)
            timeout = self.config.msg_timeouts.get(name, 2.0)
        self._log(now, "EV->EVSE", message)
        self._response_deadline = now + timeout
        return EvStep(send=payload, payload_type=ptype)

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

    def _log(self, now: float, direction: str, message: Any) -> None:
        name = type(message).__name__
        if name.startswith("SupportedAppProtocol"):
            name = "s" + name[1:]
        detail = []
        for attr in ("response_code", "evse_processing", "ev_processing", "charge_progress", "charging_session",
                     "selected_authorization_service"):
            v = getattr(message, attr, None)
            if v is not None:
                detail.append(f"{attr}={getattr(v, 'value', v)}")
        status = getattr(message, "evse_status", None)
        if status is not None:
            detail.append(f"EVSENotification={status.evse_notification.value}")
        self.timeline.append(TimelineEntry(now - self._t0, direction, name, " ".join(detail)))

    def _ongoing(self, name: str, now: float, limit: float | None = None) -> None:
        since = self._ongoing_since.setdefault(name, now)
        if now - since >= (limit if limit is not None else self.config.ongoing_timeout):
            raise _EvFailure(f"{name} still Ongoing after the EV's timeout")

    def _at(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._unix_base + now, dt.timezone.utc)

    def _stop_session(self, now: float, reason: str) -> EvStep:
        """Give up politely: SessionStopReq Terminate, then end with ``reason`` as a failure."""
        self._give_up = reason
        return self._send(m.SessionStopReq(header=self._header(), charging_session=m.ChargingSession.Terminate,
                                           ev_termination_explanation=reason[:160]), now)

    # -- handshake and setup ------------------------------------------------ #
    def _on_handshake(self, res: apphand.SupportedAppProtocolRes, now: float) -> EvStep:
        if not res.response_code.value.startswith("OK"):
            return self._finish(False, f"no common protocol ({res.response_code.value})")
        self.result.protocol = "iso20-dc" if self.config.dc else "iso20-ac"
        resume = self.config.resume_session_id
        self._session_id = resume if resume is not None else bytes(8)
        return self._send(m.SessionSetupReq(header=self._header(setup=True), evccid=self.config.evccid), now)

    def _on_SessionSetupRes(self, res: m.SessionSetupRes, now: float) -> EvStep:
        self._session_id = res.header.session_id
        self.result.session_id = self._session_id
        self.result.resumed = res.response_code is m.ResponseCode.OK_OldSessionJoined
        if "skip_to_power_delivery" in self.config.faults:
            return self._send(m.PowerDeliveryReq(header=self._header(), ev_processing=m.Processing.Finished,
                                                 charge_progress=m.ChargeProgress.Start), now)
        return self._send(m.AuthorizationSetupReq(header=self._header()), now)

    def _on_AuthorizationSetupRes(self, res: m.AuthorizationSetupRes, now: float) -> EvStep:
        self._auth_services = list(res.authorization_services)
        if res.pnc_asres_authorization_mode is not None:
            self._gen_challenge = res.pnc_asres_authorization_mode.gen_challenge
        if self.config.payment is PaymentOption.ExternalPayment:
            if m.Authorization.EIM not in self._auth_services:
                return self._stop_session(now, "EIM is not offered")
            return self._send(self._authorization(), now)
        if m.Authorization.PnC not in self._auth_services:
            return self._stop_session(now, "Plug & Charge is not offered")
        if self._install_needed():
            if not res.certificate_installation_service:
                return self._stop_session(now, "no contract certificate and no certificate installation service")
            return self._send(self._certificate_installation(), now)
        return self._send(self._authorization(), now)

    # -- Plug & Charge -------------------------------------------------------- #
    def _install_needed(self) -> bool:
        if self.config.certificate_installation is None:
            return not self.credentials.contract_chain
        return bool(self.config.certificate_installation)

    def _certificate_installation(self) -> m.CertificateInstallationReq:
        creds = self.credentials
        leaf, *subs = creds.oem_chain
        root = creds.v2g_root
        req = m.CertificateInstallationReq(
            header=self._header(),
            oem_provisioning_certificate_chain=m.SignedCertificateChain(
                id="ID1", certificate=_der(leaf), sub_certificates=m.SubCertificates(certificate=[_der(c) for c in subs]) if subs else None),
            list_of_root_certificate_ids=m.ListOfRootCertificateIDs(root_certificate_id=[
                ds.X509IssuerSerial(x509_issuer_name=root.issuer.rfc4514_string(), x509_serial_number=root.serial_number)]),
            maximum_contract_certificate_chains=1,
        )
        return xmldsig.sign_message(req, creds.oem_key)

    def _on_CertificateInstallationRes(self, res: m.CertificateInstallationRes, now: float) -> EvStep:
        if res.evse_processing is not m.Processing.Finished:
            self._ongoing("CertificateInstallationReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._certificate_installation(), now)
        if res.response_code is not m.ResponseCode.OK:
            return self._stop_session(now, f"CertificateInstallationRes: {res.response_code.value}")
        # the CPS chain against the V2G root the EV trusts, then the signature over SignedInstallationData
        verdict = xmldsig.verify_certificate_installation_res(res, store=[self.credentials.v2g_root], at=self._at(now))
        if not verdict.valid:
            raise _EvFailure(f"CertificateInstallationRes refused: {verdict.as_dict()}")
        data = res.signed_installation_data
        chain = data.contract_certificate_chain
        try:
            leaf = x509.load_der_x509_certificate(chain.certificate)
            subs = [x509.load_der_x509_certificate(c) for c in chain.sub_certificates.certificate]
            if data.secp521_encrypted_private_key is None:
                raise ValueError("no SECP521 encrypted key")
            key = rig_decrypt_contract_key(data.dh_public_key, data.secp521_encrypted_private_key, self.credentials.oem_key,
                                           expected_public_key=leaf.public_key())
        except ValueError as exc:
            raise _EvFailure(f"contract key not usable: {exc}") from None
        emaid = leaf.subject.rfc4514_string().split("CN=", 1)[-1].split(",", 1)[0]
        self.credentials = replace(self.credentials, contract_chain=(leaf, *subs), contract_key=key, emaid=emaid)
        self.result.installed_contract = True
        return self._send(self._authorization(), now)

    def _authorization(self) -> m.AuthorizationReq:
        if self.config.payment is PaymentOption.ExternalPayment:
            return m.AuthorizationReq(header=self._header(), selected_authorization_service=m.Authorization.EIM,
                                      eim_areq_authorization_mode=m.EIM_AReqAuthorizationMode())
        creds = self.credentials
        if not creds.contract_chain:
            raise _EvFailure("no contract certificate")
        leaf, *subs = creds.contract_chain
        challenge = self._gen_challenge or bytes(16)
        if "wrong_gen_challenge" in self.config.faults:
            challenge = bytes(b ^ 0x55 for b in challenge)
        req = m.AuthorizationReq(
            header=self._header(), selected_authorization_service=m.Authorization.PnC,
            pnc_areq_authorization_mode=m.PnC_AReqAuthorizationMode(
                id="ID1", gen_challenge=challenge,
                contract_certificate_chain=m.ContractCertificateChain(
                    certificate=_der(leaf), sub_certificates=m.SubCertificates(certificate=[_der(c) for c in subs]))),
        )
        if "unsigned_authorization" in self.config.faults:
            return req
        signed = xmldsig.sign_authorization_req(req, creds.contract_key)
        if "bad_authorization_signature" in self.config.faults:
            _flip(signed.header.signature)
        return signed

    def _on_AuthorizationRes(self, res: m.AuthorizationRes, now: float) -> EvStep:
        if res.evse_processing is not m.Processing.Finished:
            self._ongoing("AuthorizationReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._authorization(), now)
        if res.response_code is not m.ResponseCode.OK:
            return self._stop_session(now, f"authorization refused: {res.response_code.value}")
        return self._service_discovery(now)

    # -- services -------------------------------------------------------------- #
    def _service_discovery(self, now: float) -> EvStep:
        return self._send(m.ServiceDiscoveryReq(header=self._header(),
                                                supported_service_ids=m.ServiceIDList(service_id=[self.config.service.service_id])), now)

    def _on_ServiceDiscoveryRes(self, res: m.ServiceDiscoveryRes, now: float) -> EvStep:
        offered = [s.service_id for s in res.energy_transfer_service_list.service]
        if self.config.service.service_id not in offered:
            return self._stop_session(now, f"{self.config.service.value} not offered (offered: {offered})")
        return self._send(m.ServiceDetailReq(header=self._header(), service_id=self.config.service.service_id), now)

    def _on_ServiceDetailRes(self, res: m.ServiceDetailRes, now: float) -> EvStep:
        wanted = self.config.control_mode.parameter
        for ps in res.service_parameter_list.parameter_set:
            values = read_parameter_set(ps)
            if values.get("ControlMode") == wanted and values.get("Pricing", 0) == self.config.pricing:
                self._set_id = ps.parameter_set_id
                self.result.parameter_set = values
                break
        else:
            return self._stop_session(now, f"no parameter set with ControlMode {wanted} and Pricing {self.config.pricing}")
        return self._send(m.ServiceSelectionReq(
            header=self._header(),
            selected_energy_transfer_service=m.SelectedService(service_id=self.config.service.service_id, parameter_set_id=self._set_id),
        ), now)

    def _on_ServiceSelectionRes(self, res: m.ServiceSelectionRes, now: float) -> EvStep:
        return self._send(self._charge_parameter_discovery(), now)

    def _charge_parameter_discovery(self) -> Any:
        c = self.config
        bpt = c.service.is_bpt
        if c.dc:
            fields = dict(
                ev_maximum_charge_power=_rn(c.max_charge_power_w), ev_minimum_charge_power=_rn(c.min_charge_power_w),
                ev_maximum_charge_current=_rn(c.max_charge_current_a), ev_minimum_charge_current=_rn(c.min_charge_current_a),
                ev_maximum_voltage=_rn(c.max_voltage_v), ev_minimum_voltage=_rn(c.min_voltage_v), target_soc=c.target_soc,
            )
            mode: Any = (m.BPT_DC_CPDReqEnergyTransferMode(
                **fields, ev_maximum_discharge_power=_rn(c.max_discharge_power_w),
                ev_minimum_discharge_power=_rn(c.min_discharge_power_w),
                ev_maximum_discharge_current=_rn(c.max_discharge_current_a),
                ev_minimum_discharge_current=_rn(c.min_discharge_current_a),
            ) if bpt else m.DC_CPDReqEnergyTransferMode(**fields))
            return m.DC_ChargeParameterDiscoveryReq(header=self._header(), dc_cpd_req_energy_transfer_mode=mode)
        fields = dict(ev_maximum_charge_power=_rn(c.max_charge_power_w), ev_minimum_charge_power=_rn(c.min_charge_power_w))
        mode = (m.BPT_AC_CPDReqEnergyTransferMode(
            **fields, ev_maximum_discharge_power=_rn(c.max_discharge_power_w),
            ev_minimum_discharge_power=_rn(c.min_discharge_power_w),
        ) if bpt else m.AC_CPDReqEnergyTransferMode(**fields))
        return m.AC_ChargeParameterDiscoveryReq(header=self._header(), ac_cpd_req_energy_transfer_mode=mode)

    def _on_AC_ChargeParameterDiscoveryRes(self, res: Any, now: float) -> EvStep:
        return self._after_cpd(res.ac_cpd_res_energy_transfer_mode, now)

    def _on_DC_ChargeParameterDiscoveryRes(self, res: Any, now: float) -> EvStep:
        return self._after_cpd(res.dc_cpd_res_energy_transfer_mode, now)

    def _after_cpd(self, mode: Any, now: float) -> EvStep:
        discharge = from_rational(getattr(mode, "evse_maximum_discharge_power", None))
        self.result.evse_discharge_limit_w = None if discharge is None else abs(discharge)
        return self._send(self._schedule_exchange(), now)

    # -- schedules -------------------------------------------------------------- #
    def _energy(self, soc: float) -> float:
        return (soc - self._soc) / 100.0 * self.config.capacity_wh

    def _schedule_exchange(self) -> m.ScheduleExchangeReq:
        c = self.config
        target, maximum, minimum = self._energy(c.target_soc), self._energy(100.0), self._energy(c.min_soc)
        if c.control_mode is ControlMode.DynamicControl:
            dynamic = m.Dynamic_SEReqControlMode(
                departure_time=c.departure_time, minimum_soc=c.min_soc, target_soc=c.target_soc,
                ev_target_energy_request=_rn(target), ev_maximum_energy_request=_rn(maximum),
                ev_minimum_energy_request=_rn(minimum),
                ev_maximum_v2x_energy_request=_rn(maximum) if c.service.is_bpt else None,
                ev_minimum_v2x_energy_request=_rn(minimum) if c.service.is_bpt else None,
            )
            return m.ScheduleExchangeReq(header=self._header(), maximum_supporting_points=c.max_supporting_points,
                                         dynamic_se_req_control_mode=dynamic)
        offer = None
        if c.service.is_bpt:
            offer = m.EVEnergyOffer(
                ev_power_schedule=m.EVPowerSchedule(time_anchor=int(self._unix_base + self._now), ev_power_schedule_entries=m.EVPowerScheduleEntryList(
                    ev_power_schedule_entry=[m.EVPowerScheduleEntry(duration=c.departure_time, power=_rn(-c.max_discharge_power_w))])),
                ev_absolute_price_schedule=m.EVAbsolutePriceSchedule(
                    time_anchor=int(self._unix_base + self._now), currency="EUR",
                    price_algorithm="urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power",
                    ev_price_rule_stacks=m.EVPriceRuleStackList(ev_price_rule_stack=[m.EVPriceRuleStack(
                        duration=0, ev_price_rule=[m.EVPriceRule(energy_fee=_rn(0), power_range_start=_rn(0))])])),
            )
        scheduled = m.Scheduled_SEReqControlMode(
            departure_time=c.departure_time, ev_target_energy_request=_rn(target), ev_maximum_energy_request=_rn(maximum),
            ev_minimum_energy_request=_rn(minimum), ev_energy_offer=offer,
        )
        return m.ScheduleExchangeReq(header=self._header(), maximum_supporting_points=c.max_supporting_points,
                                     scheduled_se_req_control_mode=scheduled)

    def _on_ScheduleExchangeRes(self, res: m.ScheduleExchangeRes, now: float) -> EvStep:
        if res.evse_processing is not m.Processing.Finished:
            self._ongoing("ScheduleExchangeReq", now)
            return self._later(self.config.ongoing_interval, lambda t: self._schedule_exchange(), now)
        self._ongoing_since.pop("ScheduleExchangeReq", None)
        self._schedule_t0 = now
        if self.config.control_mode is ControlMode.ScheduledControl:
            if res.scheduled_se_res_control_mode is None:
                raise _EvFailure("ScheduleExchangeRes without Scheduled_SEResControlMode in a scheduled session")
            tuples = res.scheduled_se_res_control_mode.schedule_tuple
            self.result.schedule_tuples = tuples
            self._tuple = tuples[0]
            self.result.selected_tuple = self._tuple.schedule_tuple_id
        if self._renegotiating or not self.config.dc:
            self._renegotiating = False
            return self._send(self._power_delivery(m.ChargeProgress.Start), now)
        self._phase_started["cable_check"] = now
        return self._send(m.DC_CableCheckReq(header=self._header()), now)

    def _planned_at(self, t: float, *, loop: bool = False) -> float:
        """Scheduled control: the power the EV plans at ``t`` s into the chosen tuple (``loop``:
        what it asks for in the charge loop, where ``discharge_without_bpt`` misbehaves)."""
        c = self.config
        tup = self._tuple
        charge = _entry(tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry, t) if tup else None
        discharge = None
        if tup is not None and tup.discharging_schedule is not None:
            discharge = _entry(tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry, t)
        if charge is not None and charge > 0:
            return min(charge, c.max_charge_power_w)
        if c.service.is_bpt and discharge is not None and discharge < 0:
            magnitude = min(-discharge, c.max_discharge_power_w)
            if "discharge_beyond_limits" in c.faults:
                magnitude = 2 * max(-discharge, c.max_discharge_power_w)
            return -magnitude
        if loop and "discharge_without_bpt" in c.faults:
            return -c.max_discharge_power_w
        return 0.0

    def _power_profile(self) -> m.EVPowerProfile:
        c = self.config
        if c.control_mode is ControlMode.DynamicControl:
            entries = [m.PowerScheduleEntry(duration=c.departure_time, power=_rn(c.max_charge_power_w))]
            return m.EVPowerProfile(time_anchor=int(self._unix_base + self._now), dynamic_evppt_control_mode=m.Dynamic_EVPPTControlMode(),
                                    ev_power_profile_entries=m.EVPowerProfileEntryList(ev_power_profile_entry=entries))
        entries, t = [], 0
        for e in self._tuple.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry[:2048]:
            entries.append(m.PowerScheduleEntry(duration=e.duration, power=_rn(self._planned_at(t))))
            t += e.duration
        tuple_id = self._tuple.schedule_tuple_id
        if "unknown_schedule_tuple" in c.faults:
            tuple_id += 100
        return m.EVPowerProfile(
            time_anchor=int(self._unix_base + self._now),
            scheduled_evppt_control_mode=m.Scheduled_EVPPTControlMode(selected_schedule_tuple_id=tuple_id),
            ev_power_profile_entries=m.EVPowerProfileEntryList(ev_power_profile_entry=entries),
        )

    def _power_delivery(self, progress: m.ChargeProgress) -> m.PowerDeliveryReq:
        profile = self._power_profile() if progress is m.ChargeProgress.Start else None
        channel = None
        if self.config.service.is_bpt and progress is m.ChargeProgress.Start:
            planned = self._planned_at(0.0) if self.config.control_mode is ControlMode.ScheduledControl else 1.0
            channel = m.ChannelSelection.Discharge if planned < 0 else m.ChannelSelection.Charge
        return m.PowerDeliveryReq(header=self._header(), ev_processing=m.Processing.Finished, charge_progress=progress,
                                  ev_power_profile=profile, bpt_channel_selection=channel)

    # -- DC preparation ------------------------------------------------------ #
    def _on_DC_CableCheckRes(self, res: m.DC_CableCheckRes, now: float) -> EvStep:
        if res.evse_processing is not m.Processing.Finished:
            self._ongoing("DC_CableCheckReq", now, self.config.cable_check_timeout)
            return self._later(self.config.ongoing_interval, lambda t: m.DC_CableCheckReq(header=self._header()), now)
        self._phase_started["pre_charge"] = now
        return self._send(self._pre_charge(), now)

    def _pre_charge(self) -> m.DC_PreChargeReq:
        c = self.config
        return m.DC_PreChargeReq(header=self._header(), ev_processing=m.Processing.Ongoing,
                                 ev_present_voltage=_rn(c.battery_voltage_v), ev_target_voltage=_rn(c.battery_voltage_v))

    def _on_DC_PreChargeRes(self, res: m.DC_PreChargeRes, now: float) -> EvStep:
        self._evse_voltage = from_rational(res.evse_present_voltage) or 0.0
        if abs(self._evse_voltage - self.config.battery_voltage_v) > 10.0:
            if now - self._phase_started.get("pre_charge", now) >= self.config.pre_charge_timeout:
                return self._finish(False, "PreCharge did not reach the battery voltage in V2G_EVCC_PreCharge_Timeout")
            return self._later(self.config.ongoing_interval, lambda t: self._pre_charge(), now)
        return self._send(self._power_delivery(m.ChargeProgress.Start), now)

    # -- the loop -------------------------------------------------------------- #
    def _on_PowerDeliveryRes(self, res: m.PowerDeliveryRes, now: float) -> EvStep:
        if self._stopping:
            self._power = 0.0
            if self.config.dc:
                return self._send(m.DC_WeldingDetectionReq(header=self._header(), ev_processing=m.Processing.Ongoing), now)
            return self._send(self._session_stop(), now)
        if self._renegotiating:
            return self._send(self._schedule_exchange(), now)
        self._last_loop_t = now
        return self._later(0.0, lambda t: self._loop_request(t), now)

    def _loop_request(self, now: float) -> Any:
        c = self.config
        self._integrate(now)
        t = now - self._schedule_t0
        display = m.DisplayParameters(present_soc=int(self._soc), minimum_soc=c.min_soc, target_soc=c.target_soc,
                                      charging_complete=False)
        bpt = c.service.is_bpt
        dynamic = c.control_mode is ControlMode.DynamicControl
        if "wrong_control_mode" in c.faults:
            dynamic = not dynamic
        target, maximum, minimum = self._energy(c.target_soc), self._energy(100.0), self._energy(c.min_soc)
        if self._standby_left > 0:
            planned = 0.0
        elif dynamic:
            planned = self._evse_target if self._evse_target is not None else 0.0
        else:
            planned = self._planned_at(t, loop=True)
        self._power = planned
        if c.dc:
            voltage = c.battery_voltage_v
            if dynamic:
                fields = dict(
                    departure_time=max(0, int(c.departure_time - t)), ev_target_energy_request=_rn(target),
                    ev_maximum_energy_request=_rn(maximum), ev_minimum_energy_request=_rn(minimum),
                    ev_maximum_charge_power=_rn(c.max_charge_power_w), ev_minimum_charge_power=_rn(c.min_charge_power_w),
                    ev_maximum_charge_current=_rn(c.max_charge_current_a), ev_maximum_voltage=_rn(c.max_voltage_v),
                    ev_minimum_voltage=_rn(c.min_voltage_v),
                )
                mode: Any = (m.BPT_Dynamic_DC_CLReqControlMode(
                    **fields, ev_maximum_discharge_power=_rn(c.max_discharge_power_w),
                    ev_minimum_discharge_power=_rn(c.min_discharge_power_w),
                    ev_maximum_discharge_current=_rn(c.max_discharge_current_a),
                    ev_maximum_v2x_energy_request=_rn(maximum), ev_minimum_v2x_energy_request=_rn(minimum),
                ) if bpt else m.Dynamic_DC_CLReqControlMode(**fields))
            else:
                fields = dict(ev_target_current=_rn(planned / voltage), ev_target_voltage=_rn(voltage))
                mode = (m.BPT_Scheduled_DC_CLReqControlMode(**fields) if bpt else m.Scheduled_DC_CLReqControlMode(**fields))
            return m.DC_ChargeLoopReq(header=self._header(), display_parameters=display, meter_info_requested=False,
                                      ev_present_voltage=_rn(voltage), cl_req_control_mode=mode)
        if dynamic:
            fields = dict(
                departure_time=max(0, int(c.departure_time - t)), ev_target_energy_request=_rn(target),
                ev_maximum_energy_request=_rn(maximum), ev_minimum_energy_request=_rn(minimum),
                ev_maximum_charge_power=_rn(c.max_charge_power_w), ev_minimum_charge_power=_rn(c.min_charge_power_w),
                ev_present_active_power=_rn(self._power), ev_present_reactive_power=_rn(0),
            )
            mode = (m.BPT_Dynamic_AC_CLReqControlMode(
                **fields, ev_maximum_discharge_power=_rn(c.max_discharge_power_w),
                ev_minimum_discharge_power=_rn(c.min_discharge_power_w),
                ev_maximum_v2x_energy_request=_rn(maximum), ev_minimum_v2x_energy_request=_rn(minimum),
            ) if bpt else m.Dynamic_AC_CLReqControlMode(**fields))
        else:
            mode = (m.BPT_Scheduled_AC_CLReqControlMode(ev_present_active_power=_rn(planned))
                    if bpt else m.Scheduled_AC_CLReqControlMode(ev_present_active_power=_rn(planned)))
        return m.AC_ChargeLoopReq(header=self._header(), display_parameters=display, meter_info_requested=False,
                                  cl_req_control_mode=mode)

    def _integrate(self, now: float) -> None:
        """The battery: the power drawn since the last loop message into energy and SoC."""
        if self._last_loop_t is not None and now > self._last_loop_t:
            energy = self._power * (now - self._last_loop_t) / 3600.0
            if energy >= 0:
                self.result.charged_wh += energy
            else:
                self.result.discharged_wh -= energy
            self._soc = min(100.0, max(0.0, self._soc + energy / self.config.capacity_wh * 100.0))
        self._last_loop_t = now

    def _evse_target_of(self, res: Any) -> float | None:
        mode = res.cl_res_control_mode
        target = getattr(mode, "evse_target_active_power", None)
        if target is not None:
            return from_rational(target)
        if "Dynamic_DC" in type(mode).__name__:
            charge = from_rational(mode.evse_maximum_charge_power) or 0.0
            discharge = from_rational(getattr(mode, "evse_maximum_discharge_power", None)) or 0.0
            return charge if charge > 0 else -abs(discharge)
        return None

    def _on_loop_response(self, res: Any, now: float) -> EvStep:
        c = self.config
        self._loop_count += 1
        self.result.loop_messages += 1
        self._evse_target = self._evse_target_of(res)
        self.result.loop.append(LoopSample(now - self._t0, self._power, self._evse_target, self._soc))
        if "silent_in_loop" in c.faults:
            self._response_deadline = None
            return EvStep()
        notification = res.evse_status.evse_notification if res.evse_status is not None else None
        if notification is m.EvseNotification.MeteringConfirmation:
            return self._send(self._metering_confirmation(res), now)
        return self._loop_next(notification, now)

    def _loop_next(self, notification: Any, now: float) -> EvStep:
        c = self.config
        if self._standby_left > 0:
            self._standby_left -= 1
            if self._standby_left == 0:
                return self._send(self._power_delivery(m.ChargeProgress.Start), now)
        elif c.standby_after is not None and self._loop_count == c.standby_after:
            self._standby_left = c.standby_loops
            self.result.standbys += 1
            return self._send(self._power_delivery(m.ChargeProgress.Standby), now)
        renegotiate = notification is m.EvseNotification.ScheduleRenegotiation or (
            c.renegotiate_after is not None and self._loop_count == c.renegotiate_after)
        if renegotiate:
            self._renegotiating = True
            self.result.renegotiations += 1
            return self._send(self._power_delivery(m.ChargeProgress.ScheduleRenegotiation), now)
        if notification is m.EvseNotification.Terminate or self._loop_count >= c.loop_messages:
            self._stopping = True
            self._integrate(now)
            return self._send(self._power_delivery(m.ChargeProgress.Stop), now)
        return self._later(c.loop_interval, lambda t: self._loop_request(t), now)

    def _on_AC_ChargeLoopRes(self, res: m.AC_ChargeLoopRes, now: float) -> EvStep:
        return self._on_loop_response(res, now)

    def _on_DC_ChargeLoopRes(self, res: m.DC_ChargeLoopRes, now: float) -> EvStep:
        return self._on_loop_response(res, now)

    def _metering_confirmation(self, res: Any) -> m.MeteringConfirmationReq:
        info = res.meter_info or m.MeterInfo(meter_id="unknown", charged_energy_reading_wh=0)
        control = (dict(scheduled_smdt_control_mode=m.Scheduled_SMDTControlMode(selected_schedule_tuple_id=self._tuple.schedule_tuple_id))
                   if self._tuple is not None else dict(dynamic_smdt_control_mode=m.Dynamic_SMDTControlMode()))
        req = m.MeteringConfirmationReq(header=self._header(), signed_metering_data=m.SignedMeteringData(
            id="ID1", session_id=self._session_id, meter_info=info, **control))
        if self.config.payment is not PaymentOption.Contract:
            return req
        signed = xmldsig.sign_metering_receipt_req(req, self.credentials.contract_key)
        if "bad_metering_signature" in self.config.faults:
            _flip(signed.header.signature)
        return signed

    def _on_MeteringConfirmationRes(self, res: m.MeteringConfirmationRes, now: float) -> EvStep:
        self.result.receipts += 1
        return self._loop_next(None, now)

    def _on_DC_WeldingDetectionRes(self, res: m.DC_WeldingDetectionRes, now: float) -> EvStep:
        return self._send(self._session_stop(), now)

    def _session_stop(self) -> m.SessionStopReq:
        if self._service_renegotiations_left > 0:
            session = m.ChargingSession.ServiceRenegotiation
        elif self.config.pause:
            session = m.ChargingSession.Pause
        else:
            session = m.ChargingSession.Terminate
        return m.SessionStopReq(header=self._header(), charging_session=session)

    def _on_SessionStopRes(self, res: m.SessionStopRes, now: float) -> EvStep:
        if self._give_up is not None:
            return self._finish(False, self._give_up)
        if self._service_renegotiations_left > 0:
            self._service_renegotiations_left -= 1
            self.result.service_renegotiations += 1
            self._stopping = False
            self._loop_count = 0
            self._tuple = None
            return self._service_discovery(now)
        self.result.paused = self.config.pause
        return self._finish(True, "session paused" if self.config.pause else "session ended")


def _entry(entries: list, t: float) -> float | None:
    start = 0
    for e in entries:
        if start <= t < start + e.duration:
            return from_rational(e.power)
        start += e.duration
    return None


def _flip(signature) -> None:
    """Break a signature on purpose (one bit of r)."""
    raw = bytearray(signature.signature_value.value)
    raw[5] ^= 0x01
    signature.signature_value.value = bytes(raw)
