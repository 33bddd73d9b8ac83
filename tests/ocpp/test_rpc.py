"""The sans-I/O RPC core: framing, one outstanding CALL, deadlines, and the CALLERROR named
for each kind of bad input. Frames we produce are parsed with the ``ocpp`` package."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import CallError as PeerCallError
from ocpp.messages import CallResult as PeerCallResult
from ocpp.messages import unpack

from pnc_bridge.ocpp import PROTOCOLS, ErrorCode, OutgoingInvalid, RpcCore, v201
from pnc_bridge.ocpp._rpc import (
    CallReceived,
    CallRefused,
    CallTimedOut,
    ErrorReceived,
    FrameIgnored,
    ResponseInvalid,
    ResultReceived,
)

P = PROTOCOLS["ocpp2.0.1"]


def core(**kw) -> RpcCore:
    ids = iter(f"id-{n}" for n in range(1000))
    return RpcCore(P, message_timeout=kw.pop("message_timeout", 30.0), new_message_id=lambda: next(ids), **kw)


def refused(c: RpcCore, frame: str | bytes) -> CallRefused:
    events = c.receive(frame, 0.0)
    assert len(events) == 1 and isinstance(events[0], CallRefused), events
    peer = unpack(events[0].reply)
    assert isinstance(peer, PeerCallError)
    assert peer.error_details == {} or isinstance(peer.error_details, dict)
    return events[0]


def test_valid_call_becomes_a_typed_request_and_the_answer_a_valid_callresult() -> None:
    c = core()
    frame = json.dumps([2, "m1", "GetVariables", {"getVariableData": [{"component": {"name": "X"}, "variable": {"name": "Y"}}]}])
    (event,) = c.receive(frame, 0.0)
    assert isinstance(event, CallReceived) and event.action == "GetVariables"
    assert isinstance(event.request, v201.GetVariablesRequest)
    response = v201.GetVariablesResponse.model_validate(
        {"getVariableResult": [{"attributeStatus": "UnknownComponent", "component": {"name": "X"}, "variable": {"name": "Y"}}]}
    )
    peer = unpack(c.respond("m1", response))
    assert isinstance(peer, PeerCallResult) and peer.unique_id == "m1"


@pytest.mark.parametrize(
    "frame,code,message_id",
    [
        ("not json", ErrorCode.RpcFrameworkError, "-1"),  # part 4, 4.2.3: unreadable id -> "-1"
        (b"\xff\xfe", ErrorCode.RpcFrameworkError, "-1"),
        ('{"a": 1}', ErrorCode.RpcFrameworkError, "-1"),
        ("[]", ErrorCode.RpcFrameworkError, "-1"),
        ('[2, 5, "Heartbeat", {}]', ErrorCode.RpcFrameworkError, "-1"),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', ErrorCode.RpcFrameworkError, "-1"),
        ('[2, "m2", "Heartbeat"]', ErrorCode.RpcFrameworkError, "m2"),
        ('["2", "m3", "Heartbeat", {}]', ErrorCode.RpcFrameworkError, "m3"),
        ('[7, "m4", "Heartbeat", {}]', ErrorCode.MessageTypeNotSupported, "m4"),  # part 4, 4.4
        ('[2, "m5", "Launch", {}]', ErrorCode.NotImplemented, "m5"),
        ('[2, "m6", "Reset", []]', ErrorCode.FormatViolation, "m6"),
        ('[2, "m7", "Reset", {}]', ErrorCode.OccurrenceConstraintViolation, "m7"),
        ('[2, "m8", "Reset", {"type": 5}]', ErrorCode.TypeConstraintViolation, "m8"),
        ('[2, "m9", "Reset", {"type": "Now"}]', ErrorCode.PropertyConstraintViolation, "m9"),
        ('[2, "m10", "Reset", {"type": "Immediate", "extra": 1}]', ErrorCode.FormatViolation, "m10"),
        ('[2, "m11", "GetVariables", {"getVariableData": []}]', ErrorCode.OccurrenceConstraintViolation, "m11"),
        (
            '[2, "m12", "SetVariables", {"setVariableData": [{"attributeValue": "' + "x" * 1001
            + '", "component": {"name": "A"}, "variable": {"name": "B"}}]}]',
            ErrorCode.PropertyConstraintViolation,
            "m12",
        ),
    ],
)
def test_bad_input_gets_the_named_callerror(frame: str | bytes, code: ErrorCode, message_id: str) -> None:
    event = refused(core(), frame)
    assert event.error.code is code
    assert event.message_id == message_id
    assert json.loads(event.reply)[1] == message_id


def test_oversized_call_is_a_format_violation() -> None:
    c = core(max_frame_bytes=1000)
    frame = json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}])
    assert refused(c, frame).error.code is ErrorCode.FormatViolation


def test_a_call_id_being_handled_cannot_be_used_again() -> None:
    c = core()
    assert isinstance(c.receive('[2, "dup", "ClearCache", {}]', 0.0)[0], CallReceived)
    event = refused(c, '[2, "dup", "ClearCache", {}]')
    assert event.error.code is ErrorCode.RpcFrameworkError
    assert refused(c, '[2, "dup", "ClearCache", {}]').error.code is ErrorCode.RpcFrameworkError
    c.respond("dup", v201.ClearCacheResponse.model_validate({"status": "Accepted"}))
    assert isinstance(c.receive('[2, "dup", "ClearCache", {}]', 0.0)[0], CallReceived)


def test_one_outstanding_call_and_its_answer() -> None:
    c = core()
    out = c.send_call(v201.HeartbeatRequest(), 10.0)
    assert json.loads(out.frame) == [2, out.message_id, "Heartbeat", {}]
    with pytest.raises(RuntimeError):
        c.send_call(v201.HeartbeatRequest(), 10.0)
    assert c.deadline() == 40.0
    (event,) = c.receive(json.dumps([3, out.message_id, {"currentTime": "2024-01-01T00:00:00Z"}]), 11.0)
    assert isinstance(event, ResultReceived) and isinstance(event.response, v201.HeartbeatResponse)
    assert c.can_send and c.deadline() is None


def test_timeout_and_late_answer() -> None:
    c = core(message_timeout=5.0)
    out = c.send_call(v201.HeartbeatRequest(), 0.0)
    assert c.tick(4.9) == []
    assert c.tick(5.0) == [CallTimedOut(out.message_id, "Heartbeat")]
    (late,) = c.receive(json.dumps([3, out.message_id, {"currentTime": "2024-01-01T00:00:00Z"}]), 6.0)
    assert isinstance(late, FrameIgnored)


def test_callerror_and_invalid_result_are_values() -> None:
    c = core()
    out = c.send_call(v201.HeartbeatRequest(), 0.0)
    (event,) = c.receive(json.dumps([4, out.message_id, "InternalError", "boom", {}]), 1.0)
    assert isinstance(event, ErrorReceived) and event.error.code is ErrorCode.InternalError
    out = c.send_call(v201.HeartbeatRequest(), 2.0)
    (event,) = c.receive(json.dumps([4, out.message_id, "MadeUpCode"]), 3.0)
    assert isinstance(event, ErrorReceived) and event.error.code == "MadeUpCode"
    out = c.send_call(v201.HeartbeatRequest(), 4.0)
    (event,) = c.receive(json.dumps([3, out.message_id, {"currentTime": 12}]), 5.0)
    assert isinstance(event, ResponseInvalid) and event.error.code is ErrorCode.TypeConstraintViolation


def test_answers_are_never_answered_with_errors() -> None:
    c = core()
    for frame in ('[3, "nobody", {}]', '[4, "nobody", "GenericError", "", {}]', "[3]", '[4, 17]'):
        events = c.receive(frame, 0.0)
        assert all(not isinstance(e, CallRefused) for e in events), frame


def test_outgoing_payloads_are_schema_checked() -> None:
    c = core()
    with pytest.raises(OutgoingInvalid):
        c.send_call(("Authorize", {"idToken": {"idToken": "x" * 37, "type": "eMAID"}}), 0.0)
    assert c.can_send


def test_field_length_declared_in_the_device_model_relaxes_the_schema() -> None:
    long = "A" * 9000  # schema: exiResponse maxLength 7500
    c = core(field_lengths={"Get15118EVCertificateResponse.exiResponse": 15000})
    out = c.send_call(("Get15118EVCertificate", {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AA=="}), 0.0)
    (event,) = c.receive(json.dumps([3, out.message_id, {"status": "Accepted", "exiResponse": long}]), 1.0)
    assert isinstance(event, ResultReceived) and event.response.exi_response == long
    strict = core()
    out = strict.send_call(("Get15118EVCertificate", {"iso15118SchemaVersion": "x", "action": "Install", "exiRequest": "AA=="}), 0.0)
    (event,) = strict.receive(json.dumps([3, out.message_id, {"status": "Accepted", "exiResponse": long}]), 1.0)
    assert isinstance(event, ResponseInvalid)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=5).map(json.dumps)))
def test_any_frame_gives_events_never_an_exception(frame: str | bytes) -> None:
    c = core()
    for event in c.receive(frame, 0.0):
        if isinstance(event, CallRefused):
            peer = unpack(event.reply)
            assert isinstance(peer, PeerCallError)
            assert peer.error_code in {code.value for code in ErrorCode}
