"""Effects: how an SECC session asks the world for work, and the results it gets back.

Rules of this module:

- One vocabulary for every protocol (DIN SPEC 70121, ISO 15118-2, ISO 15118-20):
  values are SI floats (V, A, W, Wh, s) and names of the standards' enumerations, never a
  protocol's PhysicalValue, RationalNumber or message class (the one exception is the
  signature checks, which need the signed message itself).
- Power and current are signed as in OCPP 2.1: positive flows into the EV (charging,
  import), negative out of it (discharging, export). Limits named ``*discharge*`` are
  magnitudes (>= 0), as OCPP 2.1 ``V2XChargingParametersType`` gives them.
- An effect is a frozen dataclass named as an imperative with a correlation ``id`` that is
  unique within one connection. A :class:`Request` waits for a result named
  ``<Effect>Result`` (or :class:`EffectFailed`) passed to ``session.resolve()``; a
  :class:`Notification` tells the fulfiller something and gets no result.
- A result that arrives after its request stopped mattering (deadline passed, session
  closed) is dropped by ``id``. Fulfillers never touch the session.
- Effects emitted in a step with ``close=True`` (opening contactors, ending the transaction)
  must run to completion even though the connection closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pnc_bridge.secc.schedule import ChargingSchedule

__all__ = [
    "CSMS_CERTIFICATE_STATUS_CODE",
    "AuthorizeExternalPayment",
    "AuthorizeExternalPaymentResult",
    "AuthorizeWithCsms",
    "AuthorizeWithCsmsResult",
    "CertificateAction",
    "ChargingState",
    "ControlMode",
    "CloseContactor",
    "CloseContactorResult",
    "Effect",
    "EffectFailed",
    "EffectResult",
    "EnergyService",
    "EnergyTransferMode",
    "EvChargingNeeds",
    "EvPowerScheduleEntry",
    "GetChargingSchedule",
    "GetChargingScheduleResult",
    "Isolation",
    "MobilityNeedsMode",
    "Notification",
    "OpenContactor",
    "OpenContactorResult",
    "PaymentOption",
    "ProfileEntry",
    "ReportChargingState",
    "ReportEvChargingSchedule",
    "ReportEvStatus",
    "Request",
    "RequestEvCertificate",
    "RequestEvCertificateResult",
    "SetDcTarget",
    "StartCableCheck",
    "StartCableCheckResult",
    "StartTransaction",
    "StopReason",
    "StopTransaction",
    "V2xChargingParameters",
    "ValidateContractChain",
    "ValidateContractChainResult",
    "VerifyAuthorizationSignature",
    "VerifyAuthorizationSignatureResult",
    "VerifyMeteringReceiptSignature",
    "VerifyMeteringReceiptSignatureResult",
]


class EnergyTransferMode(str, Enum):
    """The energy transfer modes of ISO 15118-2 ``EnergyTransferModeType`` (DIN 70121 uses
    the same names for what the EV requests)."""

    AC_single_phase_core = "AC_single_phase_core"
    AC_three_phase_core = "AC_three_phase_core"
    DC_core = "DC_core"
    DC_extended = "DC_extended"
    DC_combo_core = "DC_combo_core"
    DC_unique = "DC_unique"

    @property
    def is_dc(self) -> bool:
        return self.value.startswith("DC")

    @property
    def phases(self) -> int:
        return 3 if self is EnergyTransferMode.AC_three_phase_core else 1


class EnergyService(str, Enum):
    """ISO 15118-20 energy transfer services (ServiceDiscoveryRes ServiceIDs, as Josev's
    ``ServiceV20`` numbers them); the names are also OCPP 2.1 ``EnergyTransferModeEnumType``
    values, except ``AC`` (OCPP names the phases: ``AC_single_phase`` / ``AC_three_phase``)."""

    AC = "AC"
    DC = "DC"
    WPT = "WPT"
    DC_ACDP = "DC_ACDP"
    AC_BPT = "AC_BPT"
    DC_BPT = "DC_BPT"
    DC_ACDP_BPT = "DC_ACDP_BPT"

    @property
    def service_id(self) -> int:
        return _SERVICE_IDS[self]

    @classmethod
    def from_service_id(cls, service_id: int) -> "EnergyService | None":
        return _SERVICES_BY_ID.get(service_id)

    @property
    def is_dc(self) -> bool:
        return self.value.startswith("DC")

    @property
    def is_bpt(self) -> bool:
        """Bidirectional power transfer: the EV may also discharge."""
        return self.value.endswith("BPT")


_SERVICE_IDS = {
    EnergyService.AC: 1, EnergyService.DC: 2, EnergyService.WPT: 3, EnergyService.DC_ACDP: 4,
    EnergyService.AC_BPT: 5, EnergyService.DC_BPT: 6, EnergyService.DC_ACDP_BPT: 7,
}
_SERVICES_BY_ID = {v: k for k, v in _SERVICE_IDS.items()}


class ControlMode(str, Enum):
    """Who steers the power in an ISO 15118-20 session, named as OCPP 2.1
    ``ControlModeEnumType`` (ISO 15118-20 ServiceDetail parameter ``ControlMode`` 1 / 2):
    the EV within the EVSE's schedule (``ScheduledControl``), or the EVSE with targets
    in every charge-loop response (``DynamicControl``)."""

    ScheduledControl = "ScheduledControl"
    DynamicControl = "DynamicControl"

    @property
    def parameter(self) -> int:
        """The value of the ServiceDetail parameter ``ControlMode``."""
        return 1 if self is ControlMode.ScheduledControl else 2


class MobilityNeedsMode(str, Enum):
    """Who may set the EV's mobility needs (departure time, SoC targets), named as OCPP 2.1
    ``MobilityNeedsModeEnumType`` (ISO 15118-20 ServiceDetail parameter ``MobilityNeedsMode``
    1: the EV only, 2: the EV and the EVSE)."""

    EVCC = "EVCC"
    EVCC_SECC = "EVCC_SECC"

    @property
    def parameter(self) -> int:
        return 1 if self is MobilityNeedsMode.EVCC else 2


class PaymentOption(str, Enum):
    """``paymentOptionType``: Plug & Charge (``Contract``) or anything else (``ExternalPayment``, EIM)."""

    Contract = "Contract"
    ExternalPayment = "ExternalPayment"


class Isolation(str, Enum):
    """Result of the DC isolation check, named as ``isolationLevelType``."""

    Invalid = "Invalid"
    Valid = "Valid"
    Warning = "Warning"
    Fault = "Fault"
    No_IMD = "No_IMD"


class CertificateAction(str, Enum):
    """OCPP ``CertificateActionEnumType`` for Get15118EVCertificate."""

    Install = "Install"
    Update = "Update"


class StopReason(str, Enum):
    """Why a session ended, named as OCPP 2.0.1 ``ReasonEnumType`` so the bridge passes it on."""

    Local = "Local"  # the EV asked (SessionStopReq Terminate)
    EVDisconnected = "EVDisconnected"  # the TCP/TLS connection went away
    Timeout = "Timeout"  # the EV went silent (sequence timeout)
    DeAuthorized = "DeAuthorized"  # authorization refused (CSMS, contract, signature)
    Other = "Other"  # the EV broke the protocol, or hardware failed


class ChargingState(str, Enum):
    """OCPP 2.0.1 ``ChargingStateEnumType`` values the session can tell."""

    Charging = "Charging"  # energy may flow (PowerDelivery Start done)
    SuspendedEV = "SuspendedEV"  # the EV paused the session (SessionStop Pause)
    EVConnected = "EVConnected"  # energy transfer stopped (PowerDelivery Stop)


# --------------------------------------------------------------------------- #
# Base classes                                                                 #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Effect:
    """Base of every effect; ``id`` correlates the result. Don't subclass outside this module."""

    id: int


