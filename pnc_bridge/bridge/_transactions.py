"""When an EVSE's OCPP transaction starts, changes and ends: TxStartPoint / TxStopPoint.

Rules of this module:

- Pure: :class:`TransactionTracker` takes what happened on one EVSE (EV connected,
  authorized, energy flowing, authorization ended, EV gone) and returns the
  TransactionEvents to send as values (:class:`TxStart`, :class:`TxUpdate`, :class:`TxEnd`).
  The OCPP port applies them, in order, with meter values.
- The conditions, as OCPP 2.0.1 part 2 defines the TxStartPoint / TxStopPoint values:
  ``EVConnected`` (the EV is on the cable; here: from the first SupportedAppProtocol
  handshake, or the driver's CP state, until the EV's session is over for good),
  ``ParkingBayOccupancy`` (no bay sensor here: an EV on the cable occupies the bay),
  ``Authorized``, ``PowerPathClosed`` (connected and authorized, E01.FR.05 as the OCTT
  test texts quote it), ``DataSigned`` (authorized and the meter gave a signed value),
  ``EnergyTransfer`` (charging state Charging).
- A transaction starts when the first start point is met (E01.FR.02/05: "no transaction
  has started yet on this EVSE"); it ends when a stop point's condition changes from met
  to not met (E06: "... AND energy transfer stops", "... AND connection is lost"), and in
  any case when the EV leaves (nothing could end it later). One transaction per plug-in.
- ``triggerReason`` is the event that caused the TransactionEvent; ``stoppedReason`` is why
  the authorization or the connection ended (:data:`STOP_REASONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "STOP_REASONS",
    "TransactionPoints",
    "TransactionTracker",
    "TxAction",
    "TxEnd",
    "TxStart",
    "TxUpdate",
]

#: TxStartPoint / TxStopPoint values (OCPP 2.0.1 part 2, TxCtrlr).
POINTS = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned", "PowerPathClosed", "EnergyTransfer")

#: Why the SECC session ended (``pnc_bridge.secc.effects.StopReason`` values, plus the CSMS's
#: remote stop) -> (triggerReason, stoppedReason). The EV's SessionStopReq(Terminate) is the
#: EV stopping: StopAuthorized / StoppedByEV, as libocpp's own tests pair them.
STOP_REASONS: dict[str, tuple[str, str]] = {
    "Local": ("StopAuthorized", "StoppedByEV"),
    "EVDisconnected": ("EVCommunicationLost", "EVDisconnected"),
    "Timeout": ("EVCommunicationLost", "Timeout"),
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "Other": ("AbnormalCondition", "Other"),
    "Remote": ("RemoteStop", "Remote"),
}


@dataclass(frozen=True)
class TxStart:
    trigger_reason: str
    charging_state: str
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True)
class TxUpdate:
    trigger_reason: str
    charging_state: str | None = None
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True)
class TxEnd:
    trigger_reason: str
    stopped_reason: str
    charging_state: str


TxAction = TxStart | TxUpdate | TxEnd


@dataclass(frozen=True)
class TransactionPoints:
    """TxCtrlr.TxStartPoint and TxStopPoint as sets of point names."""

    start: frozenset[str]
    stop: frozenset[str]

    @classmethod
    def parse(cls, start: str | list[str], stop: str | list[str]) -> "TransactionPoints":
        def members(value: str | list[str]) -> frozenset[str]:
            items = value.split(",") if isinstance(value, str) else value
            return frozenset(i.strip() for i in items if i.strip() in POINTS)

        return cls(members(start), members(stop))


class TransactionTracker:
    """The transaction state of one EVSE. Every method returns the actions to apply, in order."""

    def __init__(self, points: TransactionPoints) -> None:
        self.points = points
        self._reset()

    def _reset(self) -> None:
        self.connected = False
        self.authorized = False
        self.signed = False
        self.charging_state = "EVConnected"
        self.open = False
        self.ended = False  # this plug-in's transaction is over
        self.token: dict[str, Any] | None = None
        self.remote_start_id: int | None = None
        self._token_sent = False
        self.stop_cause: tuple[str, str] | None = None
        self._refused = False

    # -- conditions ------------------------------------------------------------ #
    def _met(self) -> frozenset[str]:
        c, a = self.connected, self.authorized
        table = {
            "ParkingBayOccupancy": c,
            "EVConnected": c,
            "Authorized": a,
            "DataSigned": a and self.signed,
            "PowerPathClosed": c and a,
            "EnergyTransfer": self.charging_state == "Charging",
        }
        return frozenset(p for p, ok in table.items() if ok)

    def _evaluate(self, before: frozenset[str], trigger: str, actions: list[TxAction],
                  cause: tuple[str, str] | None = None) -> list[TxAction]:
        after = self._met()
        if not self.open and not self.ended and self.points.start & after:
            self.open = True
            token = self.token if self.authorized else None
            self._token_sent = token is not None
            actions.append(TxStart(trigger, self.charging_state, token, self.remote_start_id if token else None))
            return actions
        if self.open and self.points.stop & (before - after):
            actions.append(self._end(cause))
        return actions

    def _end(self, cause: tuple[str, str] | None = None) -> TxEnd:
        trigger, reason = cause or self.stop_cause or STOP_REASONS["EVDisconnected"]
        self.open = False
        self.ended = True
        return TxEnd(trigger, reason, self.charging_state if self.connected else "Idle")

    # -- events -------------------------------------------------------------- #
    def ev_connected(self) -> list[TxAction]:
        """The EV is on the cable (first handshake, or CP state B/C/D)."""
        if self.connected:
            return []
        before = self._met()
        self.connected = True
        trigger = "CablePluggedIn" if "ParkingBayOccupancy" not in self.points.start or "EVConnected" in self.points.start else "EVDetected"
        return self._evaluate(before, trigger, [])

    def authorized_by(self, id_token: dict[str, Any], *, remote_start_id: int | None = None) -> list[TxAction]:
        """The session is authorized (Plug & Charge, EIM, remote start)."""
        before = self._met()
        self.authorized = True
        self.token = id_token
        self.remote_start_id = remote_start_id
        trigger = "RemoteStart" if remote_start_id is not None else "Authorized"
        actions = self._evaluate(before, trigger, [])
        if self.open and not self._token_sent and not any(isinstance(a, TxStart) for a in actions):
            # E02: a transaction started before the authorization gets the idToken now
            self._token_sent = True
            actions.append(TxUpdate(trigger, id_token=id_token, remote_start_id=remote_start_id))
        return actions

    def data_signed(self) -> list[TxAction]:
        """The meter gave a signed value for this session."""
        before = self._met()
        self.signed = True
        return self._evaluate(before, "SignedDataReceived", [])

    def charging(self, state: str) -> list[TxAction]:
        """The charging state changed (``Charging``, ``SuspendedEV``, ``SuspendedEVSE``, ``EVConnected``)."""
        if state == self.charging_state:
            return []
        before = self._met()
        self.charging_state = state
        # E06.FR.07 (as the OCTT texts quote it): TxStopPoint EnergyTransfer and the EV stops
        # the energy transfer -> StoppedByEV; stopped by us -> the cause we already know.
        cause = self.stop_cause or ("ChargingStateChanged", "StoppedByEV" if state != "SuspendedEVSE" else "Other")
        was_open = self.open
        actions = self._evaluate(before, "ChargingStateChanged", [], cause)
        if was_open and not any(isinstance(a, TxEnd) for a in actions):
            actions.insert(0, TxUpdate("ChargingStateChanged", charging_state=state))
        return actions

    def authorization_ended(self, cause: str) -> list[TxAction]:
        """The session's authorization is over (``cause``: a key of :data:`STOP_REASONS`)."""
        before = self._met()
        self.stop_cause = STOP_REASONS.get(cause, STOP_REASONS["Other"])
        self.authorized = False
        if self.charging_state == "Charging":
            self.charging_state = "EVConnected"
        return self._evaluate(before, self.stop_cause[0], [])

    def authorization_refused(self) -> None:
        """The EV was refused (contract, signature, CSMS): if a transaction started before the
        authorization (EVConnected, ParkingBayOccupancy), it ends as DeAuthorized."""
        if self.stop_cause is None:
            self.stop_cause = STOP_REASONS["DeAuthorized"]
            self._refused = True

    def ev_disconnected(self, *, departed: bool = False) -> list[TxAction]:
        """The EV's session is over for good (not paused) or the cable is gone (``departed``:
        the control pilot went to state A, E or F; E06: triggerReason EVDeparted)."""
        if not self.connected and not self.open:
            self._reset()
            return []
        before = self._met()
        self.connected = False
        self.authorized = False
        if self.charging_state == "Charging":
            self.charging_state = "EVConnected"
        actions: list[TxAction] = []
        trigger = "EVDeparted" if departed else "EVCommunicationLost"
        if self.stop_cause is None:
            self.stop_cause = (trigger, "EVDisconnected")
        elif not self._refused:
            # the EV left after its session ended: the connection (or the cable) is what ended now
            self.stop_cause = (trigger, self.stop_cause[1])
        self._evaluate(before, trigger, actions)
        if self.open:  # no stop point caught it (e.g. only EnergyTransfer and no energy): the EV is gone
            actions.append(self._end())
        self._reset()
        return actions
