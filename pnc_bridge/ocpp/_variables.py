"""Every device-model variable pnc-bridge implements: names, characteristics, defaults.

Rules of this module:

- This is the one place where variable names are spelled (part 2, "Referenced Components
  and Variables"; part 4, 8); code elsewhere uses the ``VariableKey`` constants below,
  e.g. ``OCPPCommCtrlr.HeartbeatInterval``.
- Timer defaults come from ``pnc_bridge.timing``; station-specific defaults (identity,
  EVSE layout, ISO 15118 names) come from the configuration through ``StationSettings``.
- Mutability follows the standard; where the standard lets the implementation choose
  ("ReadOnly or ReadWrite") the choice is written next to the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pnc_bridge import timing
from pnc_bridge.ocpp._device_model import VariableKey, VariableSpec

__all__ = [
    "ConnectorLayout",
    "EvseLayout",
    "StationSettings",
    "OCPPCommCtrlr",
    "SecurityCtrlr",
    "DeviceDataCtrlr",
    "AuthCtrlr",
    "TxCtrlr",
    "SampledDataCtrlr",
    "AlignedDataCtrlr",
    "SmartChargingCtrlr",
    "ISO15118Ctrlr",
    "ClockCtrlr",
    "ChargingStationVars",
    "standard_variables",
    "TX_START_STOP_POINTS",
    "MEASURANDS",
    "DEFAULT_FIELD_LENGTHS",
]


def _k(component: str, variable: str, instance: str | None = None) -> VariableKey:
    return VariableKey(component, variable, instance)


class OCPPCommCtrlr:
    ActiveNetworkProfile = _k("OCPPCommCtrlr", "ActiveNetworkProfile")
    FileTransferProtocols = _k("OCPPCommCtrlr", "FileTransferProtocols")
    HeartbeatInterval = _k("OCPPCommCtrlr", "HeartbeatInterval")
    MessageTimeout = _k("OCPPCommCtrlr", "MessageTimeout", "Default")
    MessageAttemptInterval = _k("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")
    MessageAttempts = _k("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
    NetworkConfigurationPriority = _k("OCPPCommCtrlr", "NetworkConfigurationPriority")
    NetworkProfileConnectionAttempts = _k("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
    OfflineThreshold = _k("OCPPCommCtrlr", "OfflineThreshold")
    QueueAllMessages = _k("OCPPCommCtrlr", "QueueAllMessages")
    ResetRetries = _k("OCPPCommCtrlr", "ResetRetries")
    RetryBackOffRandomRange = _k("OCPPCommCtrlr", "RetryBackOffRandomRange")
    RetryBackOffRepeatTimes = _k("OCPPCommCtrlr", "RetryBackOffRepeatTimes")
    RetryBackOffWaitMinimum = _k("OCPPCommCtrlr", "RetryBackOffWaitMinimum")
    UnlockOnEVSideDisconnect = _k("OCPPCommCtrlr", "UnlockOnEVSideDisconnect")
    WebSocketPingInterval = _k("OCPPCommCtrlr", "WebSocketPingInterval")

    @staticmethod
    def FieldLength(message_field: str) -> VariableKey:  # noqa: N802 - named as in the standard
        return _k("OCPPCommCtrlr", "FieldLength", message_field)


class SecurityCtrlr:
    AdditionalRootCertificateCheck = _k("SecurityCtrlr", "AdditionalRootCertificateCheck")
    BasicAuthPassword = _k("SecurityCtrlr", "BasicAuthPassword")
    CertificateEntries = _k("SecurityCtrlr", "CertificateEntries")
    CertSigningRepeatTimes = _k("SecurityCtrlr", "CertSigningRepeatTimes")
    CertSigningWaitMinimum = _k("SecurityCtrlr", "CertSigningWaitMinimum")
    Identity = _k("SecurityCtrlr", "Identity")
    MaxCertificateChainSize = _k("SecurityCtrlr", "MaxCertificateChainSize")
    OrganizationName = _k("SecurityCtrlr", "OrganizationName")
    SecurityProfile = _k("SecurityCtrlr", "SecurityProfile")


class DeviceDataCtrlr:
    BytesPerMessageGetReport = _k("DeviceDataCtrlr", "BytesPerMessage", "GetReport")
    BytesPerMessageGetVariables = _k("DeviceDataCtrlr", "BytesPerMessage", "GetVariables")
    BytesPerMessageSetVariables = _k("DeviceDataCtrlr", "BytesPerMessage", "SetVariables")
    ItemsPerMessageGetReport = _k("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
    ItemsPerMessageGetVariables = _k("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables")
    ItemsPerMessageSetVariables = _k("DeviceDataCtrlr", "ItemsPerMessage", "SetVariables")
    ConfigurationValueSize = _k("DeviceDataCtrlr", "ConfigurationValueSize")
    ReportingValueSize = _k("DeviceDataCtrlr", "ReportingValueSize")
    ValueSize = _k("DeviceDataCtrlr", "ValueSize")


class AuthCtrlr:
    Enabled = _k("AuthCtrlr", "Enabled")
    AuthorizeRemoteStart = _k("AuthCtrlr", "AuthorizeRemoteStart")
    LocalAuthorizeOffline = _k("AuthCtrlr", "LocalAuthorizeOffline")
    LocalPreAuthorize = _k("AuthCtrlr", "LocalPreAuthorize")
    OfflineTxForUnknownIdEnabled = _k("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
    DisableRemoteAuthorization = _k("AuthCtrlr", "DisableRemoteAuthorization")


class TxCtrlr:
    EVConnectionTimeOut = _k("TxCtrlr", "EVConnectionTimeOut")
    MaxEnergyOnInvalidId = _k("TxCtrlr", "MaxEnergyOnInvalidId")
    StopTxOnEVSideDisconnect = _k("TxCtrlr", "StopTxOnEVSideDisconnect")
    StopTxOnInvalidId = _k("TxCtrlr", "StopTxOnInvalidId")
    TxBeforeAcceptedEnabled = _k("TxCtrlr", "TxBeforeAcceptedEnabled")
    TxStartPoint = _k("TxCtrlr", "TxStartPoint")
    TxStopPoint = _k("TxCtrlr", "TxStopPoint")


class SampledDataCtrlr:
    Enabled = _k("SampledDataCtrlr", "Enabled")
    Available = _k("SampledDataCtrlr", "Available")
    SignReadings = _k("SampledDataCtrlr", "SignReadings")
    TxEndedMeasurands = _k("SampledDataCtrlr", "TxEndedMeasurands")
    TxEndedInterval = _k("SampledDataCtrlr", "TxEndedInterval")
    TxStartedMeasurands = _k("SampledDataCtrlr", "TxStartedMeasurands")
    TxUpdatedMeasurands = _k("SampledDataCtrlr", "TxUpdatedMeasurands")
    TxUpdatedInterval = _k("SampledDataCtrlr", "TxUpdatedInterval")


class AlignedDataCtrlr:
    Enabled = _k("AlignedDataCtrlr", "Enabled")
    Available = _k("AlignedDataCtrlr", "Available")
    Measurands = _k("AlignedDataCtrlr", "Measurands")
    Interval = _k("AlignedDataCtrlr", "Interval")
    TxEndedMeasurands = _k("AlignedDataCtrlr", "TxEndedMeasurands")
    TxEndedInterval = _k("AlignedDataCtrlr", "TxEndedInterval")


class SmartChargingCtrlr:
    Enabled = _k("SmartChargingCtrlr", "Enabled")
    Available = _k("SmartChargingCtrlr", "Available")
    ACPhaseSwitchingSupported = _k("SmartChargingCtrlr", "ACPhaseSwitchingSupported")
    ProfileStackLevel = _k("SmartChargingCtrlr", "ProfileStackLevel")
    RateUnit = _k("SmartChargingCtrlr", "RateUnit")
    PeriodsPerSchedule = _k("SmartChargingCtrlr", "PeriodsPerSchedule")
    EntriesChargingProfiles = _k("SmartChargingCtrlr", "Entries", "ChargingProfiles")
    LimitChangeSignificance = _k("SmartChargingCtrlr", "LimitChangeSignificance")
    Phases3to1 = _k("SmartChargingCtrlr", "Phases3to1")


class ISO15118Ctrlr:
    PnCEnabled = _k("ISO15118Ctrlr", "PnCEnabled")
    CentralContractValidationAllowed = _k("ISO15118Ctrlr", "CentralContractValidationAllowed")
    ContractValidationOffline = _k("ISO15118Ctrlr", "ContractValidationOffline")
    V2GCertificateInstallationEnabled = _k("ISO15118Ctrlr", "V2GCertificateInstallationEnabled")
    ContractCertificateInstallationEnabled = _k("ISO15118Ctrlr", "ContractCertificateInstallationEnabled")
    RequestMeteringReceipt = _k("ISO15118Ctrlr", "RequestMeteringReceipt")
    SeccId = _k("ISO15118Ctrlr", "SeccId")
    CountryName = _k("ISO15118Ctrlr", "CountryName")
    OrganizationName = _k("ISO15118Ctrlr", "OrganizationName")
    MaxScheduleEntries = _k("ISO15118Ctrlr", "MaxScheduleEntries")


class ClockCtrlr:
    DateTime = _k("ClockCtrlr", "DateTime")
    TimeSource = _k("ClockCtrlr", "TimeSource")


class ChargingStationVars:
    Available = _k("ChargingStation", "Available")
    AvailabilityState = _k("ChargingStation", "AvailabilityState")
    SupplyPhases = _k("ChargingStation", "SupplyPhases")
    Model = _k("ChargingStation", "Model")
    VendorName = _k("ChargingStation", "VendorName")


#: TxStartPoint / TxStopPoint values (part 2, 2.6.6).
TX_START_STOP_POINTS = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned", "PowerPathClosed", "EnergyTransfer")

#: Measurands offered in the *Measurands valuesList (MeasurandEnumType values we can meter).
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Power.Active.Export",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Power.Offered",
    "Voltage",
    "SoC",
)

#: OCPPCommCtrlr.FieldLength: fields we accept longer than the standard schema allows.
#: ISO 15118-20 certificate installation responses do not fit exiResponse's 7500 characters.
DEFAULT_FIELD_LENGTHS: dict[str, int] = {"Get15118EVCertificateResponse.exiResponse": 15000}


@dataclass(frozen=True)
class ConnectorLayout:
    id: int
    connector_type: str = "cCCS2"  # ConnectorEnumType value


@dataclass(frozen=True)
class EvseLayout:
    id: int
    connectors: tuple[ConnectorLayout, ...] = (ConnectorLayout(1),)
    max_power_w: float = 150_000.0
    supply_phases: int = 0  # 0 = DC
    iso15118_evse_id: str | None = None
    #: The most the EVSE can take back from an EV (W); 0 = not bidirectional, no discharge.
    max_discharge_power_w: float = 0.0


@dataclass
class StationSettings:
    """Station-specific defaults of the device model (from the configuration file)."""

    identity: str
    vendor_name: str = "pnc-bridge"
    model: str = "pnc-bridge"
    security_profile: int = 1
    basic_auth_password: str | None = None
    organization_name: str = ""
    evses: tuple[EvseLayout, ...] = (EvseLayout(1),)
    message_timeout: float = timing.OCPP_MESSAGE_TIMEOUT
    iso15118_secc_id: str = ""
    iso15118_country_name: str = ""
    iso15118_organization_name: str = ""
    pnc_enabled: bool = True
    central_contract_validation_allowed: bool = False
    contract_validation_offline: bool = True
    v2g_certificate_installation_enabled: bool = True
    contract_certificate_installation_enabled: bool = True
    tx_start_point: str = "PowerPathClosed"
    tx_stop_point: str = "EVConnected"
    supported_rate_units: str = "A,W"
    profile_stack_level: int = 10
    periods_per_schedule: int = 24
    max_charging_profiles: int = 100
    max_certificate_chain_size: int = 10000
    items_per_message: int = 64
    bytes_per_message: int = 65536
    field_lengths: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FIELD_LENGTHS))
    overrides: dict[str, str] = field(default_factory=dict)  # VariableKey.id -> default value


def _b(value: bool) -> str:
    return "true" if value else "false"


def _n(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def standard_variables(
    s: StationSettings,
    *,
    live: dict[VariableKey, Callable[[], str]] | None = None,
) -> list[VariableSpec]:
    """The device model of a station with settings ``s``.

    ``live`` supplies the read functions of dynamic variables (AvailabilityState,
    CertificateEntries, Entries[ChargingProfiles], ClockCtrlr.DateTime, ...), keyed by
    variable key; dynamic variables without a function report an empty value.
    """
    live = live or {}
    specs: list[VariableSpec] = []

    def add(key: VariableKey, data_type: str, mutability: str = "ReadOnly", default: str | None = None, **kw: object) -> None:
        if key.id in s.overrides:
            default = s.overrides[key.id]
        specs.append(VariableSpec(key, data_type, mutability, default, **kw))  # type: ignore[arg-type]

    def dyn(key: VariableKey, data_type: str, **kw: object) -> None:
        read = live.get(key, lambda: "")
        specs.append(VariableSpec(key, data_type, "ReadOnly", None, dynamic=read, **kw))  # type: ignore[arg-type]

    # --- Charging infrastructure (part 2, 2.13)
    add(ChargingStationVars.Available, "boolean", default="true")
    dyn(ChargingStationVars.AvailabilityState, "OptionList", values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"))
    add(ChargingStationVars.SupplyPhases, "integer", default=str(max((e.supply_phases for e in s.evses), default=0)))
    add(ChargingStationVars.Model, "string", default=s.model)
    add(ChargingStationVars.VendorName, "string", default=s.vendor_name)
    for evse in s.evses:
        add(VariableKey("EVSE", "Available", evse=evse.id), "boolean", default="true")
        dyn(VariableKey("EVSE", "AvailabilityState", evse=evse.id), "OptionList",
            values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"))
        add(VariableKey("EVSE", "SupplyPhases", evse=evse.id), "integer", default=str(evse.supply_phases))
        add(VariableKey("EVSE", "Power", evse=evse.id), "decimal", unit="W", max_limit=evse.max_power_w)
        if evse.iso15118_evse_id:
            add(VariableKey("EVSE", "ISO15118EvseId", evse=evse.id), "string", default=evse.iso15118_evse_id)
        for connector in evse.connectors:
            add(VariableKey("Connector", "Available", evse=evse.id, connector=connector.id), "boolean", default="true")
            dyn(VariableKey("Connector", "AvailabilityState", evse=evse.id, connector=connector.id), "OptionList",
                values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted"))
            add(VariableKey("Connector", "ConnectorType", evse=evse.id, connector=connector.id), "string",
                default=connector.connector_type)
            add(VariableKey("Connector", "SupplyPhases", evse=evse.id, connector=connector.id), "integer",
                default=str(evse.supply_phases))

    # --- OCPPCommCtrlr (part 2, 2.1; part 4, 8)
    dyn(OCPPCommCtrlr.ActiveNetworkProfile, "integer")
    add(OCPPCommCtrlr.FileTransferProtocols, "MemberList", default="", values_list=("HTTPS",))
    add(OCPPCommCtrlr.HeartbeatInterval, "integer", "ReadWrite", _n(timing.OCPP_HEARTBEAT_INTERVAL), unit="s", min_limit=1)
    add(OCPPCommCtrlr.MessageTimeout, "integer", default=_n(s.message_timeout), unit="s")
    add(OCPPCommCtrlr.MessageAttemptInterval, "integer", "ReadWrite", _n(timing.OCPP_MESSAGE_ATTEMPT_INTERVAL), unit="s", min_limit=0)
    add(OCPPCommCtrlr.MessageAttempts, "integer", "ReadWrite", "5", min_limit=1)
    add(OCPPCommCtrlr.NetworkConfigurationPriority, "SequenceList", "ReadWrite", "0", values_list=("0", "1", "2", "3"),
        reboot_required=True)
    add(OCPPCommCtrlr.NetworkProfileConnectionAttempts, "integer", "ReadWrite", "3", min_limit=1)
    add(OCPPCommCtrlr.OfflineThreshold, "integer", "ReadWrite", _n(timing.OCPP_OFFLINE_THRESHOLD), unit="s", min_limit=0)
    add(OCPPCommCtrlr.ResetRetries, "integer", "ReadWrite", "1", min_limit=0)
    add(OCPPCommCtrlr.RetryBackOffRandomRange, "integer", "ReadWrite", _n(timing.OCPP_RETRY_BACKOFF_RANDOM_RANGE), unit="s", min_limit=0)
    add(OCPPCommCtrlr.RetryBackOffRepeatTimes, "integer", "ReadWrite", str(timing.OCPP_RETRY_BACKOFF_REPEAT_TIMES), min_limit=0)
    add(OCPPCommCtrlr.RetryBackOffWaitMinimum, "integer", "ReadWrite", _n(timing.OCPP_RETRY_BACKOFF_WAIT_MINIMUM), unit="s", min_limit=0)
    add(OCPPCommCtrlr.UnlockOnEVSideDisconnect, "boolean", "ReadWrite", "true")
    # part 4, 8.4: "Negative values are not allowed".
    add(OCPPCommCtrlr.WebSocketPingInterval, "integer", "ReadWrite", _n(timing.OCPP_WEBSOCKET_PING_INTERVAL), unit="s", min_limit=0)
    for message_field, length in sorted(s.field_lengths.items()):
        add(OCPPCommCtrlr.FieldLength(message_field), "integer", default=str(length))

    # --- DeviceDataCtrlr (part 2, 2.1.16-2.1.23)
    for key in (DeviceDataCtrlr.ItemsPerMessageGetReport, DeviceDataCtrlr.ItemsPerMessageGetVariables,
                DeviceDataCtrlr.ItemsPerMessageSetVariables):
        add(key, "integer", default=str(s.items_per_message))
    for key in (DeviceDataCtrlr.BytesPerMessageGetReport, DeviceDataCtrlr.BytesPerMessageGetVariables,
                DeviceDataCtrlr.BytesPerMessageSetVariables):
        add(key, "integer", default=str(s.bytes_per_message))
    add(DeviceDataCtrlr.ConfigurationValueSize, "integer", default="1000")
    add(DeviceDataCtrlr.ReportingValueSize, "integer", default="2500")
    add(DeviceDataCtrlr.ValueSize, "integer", default="1000")

    # --- SecurityCtrlr (part 2, 2.2)
    add(SecurityCtrlr.AdditionalRootCertificateCheck, "boolean", default="false")
    add(SecurityCtrlr.BasicAuthPassword, "passwordString", "WriteOnly", s.basic_auth_password, min_limit=16, max_limit=40)
    dyn(SecurityCtrlr.CertificateEntries, "integer")
    add(SecurityCtrlr.CertSigningRepeatTimes, "integer", "ReadWrite", "3", min_limit=0)
    add(SecurityCtrlr.CertSigningWaitMinimum, "integer", "ReadWrite", _n(timing.OCPP_CERT_SIGNING_WAIT_MINIMUM), unit="s", min_limit=1)
    add(SecurityCtrlr.Identity, "string", default=s.identity, max_limit=48)  # ReadOnly: set by configuration
    add(SecurityCtrlr.MaxCertificateChainSize, "integer", default=str(s.max_certificate_chain_size))
    add(SecurityCtrlr.OrganizationName, "string", "ReadWrite", s.organization_name, max_limit=64)
    add(SecurityCtrlr.SecurityProfile, "integer", default=str(s.security_profile))

    # --- AuthCtrlr (part 2, 2.3); the rules are applied by the bridge, the values live here
    add(AuthCtrlr.Enabled, "boolean", "ReadWrite", "true")
    add(AuthCtrlr.AuthorizeRemoteStart, "boolean", "ReadWrite", "false")  # ReadWrite: implementation's choice
    add(AuthCtrlr.LocalAuthorizeOffline, "boolean", "ReadWrite", "true")
    add(AuthCtrlr.LocalPreAuthorize, "boolean", "ReadWrite", "false")
    add(AuthCtrlr.OfflineTxForUnknownIdEnabled, "boolean", "ReadWrite", "false")
    add(AuthCtrlr.DisableRemoteAuthorization, "boolean", "ReadWrite", "false")

    # --- TxCtrlr (part 2, 2.6)
    add(TxCtrlr.EVConnectionTimeOut, "integer", "ReadWrite", "120", unit="s", min_limit=0)
    add(TxCtrlr.MaxEnergyOnInvalidId, "integer", "ReadWrite", "0", unit="Wh", min_limit=0)
    add(TxCtrlr.StopTxOnEVSideDisconnect, "boolean", "ReadWrite", "true")
    add(TxCtrlr.StopTxOnInvalidId, "boolean", "ReadWrite", "true")
    add(TxCtrlr.TxBeforeAcceptedEnabled, "boolean", "ReadWrite", "false")
    add(TxCtrlr.TxStartPoint, "MemberList", "ReadWrite", s.tx_start_point, values_list=TX_START_STOP_POINTS)
    add(TxCtrlr.TxStopPoint, "MemberList", "ReadWrite", s.tx_stop_point, values_list=TX_START_STOP_POINTS)

    # --- Metering (part 2, 2.7)
    add(SampledDataCtrlr.Available, "boolean", default="true")
    add(SampledDataCtrlr.Enabled, "boolean", "ReadWrite", "true")
    add(SampledDataCtrlr.SignReadings, "boolean", "ReadWrite", "false")
    add(SampledDataCtrlr.TxStartedMeasurands, "MemberList", "ReadWrite", "Energy.Active.Import.Register", values_list=MEASURANDS)
    add(SampledDataCtrlr.TxUpdatedMeasurands, "MemberList", "ReadWrite", "Energy.Active.Import.Register,Power.Active.Import", values_list=MEASURANDS)
    add(SampledDataCtrlr.TxUpdatedInterval, "integer", "ReadWrite", "60", unit="s", min_limit=0)
    add(SampledDataCtrlr.TxEndedMeasurands, "MemberList", "ReadWrite", "Energy.Active.Import.Register", values_list=MEASURANDS)
    add(SampledDataCtrlr.TxEndedInterval, "integer", "ReadWrite", "0", unit="s", min_limit=0)
    add(AlignedDataCtrlr.Available, "boolean", default="true")
    add(AlignedDataCtrlr.Enabled, "boolean", "ReadWrite", "false")
    add(AlignedDataCtrlr.Measurands, "MemberList", "ReadWrite", "Energy.Active.Import.Register", values_list=MEASURANDS)
    add(AlignedDataCtrlr.Interval, "integer", "ReadWrite", "900", unit="s", min_limit=0)
    add(AlignedDataCtrlr.TxEndedMeasurands, "MemberList", "ReadWrite", "", values_list=MEASURANDS)
    add(AlignedDataCtrlr.TxEndedInterval, "integer", "ReadWrite", "0", unit="s", min_limit=0)

    # --- ClockCtrlr (part 2, 2.1.24, 2.1.30)
    dyn(ClockCtrlr.DateTime, "dateTime")
    add(ClockCtrlr.TimeSource, "SequenceList", "ReadWrite", "Heartbeat", values_list=("Heartbeat", "NTP", "RealTimeClock"))

    # --- SmartChargingCtrlr (part 2, 2.9)
    add(SmartChargingCtrlr.Available, "boolean", default="true")
    add(SmartChargingCtrlr.Enabled, "boolean", "ReadWrite", "true")
    add(SmartChargingCtrlr.ACPhaseSwitchingSupported, "boolean", default="false")
    add(SmartChargingCtrlr.ProfileStackLevel, "integer", default=str(s.profile_stack_level))
    add(SmartChargingCtrlr.RateUnit, "MemberList", default=s.supported_rate_units, values_list=("A", "W"))
    add(SmartChargingCtrlr.PeriodsPerSchedule, "integer", default=str(s.periods_per_schedule))
    dyn(SmartChargingCtrlr.EntriesChargingProfiles, "integer", max_limit=s.max_charging_profiles)
    add(SmartChargingCtrlr.LimitChangeSignificance, "decimal", "ReadWrite", "10", unit="Percent", min_limit=0)
    add(SmartChargingCtrlr.Phases3to1, "boolean", default="false")

    # --- ISO15118Ctrlr (part 2, 2.14)
    add(ISO15118Ctrlr.PnCEnabled, "boolean", "ReadWrite", _b(s.pnc_enabled))
    add(ISO15118Ctrlr.CentralContractValidationAllowed, "boolean", "ReadWrite", _b(s.central_contract_validation_allowed))
    add(ISO15118Ctrlr.ContractValidationOffline, "boolean", "ReadWrite", _b(s.contract_validation_offline))
    add(ISO15118Ctrlr.V2GCertificateInstallationEnabled, "boolean", "ReadWrite", _b(s.v2g_certificate_installation_enabled))
    add(ISO15118Ctrlr.ContractCertificateInstallationEnabled, "boolean", "ReadWrite",
        _b(s.contract_certificate_installation_enabled))
    add(ISO15118Ctrlr.RequestMeteringReceipt, "boolean", "ReadWrite", "false")
    add(ISO15118Ctrlr.SeccId, "string", "ReadWrite", s.iso15118_secc_id, max_limit=20)
    add(ISO15118Ctrlr.CountryName, "string", "ReadWrite", s.iso15118_country_name, max_limit=2)
    add(ISO15118Ctrlr.OrganizationName, "string", "ReadWrite", s.iso15118_organization_name, max_limit=64)
    add(ISO15118Ctrlr.MaxScheduleEntries, "integer", default=str(s.periods_per_schedule))
    return specs