@dataclass(frozen=True, slots=True)
class Request(Effect):
    """An effect whose result the session waits for."""


@dataclass(frozen=True, slots=True)
class Notification(Effect):
    """An effect that only informs; no result is expected."""


@dataclass(frozen=True, slots=True)
class EffectResult:
    """Base of every result."""

    id: int


@dataclass(frozen=True, slots=True)
class EffectFailed(EffectResult):
    """The fulfiller could not do it (port down, hardware fault, CSMS error)."""

    reason: str = ""


# --------------------------------------------------------------------------- #
# Authorization and certificates (PKI, CSMS)                                   #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class AuthorizeExternalPayment(Request):
    """EIM: is this EV allowed to charge (RFID, app, remote start, free vend)? Emitted when the
    EV selects ExternalPayment; the session answers ``Ongoing`` until the result arrives."""

    evcc_id: str = ""  # hex of the EVCCID (the EV's MAC address for ISO 15118-2)


@dataclass(frozen=True, slots=True)
class AuthorizeExternalPaymentResult(EffectResult):
    accepted: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ValidateContractChain(Request):
    """Plug & Charge: validate the EV's contract chain (PaymentDetailsReq). The fulfiller
    applies the configured policy (local validation against the MO roots, or leaving it to
    the CSMS) and answers with an ISO 15118 response code name."""

    leaf: bytes = b""  # DER
    sub_cas: tuple[bytes, ...] = ()  # DER, leaf's issuer first
    emaid: str = ""


