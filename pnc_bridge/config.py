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
from typing import Annotated, Literal

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


class EvseSection(_Section):
    id: Annotated[int, Field(ge=1)]
    max_power_w: Annotated[float, Field(gt=0)] = 150_000.0
    max_current_a: Annotated[float, Field(gt=0)] = 200.0
    max_voltage_v: Annotated[float, Field(gt=0)] = 920.0
    #: 0 for DC, 1 or 3 for AC.
    supply_phases: Literal[0, 1, 3] = 0
    iso15118_evse_id: str | None = None
    connectors: tuple[ConnectorSection, ...] = (ConnectorSection(id=1),)


class Iso15118Section(_Section):
    pnc_enabled: bool = True
    central_contract_validation_allowed: bool = False
    contract_validation_offline: bool = True
    v2g_certificate_installation_enabled: bool = True
    contract_certificate_installation_enabled: bool = True
    secc_id: Annotated[str, Field(max_length=20)] = ""
    country_name: Annotated[str, Field(max_length=2)] = ""
    organization_name: str = ""


class DriverSection(_Section):
    #: Only "simulator" exists so far; hardware drivers will add kinds.
    kind: Literal["simulator"] = "simulator"


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
