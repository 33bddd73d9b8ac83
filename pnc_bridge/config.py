"""The service configuration: one TOML file, validated into typed models.

Rules of this module:

- ``load_config(path)`` is the only entry point; every problem with the file becomes a
  ``ConfigError`` whose message names the file, the key and what is wrong, one per line.
- Relative paths in the file are relative to the file's directory.
- Secrets (the Basic-auth password) may be given inline or, better, in a separate file
  (``password_file``) with tight permissions; they are never printed.
- The configuration sets the initial values. Values the CSMS changes later over OCPP
  (device-model variables, network profiles it adds) are kept in the data directory and
  win over the file, until the corresponding value in the file itself is changed: then
  the local change wins (the way a technician on site expects). See ``docs/ocpp.md``.

The documented example is ``examples/pnc-bridge.toml``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pnc_bridge import timing

__all__ = ["ConfigError", "ServiceConfig", "load_config"]


class ConfigError(Exception):
    """The configuration file cannot be used; the message says why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationSection(_Section):
    #: Charging Station identity: the last URL path segment and the Basic-auth user name.
    identity: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9*\-_=+|@.]+$")]
    vendor: Annotated[str, Field(max_length=50)] = "pnc-bridge"
    model: Annotated[str, Field(max_length=20)] = "pnc-bridge"
    serial_number: Annotated[str | None, Field(max_length=25)] = None
    firmware_version: Annotated[str | None, Field(max_length=50)] = None
    #: SecurityCtrlr.OrganizationName: O of the ChargingStationCertificate CSR.
    organization_name: str = ""


class CsmsSection(_Section):
    #: OCPP-J endpoint; the identity is appended (ws://host/ocpp -> ws://host/ocpp/<identity>).
    url: str
    security_profile: Literal[1, 2, 3] = 2
    #: Basic-auth password for profiles 1 and 2 (16-40 characters of passwordString).
    password: str | None = None
    password_file: Path | None = None
    message_timeout: Annotated[float, Field(gt=0)] = timing.OCPP_MESSAGE_TIMEOUT
    #: OCPP versions offered to the CSMS, most preferred first; the CSMS picks one.
    subprotocols: Annotated[tuple[Literal["ocpp2.1", "ocpp2.0.1"], ...], Field(min_length=1)] = ("ocpp2.1", "ocpp2.0.1")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @model_validator(mode="after")
    def _profile_fits(self) -> "CsmsSection":
        secure = self.url.startswith("wss://")
        if self.security_profile == 1 and secure:
            raise ValueError("security_profile 1 is unsecured transport: use a ws:// url (or profile 2/3 for wss://)")
        if self.security_profile in (2, 3) and not secure:
            raise ValueError(f"security_profile {self.security_profile} needs a wss:// url")
        if self.password and self.password_file:
            raise ValueError("give password or password_file, not both")
        return self


class PathsSection(_Section):
    #: Where the OCPP state (outbox, device model, profiles) lives: <data_dir>/ocpp.sqlite.
    data_dir: Path
    #: Trust store: CSMSRootCertificate, ChargingStationCertificate and key, V2G certificates.
    trust_store: Path


class ConnectorSection(_Section):
    id: Annotated[int, Field(ge=1)]
    type: str = "cCCS2"