@dataclass(frozen=True, slots=True)
class ValidateContractChainResult(EffectResult):
    """``response_code`` is ``None`` when the chain is acceptable, else the ISO 15118 code name
    (``FAILED_CertChainError``, ``FAILED_CertificateExpired``, ``FAILED_CertificateRevoked``, ...)."""

    response_code: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AuthorizeWithCsms(Request):
    """Plug & Charge: OCPP Authorize with the contract (idToken eMAID and the chain's OCSP
    hash data, which the fulfiller computes). Emitted as soon as PaymentDetailsReq arrives."""

    emaid: str = ""
    contract_chain: tuple[bytes, ...] = ()  # DER, leaf first


@dataclass(frozen=True, slots=True)
class AuthorizeWithCsmsResult(EffectResult):
    """``status`` is OCPP ``AuthorizationStatusEnumType`` (``Accepted``, ``Blocked``, ``Invalid``,
    ...); ``certificate_status`` is OCPP ``AuthorizeCertificateStatusEnumType`` when the CSMS
    checked the certificate (``Accepted``, ``CertificateRevoked``, ``ContractCancelled``, ...)."""

    status: str = "Invalid"
    certificate_status: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyAuthorizationSignature(Request):
    """Plug & Charge: check the XML-DSig signature of an AuthorizationReq with the contract
    certificate's key (digest of the body element with the referenced Id over its EXI
    fragment; ECDSA over the SignedInfo fragment)."""

    schema: str = "iso2"
    message: object = None  # the decoded V2G_Message, header with Signature included
    certificate: bytes = b""  # contract leaf, DER


@dataclass(frozen=True, slots=True)
class VerifyAuthorizationSignatureResult(EffectResult):
    valid: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class VerifyMeteringReceiptSignature(Request):
    """Plug & Charge: check the signature of a MeteringReceiptReq with the contract key."""

    schema: str = "iso2"
    message: object = None
    certificate: bytes = b""


@dataclass(frozen=True, slots=True)
class VerifyMeteringReceiptSignatureResult(EffectResult):
    valid: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RequestEvCertificate(Request):
    """CertificateInstallationReq / CertificateUpdateReq passed to the CSMS (OCPP
    Get15118EVCertificate): ``exi_request`` is the EV's whole V2G message as EXI, the result's
    ``exi_response`` the whole response message as EXI, both untouched."""

    action: CertificateAction = CertificateAction.Install
    exi_request: bytes = b""
    schema_version: str = "urn:iso:15118:2:2013:MsgDef"  # OCPP iso15118SchemaVersion; -20: urn:iso:std:iso:15118:-20:CommonMessages


@dataclass(frozen=True, slots=True)
class RequestEvCertificateResult(EffectResult):
    accepted: bool = False
    exi_response: bytes = b""
    reason: str = ""


