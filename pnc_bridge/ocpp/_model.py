"""Runtime base of the generated OCPP models (``_generated/``).

Rules of this module:

- Every generated message and datatype derives from ``OcppModel``: fields use the
  snake_case name made by the generator's one rule, the schema's camelCase name is the
  alias, and serialisation is by alias, so ``model.to_payload()`` is the JSON object that
  goes on the wire (optional fields left out, as OCPP-J 4.1.5 requires).
- Unknown properties are refused (the schemas say ``additionalProperties: false``),
  except in ``CustomDataType``, which the schemas leave open for vendor extensions.
- Date-times are timezone-aware UTC ``datetime`` objects in Python and RFC 3339 with a
  ``Z`` and at most three fractional digits on the wire (OCPP 2.0.1 part 2, 3.1).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

__all__ = ["OcppModel", "CustomDataModel", "OcppDateTime", "format_datetime", "parse_datetime"]


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; milliseconds only when not zero."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    # Not strftime: it does not zero-pad years before 1000 on every platform.
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    millis = value.microsecond // 1000
    if millis:
        text += f".{millis:03d}"
    return text + "Z"


def parse_datetime(value: Any) -> Any:
    """Accept RFC 3339 text or a ``datetime``; a value without offset is taken as UTC.

    Anything else is passed on unchanged so that pydantic reports it as the type error.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return value
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


#: The type of every ``format: date-time`` field.
OcppDateTime = Annotated[
    datetime,
    BeforeValidator(parse_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
]


class OcppModel(BaseModel):
    """Base of every generated OCPP message and datatype."""

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )

    #: Set on generated messages: the OCPP action (``"Authorize"``) and whether this is
    #: the ``Request`` or the ``Response`` of it.
    ocpp_action: ClassVar[str | None] = None
    ocpp_kind: ClassVar[str | None] = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON object for the wire: camelCase keys, optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CustomDataModel(OcppModel):
    """``CustomDataType``: the one open class; vendor properties are kept as given."""

    model_config = ConfigDict(extra="allow")