class V2gSection(_Section):
    """The EVSE's high-level communication with the EV (ISO 15118-2 / DIN 70121): SLAC on the
    PLC interface, SDP, and the TCP / TLS servers the SECC answers on."""

    #: The PLC modem's network interface. With it, SDP answers on it, the servers bind to it
    #: and (with ``slac``) SLAC runs on it. Without it the servers listen on ``host`` only
    #: (a lab set-up where the EV is told the address by other means).
    interface: str | None = None
    #: Run the SLAC EVSE side on ``interface`` (needs root / CAP_NET_RAW).
    slac: bool = True
    #: Listen address without an interface ("::" = every address).
    host: str = "::"
    #: TCP port (EIM without TLS, DIN 70121), in the dynamic range 49152-65535 where EVs expect
    #: the SECC; 0 = a free one of that range (announced by SDP); omit to offer no TCP.
    tcp_port: Annotated[int, Field(ge=0, le=65535)] | None = 0
    #: TLS port (ISO 15118-2 TLS, needed for Plug & Charge); same range; 0 = a free one; omit to offer no TLS.
    tls_port: Annotated[int, Field(ge=0, le=65535)] | None = 0
    #: Application protocols offered, in the charger's order of preference. ``iso20-dc`` /
    #: ``iso20-ac`` (ISO 15118-20) need TLS 1.3: an ISO 15118-20 SECC certificate (P-521 or
    #: Ed448) in the trust store's SECC slot and the EVs' OEM roots (mutual authentication).
    protocols: tuple[Literal["iso2", "din", "iso20-dc", "iso20-ac"], ...] = ("iso2", "din")
    #: ISO 15118-20 control modes offered (ServiceDetail parameter sets), in this order; many
    #: EVs take the first. Scheduled: the CSMS's schedule as ScheduleTuples; Dynamic: the EVSE
    #: steers the power (the CSMS's setpoints, OCPP 2.1 UpdateDynamicSchedule).
    control_modes: tuple[Literal["ScheduledControl", "DynamicControl"], ...] = ("ScheduledControl", "DynamicControl")
    #: Whose preference wins SupportedAppProtocol: the EV's Priority ("ev") or the order above ("evse").
    protocol_priority: Literal["ev", "evse"] = "ev"
    #: Payment options offered (Contract = Plug & Charge, only over TLS and with ISO15118Ctrlr.PnCEnabled).
    payment_options: tuple[Literal["Contract", "ExternalPayment"], ...] = ("Contract", "ExternalPayment")
    #: NSS key log of the TLS sessions, for Wireshark in a lab; never in the field.
    tls_keylog: Path | None = None

    @model_validator(mode="after")
    def _something_offered(self) -> "V2gSection":
        if self.tcp_port is None and self.tls_port is None:
            raise ValueError("give tcp_port, tls_port or both")
        for port in (self.tcp_port, self.tls_port):
            if port and not 49152 <= port <= 65535:
                raise ValueError(f"port {port}: an SECC listens on a port of the dynamic range 49152-65535 "
                                 "(EVs refuse others), or 0 for a free one")
        if not self.protocols or not self.payment_options or not self.control_modes:
            raise ValueError("protocols, payment_options and control_modes must not be empty")
        return self


class EvseSection(_Section):
    id: Annotated[int, Field(ge=1)]
    max_power_w: Annotated[float, Field(gt=0)] = 150_000.0
    max_current_a: Annotated[float, Field(gt=0)] = 200.0
    max_voltage_v: Annotated[float, Field(gt=0)] = 920.0
    #: What the EVSE can take back from an EV (bidirectional power transfer, ISO 15118-20
    #: BPT): 0 (the default) = it cannot discharge; the CSMS's discharge requests are refused
    #: and no BPT service is offered. ``max_discharge_current_a`` 0 = derived from the power.
    max_discharge_power_w: Annotated[float, Field(ge=0)] = 0.0
    max_discharge_current_a: Annotated[float, Field(ge=0)] = 0.0
    #: 0 for DC, 1 or 3 for AC.
    supply_phases: Literal[0, 1, 3] = 0
    #: ISO 15118 EVSEID ("DE*ABC*E1234*1", 7-37 characters) sent in SessionSetupRes.
    iso15118_evse_id: Annotated[str, Field(min_length=7, max_length=37)] | None = None
    connectors: tuple[ConnectorSection, ...] = (ConnectorSection(id=1),)
    #: ISO 15118 / DIN 70121 towards the EV; without it the EVSE serves no EV sessions.
    v2g: V2gSection | None = None


class Iso15118Section(_Section):
    #: Validate the EV's contract chain against the trust store's MO (and V2G) roots at
    #: PaymentDetailsReq. Off: the CSMS alone decides (with the chain when
    #: CentralContractValidationAllowed, else with its OCSP hash data). See docs/bridge.md.
    local_contract_validation: bool = True
    pnc_enabled: bool = True
    central_contract_validation_allowed: bool = False
    contract_validation_offline: bool = True
    v2g_certificate_installation_enabled: bool = True
    contract_certificate_installation_enabled: bool = True
    secc_id: Annotated[str, Field(max_length=20)] = ""
    country_name: Annotated[str, Field(max_length=2)] = ""
    organization_name: str = ""