# --------------------------------------------------------------------------- #
# Schedules                                                                    #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class V2xChargingParameters:
    """An ISO 15118-20 EV's limits both ways and its energy requests, field for field OCPP 2.1
    ``V2XChargingParametersType`` (snake case), so the bridge maps them one to one, on OCPP 2.1
    natively and on OCPP 2.0.1 in ``customData``. As OCPP defines them: power and current
    limits combine the EV and the EVSE (maxima: the lower of both; minima: the higher), all
    >= 0 (discharge limits are magnitudes); the energy requests are the EV's own, in Wh
    from the present state of charge, and may be negative (the EV may give energy back)."""

    min_charge_power: float | None = None
    min_charge_power_l2: float | None = None
    min_charge_power_l3: float | None = None
    max_charge_power: float | None = None
    max_charge_power_l2: float | None = None
    max_charge_power_l3: float | None = None
    min_discharge_power: float | None = None
    min_discharge_power_l2: float | None = None
    min_discharge_power_l3: float | None = None
    max_discharge_power: float | None = None
    max_discharge_power_l2: float | None = None
    max_discharge_power_l3: float | None = None
    min_charge_current: float | None = None
    max_charge_current: float | None = None
    min_discharge_current: float | None = None
    max_discharge_current: float | None = None
    min_voltage: float | None = None
    max_voltage: float | None = None
    ev_target_energy_request: float | None = None
    ev_min_energy_request: float | None = None
    ev_max_energy_request: float | None = None
    ev_min_v2x_energy_request: float | None = None
    ev_max_v2x_energy_request: float | None = None
    target_soc: int | None = None


@dataclass(frozen=True, slots=True)
class EvPowerScheduleEntry:
    """One entry of an ISO 15118-20 EV's energy offer (``EVPowerScheduleEntry``, OCPP 2.1
    ``EVPowerScheduleEntryType``): ``power_w`` for ``duration`` seconds; negative: the EV
    offers to discharge."""

    duration: int
    power_w: float


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    """What the EV said in ChargeParameterDiscoveryReq (ISO 15118-20: with ServiceSelection
    and ScheduleExchangeReq); OCPP NotifyEVChargingNeeds material.

    ISO 15118-20 sessions also fill ``service`` (the energy service selected; OCPP 2.1
    ``requestedEnergyTransfer``), ``available_services`` (the EV's SupportedServiceIDs;
    ``availableEnergyTransfer``), ``control_mode``, ``mobility_needs_mode``, ``v2x`` (the
    EV's BPT boundaries and energy requests) and, in scheduled BPT, ``energy_offer``
    (``evEnergyOffer``); ``energy_transfer_mode`` then holds the nearest ISO 15118-2 name
    (``DC_extended`` for DC and DC_BPT, ``AC_three_phase_core`` / ``AC_single_phase_core``
    by the selected connector) for OCPP 2.0.1's ``requestedEnergyTransfer``.
    ``max_entries`` is ISO 15118-20's MaximumSupportingPoints there."""

    energy_transfer_mode: EnergyTransferMode
    departure_time: int | None = None  # seconds from now
    max_entries: int | None = None  # MaxEntriesSAScheduleTuple (-2), MaximumSupportingPoints (-20)
    energy_request_wh: float | None = None
    energy_capacity_wh: float | None = None
    max_current_a: float | None = None
    min_current_a: float | None = None
    max_voltage_v: float | None = None
    max_power_w: float | None = None
    soc: int | None = None
    full_soc: int | None = None
    bulk_soc: int | None = None
    # ISO 15118-20
    service: EnergyService | None = None
    available_services: tuple[EnergyService, ...] = ()
    control_mode: ControlMode | None = None
    mobility_needs_mode: MobilityNeedsMode | None = None
    v2x: V2xChargingParameters | None = None
    energy_offer: tuple[EvPowerScheduleEntry, ...] = ()
    min_soc: int | None = None
    target_soc: int | None = None


