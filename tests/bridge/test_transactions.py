"""TxStartPoint / TxStopPoint (OCPP 2.0.1 E01/E06) on the pure tracker: which events start
and end the transaction, with which triggerReason, stoppedReason and chargingState."""

from __future__ import annotations

import pytest

from pnc_bridge.bridge._transactions import TransactionPoints, TransactionTracker, TxEnd, TxStart, TxUpdate

TOKEN = {"idToken": "DE8AA0012345670", "type": "eMAID"}


def tracker(start: str, stop: str) -> TransactionTracker:
    return TransactionTracker(TransactionPoints.parse(start, stop))


def session(t: TransactionTracker, *, stop: str = "Local") -> list:
    """A whole EV session: plug in, authorize, charge, stop charging, session ends, EV leaves."""
    return [
        *t.ev_connected(),
        *t.authorized_by(TOKEN),
        *t.charging("Charging"),
        *t.charging("EVConnected"),
        *t.authorization_ended(stop),
        *t.ev_disconnected(),
    ]


@pytest.mark.parametrize("start,trigger,state", [
    ("EVConnected", "CablePluggedIn", "EVConnected"),
    ("ParkingBayOccupancy", "EVDetected", "EVConnected"),
    ("Authorized", "Authorized", "EVConnected"),
    ("PowerPathClosed", "Authorized", "EVConnected"),
    ("EnergyTransfer", "ChargingStateChanged", "Charging"),
])
def test_start_points(start, trigger, state):
    actions = session(tracker(start, "EVConnected"))
    starts = [a for a in actions if isinstance(a, TxStart)]
    assert len(starts) == 1 and starts[0].trigger_reason == trigger and starts[0].charging_state == state
    # the idToken goes out exactly once: in Started when authorized by then, else in an Updated (E02)
    with_token = [a for a in actions if isinstance(a, (TxStart, TxUpdate)) and a.id_token == TOKEN]
    assert len(with_token) == 1
    assert isinstance(actions[-1], TxEnd)


@pytest.mark.parametrize("stop,trigger,reason,state", [
    ("EVConnected", "EVCommunicationLost", "StoppedByEV", "Idle"),  # ends when the EV leaves
    ("Authorized", "StopAuthorized", "StoppedByEV", "EVConnected"),  # ends with the EV's SessionStop
    ("PowerPathClosed", "StopAuthorized", "StoppedByEV", "EVConnected"),
    ("EnergyTransfer", "ChargingStateChanged", "StoppedByEV", "EVConnected"),  # E06.FR.07
])
def test_stop_points(stop, trigger, reason, state):
    actions = session(tracker("PowerPathClosed", stop))
    ends = [a for a in actions if isinstance(a, TxEnd)]
    assert ends == [TxEnd(trigger, reason, state)]


@pytest.mark.parametrize("cause,trigger,reason", [
    ("Local", "StopAuthorized", "StoppedByEV"),
    ("Remote", "RemoteStop", "Remote"),
    ("DeAuthorized", "Deauthorized", "DeAuthorized"),
    ("Timeout", "EVCommunicationLost", "Timeout"),
    ("EVDisconnected", "EVCommunicationLost", "EVDisconnected"),
    ("Other", "AbnormalCondition", "Other"),
])
def test_why_the_session_ended(cause, trigger, reason):
    t = tracker("PowerPathClosed", "Authorized")
    actions = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.charging("Charging"), *t.authorization_ended(cause)]
    assert actions[-1].trigger_reason == trigger and actions[-1].stopped_reason == reason


def test_refused_before_authorization_ends_as_deauthorized():
    t = tracker("EVConnected", "EVConnected")
    assert [type(a) for a in t.ev_connected()] == [TxStart]
    t.authorization_refused()
    assert t.ev_disconnected() == [TxEnd("Deauthorized", "DeAuthorized", "Idle")]


def test_no_transaction_without_its_start_point():
    t = tracker("EnergyTransfer", "EnergyTransfer")
    actions = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.authorization_ended("DeAuthorized"), *t.ev_disconnected()]
    assert actions == []


def test_a_transaction_ends_when_the_ev_leaves_whatever_the_stop_point():
    t = tracker("Authorized", "EnergyTransfer")  # never charged: EnergyTransfer never became false
    actions = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.ev_disconnected()]
    assert [type(a) for a in actions] == [TxStart, TxEnd]
    assert actions[-1].stopped_reason == "EVDisconnected"


def test_one_transaction_per_plug_in_and_a_new_one_after():
    t = tracker("EnergyTransfer", "EnergyTransfer")
    first = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.charging("Charging"), *t.charging("SuspendedEV"),
             *t.charging("Charging")]
    assert [type(a) for a in first] == [TxStart, TxEnd]  # resumed charging does not start another one
    assert t.ev_disconnected() == []
    again = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.charging("Charging")]
    assert [type(a) for a in again] == [TxStart]


def test_a_pause_keeps_the_transaction():
    t = tracker("PowerPathClosed", "EVConnected")
    actions = [*t.ev_connected(), *t.authorized_by(TOKEN), *t.charging("Charging"), *t.charging("SuspendedEV")]
    assert actions[-1] == TxUpdate("ChargingStateChanged", charging_state="SuspendedEV")
    assert t.open


def test_remote_start_and_data_signed():
    t = tracker("DataSigned", "EVConnected")
    assert [*t.ev_connected(), *t.authorized_by(TOKEN, remote_start_id=7)] == []
    (start,) = t.data_signed()
    assert start.trigger_reason == "SignedDataReceived" and start.remote_start_id == 7 and start.id_token == TOKEN


def test_points_from_the_device_model_ignore_unknown_values():
    points = TransactionPoints.parse("EVConnected, Authorized,Nonsense", ["EnergyTransfer"])
    assert points.start == {"EVConnected", "Authorized"} and points.stop == {"EnergyTransfer"}