class DriverSection(_Section):
    """The EVSE hardware: the simulator, or the charger maker's own ``EvseDriver``.

    ``kind = "python"`` with ``factory = "package.module:callable"`` loads a driver the
    service calls as ``factory(evse_id=, limits=, ac=, options=)`` for every EVSE;
    ``[driver.options]`` is passed through untouched. See ``docs/evse.md``."""

    kind: Literal["simulator", "python"] = "simulator"
    factory: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")] | None = None
    #: Directories searched (first) for the factory's module; relative to this file.
    python_path: tuple[Path, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _factory_for_python(self) -> "DriverSection":
        if self.kind == "python" and self.factory is None:
            raise ValueError('kind "python" needs factory = "package.module:callable"')
        if self.kind == "simulator" and (self.factory is not None or self.options or self.python_path):
            raise ValueError('factory, python_path and options are for kind = "python"; the simulator takes none')
        return self


class SimulatorSection(_Section):
    """Automatic EV sessions on every EVSE (development, demos, fault tests)."""

    #: Number of sessions per EVSE: 0 none, -1 forever.
    sessions: int = 0
    session_seconds: Annotated[float, Field(ge=0)] = 60.0
    meter_interval: Annotated[float, Field(gt=0)] = 10.0
    pause_seconds: Annotated[float, Field(ge=0)] = 5.0
    current_a: Annotated[float, Field(gt=0)] = 100.0
    voltage_v: Annotated[float, Field(gt=0)] = 400.0
    id_token: Annotated[str, Field(min_length=1, max_length=36)] = "DE8AAA1B2C3D4E5"
    id_token_type: Literal["eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "Central", "NoAuthorization"] = "eMAID"


class LimitsSection(_Section):
    #: WebSocket messages up to this size are handled; bigger ones get CALLERROR FormatViolation.
    max_message_bytes: Annotated[int, Field(ge=16_384)] = 256 * 1024
    items_per_message: Annotated[int, Field(ge=1)] = 64
    bytes_per_message: Annotated[int, Field(ge=1024)] = 65_536


class ServiceConfig(_Section):
    station: StationSection
    csms: CsmsSection
    paths: PathsSection
    evse: tuple[EvseSection, ...] = (EvseSection(id=1),)
    iso15118: Iso15118Section = Iso15118Section()
    driver: DriverSection = DriverSection()
    simulator: SimulatorSection = SimulatorSection()
    limits: LimitsSection = LimitsSection()
    #: Initial device-model values: "Component/Variable" or "Component/Variable[instance]" = "value".
    device_model: dict[str, str] = Field(default_factory=dict)
    source: Path | None = None

    @model_validator(mode="after")
    def _unique_evses(self) -> "ServiceConfig":
        ids = [e.id for e in self.evse]
        if len(ids) != len(set(ids)) or not ids:
            raise ValueError("evse ids must be unique and at least one [[evse]] is needed")
        interfaces = [e.v2g.interface for e in self.evse if e.v2g is not None and e.v2g.interface]
        if len(interfaces) != len(set(interfaces)):
            raise ValueError("each EVSE needs its own PLC interface (evse.v2g.interface)")
        fixed = [(p, e.v2g.interface) for e in self.evse if e.v2g is not None
                 for p in (e.v2g.tcp_port, e.v2g.tls_port) if p]
        if len(fixed) != len(set(fixed)):
            raise ValueError("two EVSEs listen on the same port (evse.v2g.tcp_port / tls_port)")
        if self.simulator.sessions != 0 and self.driver.kind != "simulator":
            raise ValueError("simulator.sessions plays simulated EVs on the EVSE simulator; "
                             'set it to 0 with driver.kind = "python"')
        return self

    def password(self) -> str | None:
        """The Basic-auth password (read from ``password_file`` if set)."""
        if self.csms.password_file is not None:
            try:
                return self.csms.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read csms.password_file {self.csms.password_file}: {exc.strerror}") from exc
        return self.csms.password


def _resolve(data: dict, base: Path) -> None:
    paths = data.get("paths")
    if isinstance(paths, dict):
        for key in ("data_dir", "trust_store"):
            if isinstance(paths.get(key), str):
                paths[key] = str((base / paths[key]).resolve()) if not Path(paths[key]).is_absolute() else paths[key]
    for evse in data.get("evse", []) if isinstance(data.get("evse"), list) else []:
        v2g = evse.get("v2g") if isinstance(evse, dict) else None
        if isinstance(v2g, dict) and isinstance(v2g.get("tls_keylog"), str) and not Path(v2g["tls_keylog"]).is_absolute():
            v2g["tls_keylog"] = str((base / v2g["tls_keylog"]).resolve())
    driver = data.get("driver")
    if isinstance(driver, dict) and isinstance(driver.get("python_path"), list):
        driver["python_path"] = [str(p if Path(p).is_absolute() else (base / p).resolve()) if isinstance(p, str) else p
                                 for p in driver["python_path"]]
    csms = data.get("csms")
    if isinstance(csms, dict) and isinstance(csms.get("password_file"), str):
        path = Path(csms["password_file"])
        csms["password_file"] = str(path if path.is_absolute() else (base / path).resolve())


def load_config(path: Path | str) -> ServiceConfig:
    """Read and check the TOML file; raises ``ConfigError`` with a readable message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _resolve(data, path.parent)
    data["source"] = str(path)
    try:
        config = ServiceConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(file)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            lines.append(f"  {where}: {message}")
        raise ConfigError(f"{path}: invalid configuration:\n" + "\n".join(lines)) from None
    if config.csms.security_profile in (1, 2):
        password = config.password()
        if not password:
            raise ConfigError(f"{path}: csms.password or csms.password_file is needed for security_profile {config.csms.security_profile}")
        if not (16 <= len(password) <= 40):
            raise ConfigError(f"{path}: the csms password must be 16 to 40 characters (A00.FR.205)")
    return config
