"""OCPP versions: WebSocket subprotocol, generated models and the official JSON schemas.

Rules of this module:

- One ``OcppProtocol`` per OCPP version, built once (``PROTOCOLS``); the connection picks
  one by the subprotocol the CSMS agreed to.
- Schemas are read from the installed, pinned ``ocpp`` package (never copied into the repo)
  and compiled into one ``Draft6Validator`` per message the first time the message is seen;
  the compiled validator is kept for the life of the process.
- ``check_payload`` returns a ``CallError`` value (never raises) for a payload that does not
  match its schema; the error code comes from ``SCHEMA_KEYWORD_ERRORS``.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from types import ModuleType
from typing import Any, Mapping

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError, best_match
from pydantic import ValidationError as ModelValidationError

from pnc_bridge.ocpp._errors import SCHEMA_KEYWORD_ERRORS, CallError, ErrorCode
from pnc_bridge.ocpp._model import OcppModel

__all__ = ["OcppVersion", "OcppProtocol", "PROTOCOLS", "protocol_for"]


class OcppVersion(str, Enum):
    """OCPP versions, valued by their WebSocket subprotocol name (part 4, 3.1.2)."""

    v201 = "ocpp2.0.1"
    v21 = "ocpp2.1"


_MODULES = {OcppVersion.v201: "v201", OcppVersion.v21: "v21"}


@dataclass
class OcppProtocol:
    """Models and schema validators of one OCPP version."""

    version: OcppVersion
    module_name: str
    _models: ModuleType | None = field(default=None, repr=False)
    _validators: dict[str, Draft6Validator] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def subprotocol(self) -> str:
        return self.version.value

    @property
    def models(self) -> ModuleType:
        """The generated module (``pnc_bridge.ocpp._generated.v201``), imported on first use."""
        if self._models is None:
            self._models = importlib.import_module(f"pnc_bridge.ocpp._generated.{self.module_name}")
        return self._models

    def knows(self, action: str) -> bool:
        return action in self.models.ACTIONS

    def request_class(self, action: str) -> type[OcppModel]:
        return self.models.ACTIONS[action][0]

    def response_class(self, action: str) -> type[OcppModel]:
        return self.models.ACTIONS[action][1]

    def validator(self, schema_name: str) -> Draft6Validator:
        validator = self._validators.get(schema_name)
        if validator is None:
            with self._lock:
                validator = self._validators.get(schema_name)
                if validator is None:
                    path = resources.files("ocpp").joinpath(f"{self.module_name}/schemas/{schema_name}.json")
                    schema = json.loads(path.read_bytes().decode("utf-8-sig"))
                    validator = Draft6Validator(schema)
                    self._validators[schema_name] = validator
        return validator

    def check_payload(
        self, action: str, kind: str, payload: Any, field_lengths: Mapping[str, int] | None = None
    ) -> CallError | None:
        """Check ``payload`` against the ``<action><kind>`` schema; None when it conforms.

        ``field_lengths`` maps ``"<Message>.<field>"`` to a longer maximum length than the
        schema's, as the device model declares with ``OCPPCommCtrlr.FieldLength``.
        """
        if not isinstance(payload, dict):
            return CallError(ErrorCode.FormatViolation, f"{action}{kind} payload must be a JSON object")
        errors = self.validator(f"{action}{kind}").iter_errors(payload)
        if field_lengths:
            errors = (e for e in errors if not _allowed_by_field_length(action + kind, e, field_lengths))
        error = best_match(errors)
        if error is None:
            return None
        return _schema_error(action, kind, error)

    def parse(
        self, action: str, kind: str, payload: dict[str, Any], field_lengths: Mapping[str, int] | None = None
    ) -> OcppModel | CallError:
        """Schema-check ``payload`` and build the typed model, or return the CallError."""
        error = self.check_payload(action, kind, payload, field_lengths)
        if error is not None:
            return error
        cls = self.request_class(action) if kind == "Request" else self.response_class(action)
        try:
            return cls.model_validate(payload)
        except ModelValidationError as exc:
            # The schema passed but the typed model is stricter (an unparsable date-time).
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return CallError(
                ErrorCode.PropertyConstraintViolation,
                f"{action}{kind}: {where}: {first.get('msg', 'invalid value')}",
                {"path": where},
            )


def _allowed_by_field_length(message: str, error: ValidationError, field_lengths: Mapping[str, int]) -> bool:
    if error.validator != "maxLength" or not error.absolute_path or not isinstance(error.instance, str):
        return False
    name = error.absolute_path[-1]
    limit = field_lengths.get(f"{message}.{name}")
    return limit is not None and len(error.instance) <= limit


def _schema_error(action: str, kind: str, error: ValidationError) -> CallError:
    code = SCHEMA_KEYWORD_ERRORS.get(str(error.validator), ErrorCode.FormatViolation)
    where = "/".join(str(p) for p in error.absolute_path) or "(payload)"
    message = error.message
    if len(message) > 150:
        message = message[:150] + "…"
    return CallError(code, f"{action}{kind} {where}: {message}", {"path": where, "keyword": str(error.validator)})


#: subprotocol name -> protocol, in our order of preference.
PROTOCOLS: dict[str, OcppProtocol] = {
    version.value: OcppProtocol(version, _MODULES[version]) for version in OcppVersion
}


def protocol_for(subprotocol: str | OcppVersion) -> OcppProtocol:
    key = subprotocol.value if isinstance(subprotocol, OcppVersion) else subprotocol
    try:
        return PROTOCOLS[key]
    except KeyError:
        raise ValueError(f"unsupported OCPP subprotocol {key!r}; known: {sorted(PROTOCOLS)}") from None
