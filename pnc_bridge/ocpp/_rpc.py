"""Sans-I/O OCPP-J RPC core: CALL / CALLRESULT / CALLERROR framing (OCPP 2.0.1 part 4, 4).

Rules of this module:

- No sockets, no clock, no tasks. Frames (text) go in through ``receive``; frames to send
  come out of ``send_call`` / ``respond`` / ``respond_error`` and out of the ``reply`` of a
  ``CallRefused`` event. ``now`` is passed into every call; ``deadline()`` says when
  ``tick()`` must run next.
- At most one CALL of ours is outstanding (part 4, 4.1.1). ``send_call`` while one is
  outstanding is a bug in the caller and raises; the adapter queues.
- Every CALL from the CSMS gets exactly one answer. Invalid ones are answered here, with
  the CALLERROR part 4 names (``SCHEMA_KEYWORD_ERRORS`` for schema violations); valid ones
  become ``CallReceived`` and the adapter must call ``respond`` or ``respond_error``.
- Every payload in and out is checked against the official JSON schema. A CALLERROR is
  never sent in answer to a CALLRESULT or CALLERROR (that is how two peers end up
  bouncing errors forever); bad responses become events instead.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from pnc_bridge.ocpp._errors import CallError, ErrorCode
from pnc_bridge.ocpp._model import OcppModel
from pnc_bridge.ocpp._protocol import OcppProtocol

__all__ = [
    "RpcCore",
    "OutgoingCall",
    "RpcEvent",
    "CallReceived",
    "CallRefused",
    "ResultReceived",
    "ErrorReceived",
    "ResponseInvalid",
    "CallTimedOut",
    "FrameIgnored",
    "OutgoingInvalid",
    "MESSAGE_ID_MAX_LENGTH",
]

CALL, CALLRESULT, CALLERROR = 2, 3, 4

#: MessageId is string[36] (part 4, 4.1.4).
MESSAGE_ID_MAX_LENGTH = 36

#: The MessageId of a CALLERROR for a message whose id could not be read (part 4, 4.2.3).
UNREADABLE_MESSAGE_ID = "-1"


class OutgoingInvalid(ValueError):
    """A payload we were asked to send does not match its schema (a bug or bad API input)."""

    def __init__(self, action: str, error: CallError) -> None:
        self.action = action
        self.error = error
        super().__init__(f"{action}: {error.description}")


@dataclass(frozen=True, slots=True)
class OutgoingCall:
    message_id: str
    action: str
    frame: str


@dataclass(frozen=True, slots=True)
class CallReceived:
    """A valid CALL from the CSMS; answer it with ``respond`` or ``respond_error``."""

    message_id: str
    action: str
    request: OcppModel


@dataclass(frozen=True, slots=True)
class CallRefused:
    """An invalid CALL (or unreadable frame); send ``reply``, the CALLERROR for it."""

    message_id: str
    action: str | None
    error: CallError
    reply: str


@dataclass(frozen=True, slots=True)
class ResultReceived:
    message_id: str
    action: str
    response: OcppModel


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """The CSMS answered our CALL with a CALLERROR."""

    message_id: str
    action: str
    error: CallError


@dataclass(frozen=True, slots=True)
class ResponseInvalid:
    """The CSMS answered our CALL with a CALLRESULT that does not match the schema."""

    message_id: str
    action: str
    error: CallError


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    message_id: str
    action: str


@dataclass(frozen=True, slots=True)
class FrameIgnored:
    """A frame that needs no answer and matches nothing (a late or unknown response)."""

    reason: str
    excerpt: str


RpcEvent = Union[CallReceived, CallRefused, ResultReceived, ErrorReceived, ResponseInvalid, CallTimedOut, FrameIgnored]


def _dumps(frame: list[Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def _excerpt(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _new_message_id() -> str:
    return str(uuid.uuid4())


class RpcCore:
    """One OCPP-J connection's RPC state.

    Call order: ``receive(frame, now)`` for every frame; answer each ``CallReceived`` with
    ``respond``/``respond_error`` and send each ``CallRefused.reply``; ``send_call`` when
    ``can_send`` is true; ``tick(now)`` at ``deadline()``. Use a new core (or ``reset``)
    for every new WebSocket connection.
    """

    def __init__(
        self,
        protocol: OcppProtocol,
        *,
        message_timeout: float,
        max_frame_bytes: int | None = None,
        field_lengths: Mapping[str, int] | None = None,
        new_message_id: Callable[[], str] = _new_message_id,
    ) -> None:
        self.protocol = protocol
        self.message_timeout = message_timeout
        self.max_frame_bytes = max_frame_bytes
        self.field_lengths = dict(field_lengths or {})
        self._new_message_id = new_message_id
        self._outstanding: tuple[str, str, float] | None = None  # (message_id, action, deadline)
        self._answering: set[str] = set()  # CALLs from the CSMS not answered yet

    # ------------------------------------------------------------------ outgoing CALLs
    @property
    def can_send(self) -> bool:
        return self._outstanding is None

    @property
    def outstanding(self) -> tuple[str, str] | None:
        """(message_id, action) of our CALL waiting for an answer, if any."""
        return None if self._outstanding is None else self._outstanding[:2]

    def send_call(
        self,
        request: OcppModel | tuple[str, dict[str, Any]],
        now: float,
        *,
        timeout: float | None = None,
        checked: bool = False,
    ) -> OutgoingCall:
        """Frame a CALL. ``request`` is a generated ``...Request`` model or ``(action, payload)``.

        Raises ``RuntimeError`` if a CALL is outstanding and ``OutgoingInvalid`` if the
        payload does not match the schema. ``timeout`` overrides MessageTimeout for this call;
        ``checked`` says the caller has already checked the payload against the schema.
        """
        if self._outstanding is not None:
            raise RuntimeError(f"a CALL ({self._outstanding[1]}) is still outstanding")
        if isinstance(request, OcppModel):
            if request.ocpp_kind != "Request" or request.ocpp_action is None:
                raise TypeError(f"{type(request).__name__} is not an OCPP request")
            action, payload = request.ocpp_action, request.to_payload()
        else:
            action, payload = request
            if not self.protocol.knows(action):
                raise OutgoingInvalid(action, CallError(ErrorCode.NotImplemented, f"unknown action {action}"))
        if not checked:
            error = self.protocol.check_payload(action, "Request", payload, self.field_lengths)
            if error is not None:
                raise OutgoingInvalid(action, error)
        message_id = self._new_message_id()
        self._outstanding = (message_id, action, now + (self.message_timeout if timeout is None else timeout))
        return OutgoingCall(message_id, action, _dumps([CALL, message_id, action, payload]))

    # ------------------------------------------------------------------ answers to CALLs
    def respond(self, message_id: str, response: OcppModel) -> str:
        """Frame the CALLRESULT for the CALL ``message_id``.

        Raises ``OutgoingInvalid`` if ``response`` does not match its schema; answer with
        ``respond_error(message_id, CallError(ErrorCode.InternalError))`` then.
        """
        if response.ocpp_kind != "Response" or response.ocpp_action is None:
            raise TypeError(f"{type(response).__name__} is not an OCPP response")
        payload = response.to_payload()
        error = self.protocol.check_payload(response.ocpp_action, "Response", payload, self.field_lengths)
        if error is not None:
            raise OutgoingInvalid(response.ocpp_action, error)
        self._answering.discard(message_id)
        return _dumps([CALLRESULT, message_id, payload])

    def respond_error(self, message_id: str, error: CallError) -> str:
        self._answering.discard(message_id)
        return _dumps(error.to_frame(message_id))

    # ------------------------------------------------------------------ incoming frames
    def receive(self, data: str | bytes, now: float) -> list[RpcEvent]:
        """Handle one WebSocket message from the CSMS."""
        if isinstance(data, bytes):
            size = len(data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return [self._refuse(None, None, ErrorCode.RpcFrameworkError, "message is not UTF-8 text")]
        else:
            text = data
            size = len(text.encode("utf-8")) if self.max_frame_bytes is not None else 0
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            return [self._refuse(None, None, ErrorCode.RpcFrameworkError, "message is not valid JSON")]
        if not isinstance(message, list) or not message:
            return [self._refuse(None, None, ErrorCode.RpcFrameworkError, "message is not a JSON array")]
        type_id = message[0]
        message_id = message[1] if len(message) > 1 else None
        readable_id = (
            message_id
            if isinstance(message_id, str) and 0 < len(message_id) <= MESSAGE_ID_MAX_LENGTH
            else None
        )
        if not isinstance(type_id, int) or isinstance(type_id, bool):
            return [self._refuse(readable_id, None, ErrorCode.RpcFrameworkError, "MessageTypeId is not an integer")]
        if type_id == CALL:
            return [self._receive_call(message, readable_id, size, now)]
        if type_id in (CALLRESULT, CALLERROR):
            return self._receive_answer(type_id, message, readable_id, text)
        # Part 4, 4.4: an unknown message type gets MessageTypeNotSupported.
        return [
            self._refuse(
                readable_id, None, ErrorCode.MessageTypeNotSupported, f"MessageTypeId {type_id} is not supported"
            )
        ]

    def _refuse(self, message_id: str | None, action: str | None, code: ErrorCode, description: str) -> CallRefused:
        error = CallError(code, description)
        reply_id = message_id if message_id is not None else UNREADABLE_MESSAGE_ID
        return CallRefused(reply_id, action, error, _dumps(error.to_frame(reply_id)))

    def _receive_call(self, message: list[Any], message_id: str | None, size: int, now: float) -> RpcEvent:
        if message_id is None:
            return self._refuse(None, None, ErrorCode.RpcFrameworkError, "MessageId is missing or not a string[36]")
        if len(message) != 4 or not isinstance(message[2], str):
            return self._refuse(message_id, None, ErrorCode.RpcFrameworkError, "a CALL is [2, MessageId, Action, Payload]")
        action, payload = message[2], message[3]
        if message_id in self._answering:
            return self._refuse(message_id, action, ErrorCode.RpcFrameworkError, "a CALL with this MessageId is being handled")
        if self.max_frame_bytes is not None and size > self.max_frame_bytes:
            # B06.FR.17 names FormatViolation for a GetVariablesRequest over its byte limit.
            return self._refuse(
                message_id, action, ErrorCode.FormatViolation, f"message is {size} bytes; at most {self.max_frame_bytes}"
            )
        if not self.protocol.knows(action):
            # Part 4, 4.3: NotImplemented = "Requested Action is not known by receiver".
            return self._refuse(message_id, action, ErrorCode.NotImplemented, f"unknown action {action!r}"[:200])
        parsed = self.protocol.parse(action, "Request", payload, self.field_lengths)
        if isinstance(parsed, CallError):
            error_frame = _dumps(parsed.to_frame(message_id))
            return CallRefused(message_id, action, parsed, error_frame)
        self._answering.add(message_id)
        return CallReceived(message_id, action, parsed)

    def _receive_answer(self, type_id: int, message: list[Any], message_id: str | None, text: str) -> list[RpcEvent]:
        if self._outstanding is None or message_id != self._outstanding[0]:
            return [FrameIgnored("answer to no outstanding CALL (late or unknown MessageId)", _excerpt(text))]
        _, action, _ = self._outstanding
        self._outstanding = None
        if type_id == CALLRESULT:
            if len(message) != 3:
                return [ResponseInvalid(message_id, action, CallError(ErrorCode.RpcFrameworkError, "a CALLRESULT is [3, MessageId, Payload]"))]
            parsed = self.protocol.parse(action, "Response", message[2], self.field_lengths)
            if isinstance(parsed, CallError):
                return [ResponseInvalid(message_id, action, parsed)]
            return [ResultReceived(message_id, action, parsed)]
        # CALLERROR: [4, MessageId, ErrorCode, ErrorDescription, ErrorDetails]; be lenient
        # about a missing or malformed description/details, strict about the code.
        code_text = message[2] if len(message) > 2 and isinstance(message[2], str) else "GenericError"
        description = message[3] if len(message) > 3 and isinstance(message[3], str) else ""
        details = message[4] if len(message) > 4 and isinstance(message[4], dict) else {}
        try:
            code: ErrorCode | str = ErrorCode(code_text)
        except ValueError:
            code = code_text
        return [ErrorReceived(message_id, action, CallError(code, description, details))]

    # ------------------------------------------------------------------ time
    def deadline(self) -> float | None:
        return None if self._outstanding is None else self._outstanding[2]

    def tick(self, now: float) -> list[RpcEvent]:
        if self._outstanding is not None and now >= self._outstanding[2]:
            message_id, action, _ = self._outstanding
            self._outstanding = None
            return [CallTimedOut(message_id, action)]
        return []

    def reset(self) -> tuple[str, str] | None:
        """Forget all state (the connection is gone); returns the CALL that got no answer."""
        lost = self.outstanding
        self._outstanding = None
        self._answering.clear()
        return lost