@dataclass(frozen=True, slots=True)
class GetChargingSchedule(Request):
    """Ask for up to three charging schedules for these needs (OCPP: NotifyEVChargingNeeds,
    then the CSMS's SetChargingProfile, or the station's own limits). The session answers
    ``EVSEProcessing=Ongoing`` until the result arrives."""

    needs: EvChargingNeeds | None = None
    renegotiation: bool = False


@dataclass(frozen=True, slots=True)
class GetChargingScheduleResult(EffectResult):
    schedules: tuple[ChargingSchedule, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One entry of the EV's charging profile (PowerDeliveryReq ChargingProfile; ISO 15118-20
    EVPowerProfile, where ``max_power_w`` is the planned power, negative when discharging)."""

    start: int  # seconds from the start of the schedule
    max_power_w: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class ReportEvChargingSchedule(Notification):
    """The EV chose a schedule (and maybe sent its profile) at PowerDelivery Start (OCPP
    NotifyEVChargingSchedule)."""

    sa_schedule_tuple_id: int = 1
    entries: tuple[ProfileEntry, ...] = ()


# --------------------------------------------------------------------------- #
# Hardware (EVSE driver)                                                       #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class CloseContactor(Request):
    """Close the output contactors (AC: PowerDelivery Start; DC: before the cable check)."""


@dataclass(frozen=True, slots=True)
class CloseContactorResult(EffectResult):
    closed: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OpenContactor(Request):
    """Open the output contactors (PowerDelivery Stop, or the session ended)."""


@dataclass(frozen=True, slots=True)
class OpenContactorResult(EffectResult):
    opened: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StartCableCheck(Request):
    """DC isolation test of the cable at ``voltage_v``; the session answers ``Ongoing`` until
    the result arrives."""

    voltage_v: float = 0.0


@dataclass(frozen=True, slots=True)
class StartCableCheckResult(EffectResult):
    isolation: Isolation = Isolation.Invalid
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetDcTarget(Notification):
    """DC: the present target (PreCharge, CurrentDemand, -20 DC_ChargeLoop); the power
    electronics follow. Emitted only when the target changes. ``current_a`` is negative when
    an ISO 15118-20 BPT session discharges; in dynamic control the target is the EVSE's own
    (the setpoint as a current at the EV's voltage), in scheduled control the EV's, clamped
    to the EVSE's limits both ways."""

    voltage_v: float = 0.0
    current_a: float = 0.0


# --------------------------------------------------------------------------- #
# Session milestones (OCPP transactions)                                       #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class StartTransaction(Notification):
    """The session is authorized; energy may follow. The bridge maps this to its
    TxStartPoint rules. ``resumed`` is true for a session joined after a pause."""

    session_id: str = ""  # hex
    evcc_id: str = ""  # hex
    protocol: str = ""  # "din", "iso2", "iso20"
    payment: PaymentOption = PaymentOption.ExternalPayment
    emaid: str | None = None
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class StopTransaction(Notification):
    """The session ended for good (not emitted on a pause)."""

    session_id: str = ""
    reason: StopReason = StopReason.Other
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReportChargingState(Notification):
    state: ChargingState = ChargingState.EVConnected


@dataclass(frozen=True, slots=True)
class ReportEvStatus(Notification):
    """The EV's state of charge and readiness, emitted when they change (OCPP SoC samples)."""

    soc: int | None = None
    ev_ready: bool | None = None
    error_code: str | None = None


#: ``AuthorizeWithCsmsResult.certificate_status`` (OCPP AuthorizeCertificateStatusEnumType)
#: to the ISO 15118 response code the EV gets; any other refusal is plain ``FAILED``.
CSMS_CERTIFICATE_STATUS_CODE: dict[str, str] = {
    "SignatureError": "FAILED_SignatureError",
    "CertificateExpired": "FAILED_CertificateExpired",
    "CertificateRevoked": "FAILED_CertificateRevoked",
    "NoCertificateAvailable": "FAILED_NoCertificateAvailable",
    "CertChainError": "FAILED_CertChainError",
    "ContractCancelled": "FAILED_ContractCanceled",
}
