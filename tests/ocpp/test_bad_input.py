"""Bad input from the CSMS, sent as raw frames by the emulator: each gets the CALLERROR
part 4 names (or, for a frame over the hard size limit, a clean close), and the station
keeps serving afterwards."""

from __future__ import annotations

import json

import pytest

from hil.csms import CsmsEmulator
from tests.ocpp.conftest import IDENTITY, PASSWORD, run

#: Every test here runs on OCPP 2.0.1 and on OCPP 2.1 (the emulator accepts one of them).
pytestmark = pytest.mark.usefixtures("each_ocpp_version")

CASES = [
    ("not json at all", "-1", "RpcFrameworkError"),
    ('{"object": "not an array"}', "-1", "RpcFrameworkError"),
    ('[2, "bad-1", "Heartbeat"]', "bad-1", "RpcFrameworkError"),
    ('[9, "bad-2", "Reset", {}]', "bad-2", "MessageTypeNotSupported"),
    ('[2, "bad-3", "SelfDestruct", {}]', "bad-3", "NotImplemented"),
    ('[2, "bad-4", "UpdateFirmware", {"requestId": 1, "firmware": {"location": "https://x", "retrieveDateTime": "2024-01-01T00:00:00Z"}}]',
     "bad-4", "NotSupported"),
    ('[2, "bad-5", "Reset", {}]', "bad-5", "OccurrenceConstraintViolation"),
    ('[2, "bad-6", "Reset", {"type": 3}]', "bad-6", "TypeConstraintViolation"),
    ('[2, "bad-7", "Reset", {"type": "Sometime"}]', "bad-7", "PropertyConstraintViolation"),
    ('[2, "bad-8", "Reset", {"type": "OnIdle", "bogus": true}]', "bad-8", "FormatViolation"),
    ('[2, "bad-9", "GetVariables", {"getVariableData": [' + ",".join(
        ['{"component": {"name": "A"}, "variable": {"name": "B"}}'] * 65) + "]}]", "bad-9", "OccurrenceConstraintViolation"),
]


def answers(csms: CsmsEmulator) -> dict[str, list]:
    """CALLERRORs the CSMS got from the station, by message id."""
    return {r.message_id: r.payload for r in csms.record if r.direction == "in" and r.message_type == 4}


def test_bad_frames_get_the_named_callerror_and_the_station_keeps_working(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(csms.url, max_message_bytes=16384)
            station = await h.start()
            assert await station.wait_online(5)
            for frame, _, _ in CASES:
                await csms.send_raw(IDENTITY, frame)
            big = json.dumps([2, "bad-big", "DataTransfer", {"vendorId": "v", "data": "x" * 20000}])
            await csms.send_raw(IDENTITY, big)
            await csms.wait_for(lambda e: len(answers(e)) >= len(CASES), 10)
            got = answers(csms)
            for frame, message_id, code in CASES + [(big, "bad-big", "FormatViolation")]:
                assert message_id in got, frame
                assert got[message_id][0] == code, (frame, got[message_id])
            # a CALLRESULT for nothing and a binary frame change nothing
            await csms.send_raw(IDENTITY, '[3, "nobody-asked", {}]')
            await csms.send_raw(IDENTITY, b"\x00\x01binary")
            answer = await csms.call_json(IDENTITY, "GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]})
            assert answer["getVariableResult"][0]["attributeValue"] == IDENTITY
            assert csms.connections == 1
            assert csms.invalid_frames() == []  # every CALLERROR we sent is valid OCPP-J
            await h.stop()

    run(body())


def test_a_frame_over_the_hard_limit_closes_the_connection_and_the_station_reconnects(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(csms.url, max_message_bytes=16384)  # hard limit: 4 x 16 KiB
            station = await h.start()
            assert await station.wait_online(5)
            huge = json.dumps([2, "huge", "DataTransfer", {"vendorId": "v", "data": "x" * 80000}])
            await csms.send_raw(IDENTITY, huge)
            await csms.wait_for(lambda e: e.connections >= 2 and IDENTITY in e.stations, 10)
            assert await station.wait_online(5)
            answer = await csms.call_json(IDENTITY, "GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]})
            assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
            await h.stop()

    run(body())


@pytest.mark.parametrize("result", ['{"currentTime": 5}', '"not an object"', '{"currentTime": "yesterday"}'])
def test_an_invalid_answer_from_the_csms_fails_the_call_not_the_station(harness, result: str) -> None:
    async def body() -> None:
        from pnc_bridge.ocpp import CallFailed, v201

        async def late(payload: dict, station_id: str) -> dict:
            await __import__("asyncio").sleep(1.0)  # our raw, invalid answer goes first
            return {"currentTime": "2024-01-01T00:00:00Z"}

        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}, responses={"Heartbeat": late}) as csms:
            h = harness(csms.url)
            station = await h.start()
            assert await station.wait_online(5)
            task = __import__("asyncio").create_task(station.call(v201.HeartbeatRequest(), priority=None))
            await csms.wait_for(lambda e: e.received("Heartbeat"), 5)
            message_id = csms.received("Heartbeat")[-1].message_id
            await csms.send_raw(IDENTITY, f'[3, "{message_id}", {result}]')
            with pytest.raises(CallFailed) as failed:
                await task
            assert failed.value.reason == "InvalidResponse"
            assert station.online
            await h.stop()

    run(body())
