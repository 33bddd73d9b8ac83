"""OCPP-J RPC framework errors (OCPP 2.0.1 part 4, 4.3) and how our checks map to them.

Rules of this module:

- ``ErrorCode`` members are spelled as the table in part 4 spells them.
- ``CallError`` is a value: the RPC core returns it for bad input from the CSMS and the
  client API returns it (inside ``CallFailed``) when the CSMS answers with a CALLERROR.
- ``SCHEMA_KEYWORD_ERRORS`` is the one table from a failed JSON-schema keyword to the
  error code sent back. Part 4 defines the codes but not this mapping, so it is our
  reading of the code descriptions; ``docs/ocpp.md`` lists it for CSMS vendors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "ErrorCode",
    "CallError",
    "CallFailed",
    "SCHEMA_KEYWORD_ERRORS",
    "MAX_DESCRIPTION_LENGTH",
]

#: ErrorDescription is string[255] (part 4, table 7).
MAX_DESCRIPTION_LENGTH = 255


class ErrorCode(str, Enum):
    """RPC Framework Error Codes (OCPP 2.0.1 part 4, 4.3)."""

    FormatViolation = "FormatViolation"
    GenericError = "GenericError"
    InternalError = "InternalError"
    MessageTypeNotSupported = "MessageTypeNotSupported"
    NotImplemented = "NotImplemented"
    NotSupported = "NotSupported"
    OccurrenceConstraintViolation = "OccurrenceConstraintViolation"
    PropertyConstraintViolation = "PropertyConstraintViolation"
    ProtocolError = "ProtocolError"
    RpcFrameworkError = "RpcFrameworkError"
    SecurityError = "SecurityError"
    TypeConstraintViolation = "TypeConstraintViolation"


@dataclass(frozen=True, slots=True)
class CallError:
    """A CALLERROR: sent to the CSMS, or received from it.

    ``code`` is an ``ErrorCode`` for the codes part 4 defines, or the raw string when a
    CSMS sends one it does not define.
    """

    code: ErrorCode | str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.description) > MAX_DESCRIPTION_LENGTH:
            object.__setattr__(self, "description", self.description[: MAX_DESCRIPTION_LENGTH - 1] + "…")

    def to_frame(self, message_id: str) -> list[Any]:
        code = self.code.value if isinstance(self.code, ErrorCode) else self.code
        return [4, message_id, code, self.description, dict(self.details)]


class CallFailed(Exception):
    """A CALL we sent did not get a CALLRESULT.

    ``reason`` says why: ``"CallError"`` (the CSMS answered with ``error``), ``"Timeout"``
    (no answer within MessageTimeout), ``"Offline"`` (not connected, or the connection was
    lost before the answer), ``"NotAccepted"`` (the CSMS has not accepted our
    BootNotification, so the call may not be sent: B02.FR.02), ``"InvalidResponse"`` (the
    CALLRESULT did not match the schema; ``error`` holds what was wrong).
    """

    def __init__(self, action: str, reason: str, error: CallError | None = None) -> None:
        self.action = action
        self.reason = reason
        self.error = error
        text = f"{action}: {reason}"
        if error is not None:
            code = error.code.value if isinstance(error.code, ErrorCode) else error.code
            text += f" ({code}: {error.description})" if error.description else f" ({code})"
        super().__init__(text)


#: Failed JSON-schema keyword -> the CALLERROR code we answer with.
SCHEMA_KEYWORD_ERRORS: dict[str, ErrorCode] = {
    # "somestring": 12 is the example part 4 gives for a type constraint.
    "type": ErrorCode.TypeConstraintViolation,
    # Cardinality (a required field missing, too few or too many list items).
    "required": ErrorCode.OccurrenceConstraintViolation,
    "minItems": ErrorCode.OccurrenceConstraintViolation,
    "maxItems": ErrorCode.OccurrenceConstraintViolation,
    # A property the schema does not define: the payload is syntactically wrong.
    "additionalProperties": ErrorCode.FormatViolation,
    "additionalItems": ErrorCode.FormatViolation,
    # The value is of the right type but not an allowed value.
    "enum": ErrorCode.PropertyConstraintViolation,
    "maxLength": ErrorCode.PropertyConstraintViolation,
    "minLength": ErrorCode.PropertyConstraintViolation,
    "minimum": ErrorCode.PropertyConstraintViolation,
    "maximum": ErrorCode.PropertyConstraintViolation,
    "format": ErrorCode.PropertyConstraintViolation,
}
