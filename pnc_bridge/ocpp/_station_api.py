"""The service-facing API of ``ChargingStation``: Plug & Charge calls, must-deliver
messages, transactions, connector status, smart charging and certificate requests.

Rules of this module:

- ``StationApi`` is a mixin of ``ChargingStation`` (``_station``): it holds no state of
  its own and uses the station's store, outbox, device model and call queue.
- Time-critical calls go through ``ChargingStation.call`` and fail fast when offline;
  must-deliver messages are committed to the outbox before the method returns and never
  fail for connection problems.
- Every payload is built from the generated models or checked against its schema before
  it is stored or queued, so a bad argument is an ``OutgoingInvalid`` at the caller.
- Payloads are built in the station form (the OCPP 2.1 models, a superset of 2.0.1);
  must-deliver ones are checked against every offered version, because the connection
  that will carry them may speak either (``ChargingStation.check_outgoing``).
- V2X: the protocol-neutral ``EvChargingNeeds`` and ``ChargingSchedule`` (``_v2x``) are the
  bridge's API; the version mapping of what they become is in ``_versions``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pnc_bridge.ocpp._events import ChargingProfilesChanged, ChargingScheduleChanged, DynamicScheduleUpdated
from pnc_bridge.ocpp._generated import v21 as m  # the station form: OCPP 2.1 shapes
from pnc_bridge.ocpp._model import OcppModel, format_datetime
from pnc_bridge.ocpp._protocol import OcppVersion, protocol_for
from pnc_bridge.ocpp._smart_charging import StoredProfile
from pnc_bridge.ocpp._v2x import ChargingSchedule, EvChargingNeeds, needs_payload, schedule_from_composite
from pnc_bridge.ocpp._variables import SecurityCtrlr, SmartChargingCtrlr
from pnc_bridge.ocpp._versions import lift, schema

log = logging.getLogger("pnc_bridge.ocpp")

#: Horizon of the schedules pushed to the service with ``ChargingScheduleChanged`` (s).
SCHEDULE_HORIZON = 86_400

__all__ = ["StationApi", "TransactionState", "CRITICAL_SECURITY_EVENTS"]

#: Security events the appendix marks critical: they are sent to the CSMS (A04.FR.01);
#: all others are only written to the security log (A04.FR.04).
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidCsmsCertificate",
        "InvalidChargingStationCertificate",
        "InvalidTLSVersion",
        "InvalidTLSCipherSuite",
        "MaintenanceLoginAccepted",
        "MaintenanceLoginFailed",
    }
)


@dataclass
class TransactionState:
    """A transaction the station has started and not ended (persisted in ``transactions``)."""

    transaction_id: str
    evse_id: int
    connector_id: int | None
    started: str
    charging_state: str | None = None
    id_token: dict[str, Any] | None = None
    authorized: bool = False
    iso15118: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "charging_state": self.charging_state,
                "id_token": self.id_token,
                "authorized": self.authorized,
                "iso15118": self.iso15118,
            }
        )


def _dump(value: Any) -> Any:
    if isinstance(value, OcppModel):
        return value.to_payload()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _as_payload(cls: type[OcppModel], value: Any) -> dict[str, Any]:
    """A model or a dict (camelCase or snake_case keys, datetimes allowed) as wire payload."""
    if isinstance(value, OcppModel):
        return value.to_payload()
    return cls.model_validate(value).to_payload()


def _value(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


class StationApi:
    """Methods of ``ChargingStation`` for the rest of the service (see ``_station``)."""

    # ================================================================== Plug & Charge API
    async def authorize(
        self,
        id_token: m.IdTokenType | dict[str, Any],
        *,
        certificate: str | None = None,
        iso15118_certificate_hash_data: list[m.OCSPRequestDataType | dict[str, Any]] | None = None,
        timeout: float | None = None,
    ) -> m.AuthorizeResponse:
        """C07: authorize an eMAID (with OCSP hash data) or send the contract chain (PEM)
        when CentralContractValidationAllowed. Raises ``CallFailed`` (``Offline`` at once),
        ``ValueError`` for a chain while ISO15118Ctrlr.CentralContractValidationAllowed is false."""
        from pnc_bridge.ocpp._variables import ISO15118Ctrlr

        if certificate and not self.device_model.get_bool(ISO15118Ctrlr.CentralContractValidationAllowed):
            # C07.FR.06: the chain goes to the CSMS only when central validation is allowed.
            raise ValueError("ISO15118Ctrlr.CentralContractValidationAllowed is false: validate the contract locally")
        request = m.AuthorizeRequest.model_validate(
            {
                "idToken": _dump(id_token),
                **({"certificate": certificate} if certificate else {}),
                **(
                    {"iso15118CertificateHashData": _dump(list(iso15118_certificate_hash_data))}
                    if iso15118_certificate_hash_data
                    else {}
                ),
            }
        )
        return await self.call(request, timeout=timeout)  # type: ignore[return-value]

    async def get_15118_ev_certificate(
        self, *, iso15118_schema_version: str, action: str, exi_request: str, timeout: float | None = None
    ) -> m.Get15118EVCertificateResponse:
        """M01/M02: forward the EV's CertificateInstallationReq/UpdateReq (base64 EXI).

        ``exi_request`` longer than the schema's 5600 characters (or the declared
        FieldLength) raises ``OutgoingInvalid``; a longer exiResponse than 7500 characters
        is accepted up to OCPPCommCtrlr.FieldLength[Get15118EVCertificateResponse.exiResponse].
        """
        request = m.Get15118EVCertificateRequest.model_validate(
            {"iso15118SchemaVersion": iso15118_schema_version, "action": action, "exiRequest": exi_request}
        )
        return await self.call(request, timeout=timeout)  # type: ignore[return-value]

    async def get_certificate_status(
        self, ocsp_request_data: m.OCSPRequestDataType | dict[str, Any], *, timeout: float | None = None
    ) -> m.GetCertificateStatusResponse:
        """M06: the OCSP status of one certificate, from the CSMS."""
        request = m.GetCertificateStatusRequest.model_validate({"ocspRequestData": _dump(ocsp_request_data)})
        return await self.call(request, timeout=timeout)  # type: ignore[return-value]

    async def notify_ev_charging_needs(
        self,
        evse_id: int,
        charging_needs: EvChargingNeeds | m.ChargingNeedsType | dict[str, Any],
        *,
        max_schedule_tuples: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """K15/K17 (2.1: also Q-block V2X): the EV's charging needs; the CSMS answers with a
        TxProfile later. Returns the NotifyEVChargingNeedsResponse of the connection's version.

        ``charging_needs`` is the protocol-neutral ``EvChargingNeeds`` (the bridge's way:
        mapped to 2.1 ``v2xChargingParameters`` / ``controlMode`` / ``mobilityNeedsMode`` /
        ``availableEnergyTransfer``, or on 2.0.1 to what 2.0.1 has plus those fields in
        ``customData`` under ``V2X_VENDOR_ID``), or a ChargingNeedsType (model or dict).
        The needs are remembered for the EVSE (discharge bounds, setpoint checks) before the
        call, so they count even when the call fails. Raises ``CallFailed`` (``Offline`` at once).
        """
        if isinstance(charging_needs, EvChargingNeeds):
            self._ev_needs[evse_id] = charging_needs
            payload = needs_payload(evse_id, charging_needs, now=self._clock(), max_schedule_tuples=max_schedule_tuples)
            payload = m.NotifyEVChargingNeedsRequest.model_validate(payload).to_payload()
        else:
            payload = {"evseId": evse_id, "chargingNeeds": _dump(charging_needs)}
            if max_schedule_tuples is not None:
                payload["maxScheduleTuples"] = max_schedule_tuples
        tx = self.transaction_on(evse_id)
        if tx is not None:
            self._iso15118_needs_sent.add(tx.transaction_id)
        return await self.call_action("NotifyEVChargingNeeds", payload, timeout=timeout)

    def ev_needs(self, evse_id: int) -> EvChargingNeeds | None:
        """The needs of the EV on ``evse_id`` as last given to ``notify_ev_charging_needs``."""
        return self._ev_needs.get(evse_id)

    def allowed_energy_transfer(self, transaction_id: str) -> tuple[str, ...] | None:
        """2.1 NotifyAllowedEnergyTransfer: the modes the CSMS allows for the transaction (None: not said)."""
        return self._allowed_energy_transfer.get(transaction_id)

    # ================================================================== durable messages
    async def security_event(self, event_type: str, tech_info: str | None = None, *, critical: bool | None = None) -> None:
        """A04: log a security event; critical ones are also queued for the CSMS."""
        timestamp = format_datetime(self._clock())
        if tech_info is not None:
            tech_info = tech_info[:255]
        await self.store.run(lambda: self.store.log_security_event(timestamp, event_type, tech_info))
        if critical is None:
            critical = event_type in CRITICAL_SECURITY_EVENTS
        if critical:
            payload = {"type": event_type, "timestamp": timestamp}
            if tech_info:
                payload["techInfo"] = tech_info
            await self._put_durable("SecurityEventNotification", payload)

    async def meter_values(self, evse_id: int, meter_value: list[m.MeterValueType | dict[str, Any]]) -> None:
        """J01: meter values outside a transaction, durable."""
        request = m.MeterValuesRequest.model_validate({"evseId": evse_id, "meterValue": _dump(list(meter_value))})
        await self._put_durable("MeterValues", request.to_payload())

    async def notify_ev_charging_schedule(
        self, evse_id: int, time_base: datetime, charging_schedule: m.ChargingScheduleType | dict[str, Any]
    ) -> None:
        """K15.FR.10: the EV's charging profile, durable. The schedule is a ChargingScheduleType
        in the 2.1 shape (``_v2x.ev_schedule_payload`` builds one with discharge: negative
        limits, ``dischargeLimit``, ``setpoint``); on 2.0.1 the 2.1-only fields travel in
        ``customData`` and a period without ``limit`` gets its setpoint as limit."""
        request = m.NotifyEVChargingScheduleRequest.model_validate(
            {"evseId": evse_id, "timeBase": time_base, "chargingSchedule": _dump(charging_schedule)}
        )
        await self._put_durable("NotifyEVChargingSchedule", request.to_payload())

    async def _put_durable(self, action: str, payload: dict[str, Any]) -> None:
        self.check_outgoing(action, payload, durable=True)
        offline = self._session is None
        await self.store.run(lambda: self.outbox.put(action, payload, offline=offline))
        self._wake(outbox=True)

    # ================================================================== transactions
    def transactions(self) -> list[TransactionState]:
        return list(self._transactions.values())

    def transaction_on(self, evse_id: int) -> TransactionState | None:
        return next((t for t in self._transactions.values() if t.evse_id == evse_id), None)

    async def start_transaction(
        self,
        evse_id: int,
        connector_id: int | None = None,
        *,
        trigger_reason: str,
        id_token: m.IdTokenType | dict[str, Any] | None = None,
        charging_state: str | None = None,
        remote_start_id: int | None = None,
        meter_value: list[Any] | None = None,
        reservation_id: int | None = None,
        transaction_id: str | None = None,
    ) -> str:
        """E01-E04: start a transaction on ``evse_id``; its TransactionEvent(Started, seqNo 0)
        is on disk when this returns. Returns the new transactionId (unique forever: E01.FR.08)."""
        if evse_id not in self._evses:
            raise ValueError(f"unknown EVSE {evse_id}")
        if self.transaction_on(evse_id) is not None:
            raise ValueError(f"EVSE {evse_id} already has a transaction")
        transaction_id = transaction_id or str(uuid.uuid4())
        started = format_datetime(self._clock())
        token = _as_payload(m.IdTokenType, id_token) if id_token is not None else None
        state = TransactionState(transaction_id, evse_id, connector_id, started, charging_state, token, token is not None)
        info: dict[str, Any] = {"transactionId": transaction_id}
        if charging_state:
            info["chargingState"] = charging_state
        if remote_start_id is not None:
            info["remoteStartId"] = remote_start_id
        evse: dict[str, Any] = {"id": evse_id}
        if connector_id is not None:
            evse["connectorId"] = connector_id
        extra: dict[str, Any] = {"evse": evse}
        if token is not None:
            extra["idToken"] = token
        if meter_value:
            extra["meterValue"] = [_as_payload(m.MeterValueType, v) for v in meter_value]
        if reservation_id is not None:
            extra["reservationId"] = reservation_id

        def persist(tx: Any) -> None:
            tx.execute(
                "INSERT INTO transactions (transaction_id, evse_id, connector_id, started, data) VALUES (?, ?, ?, ?, ?)",
                (transaction_id, evse_id, connector_id, started, state.to_json()),
            )

        await self._transaction_event("Started", evse_id, trigger_reason, info, extra, restart=True, on_commit=persist)
        self._transactions[transaction_id] = state
        return transaction_id

    async def update_transaction(
        self,
        transaction_id: str,
        *,
        trigger_reason: str,
        charging_state: str | None = None,
        id_token: m.IdTokenType | dict[str, Any] | None = None,
        meter_value: list[Any] | None = None,
        remote_start_id: int | None = None,
        stopped_reason: str | None = None,
        number_of_phases_used: int | None = None,
        cable_max_current: int | None = None,
        operation_mode: str | None = None,
    ) -> int:
        """A TransactionEvent(Updated); returns its seqNo. ``operation_mode`` (2.1
        OperationModeEnumType: the V2X mode now in force) goes to transactionInfo on 2.1 and
        to its customData on 2.0.1."""
        state = self._require_tx(transaction_id)
        info: dict[str, Any] = {"transactionId": transaction_id}
        if operation_mode is not None:
            info["operationMode"] = operation_mode
        if charging_state:
            info["chargingState"] = charging_state
            state.charging_state = charging_state
        if remote_start_id is not None:
            info["remoteStartId"] = remote_start_id
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        extra: dict[str, Any] = {}
        if id_token is not None:
            extra["idToken"] = _as_payload(m.IdTokenType, id_token)
            state.id_token = extra["idToken"]
            state.authorized = True
        if meter_value:
            extra["meterValue"] = [_as_payload(m.MeterValueType, v) for v in meter_value]
        if number_of_phases_used is not None:
            extra["numberOfPhasesUsed"] = number_of_phases_used
        if cable_max_current is not None:
            extra["cableMaxCurrent"] = cable_max_current

        def persist(tx: Any) -> None:
            tx.execute("UPDATE transactions SET data=? WHERE transaction_id=?", (state.to_json(), transaction_id))

        return await self._transaction_event("Updated", state.evse_id, trigger_reason, info, extra, on_commit=persist)

    async def end_transaction(
        self,
        transaction_id: str,
        *,
        trigger_reason: str,
        stopped_reason: str = "Local",
        id_token: m.IdTokenType | dict[str, Any] | None = None,
        meter_value: list[Any] | None = None,
        charging_state: str | None = None,
    ) -> int:
        """E06: TransactionEvent(Ended), committed together with forgetting the transaction."""
        state = self._require_tx(transaction_id)
        info: dict[str, Any] = {"transactionId": transaction_id, "stoppedReason": stopped_reason}
        if charging_state:
            info["chargingState"] = charging_state
        extra: dict[str, Any] = {}
        if id_token is not None:
            extra["idToken"] = _as_payload(m.IdTokenType, id_token)
        if meter_value:
            extra["meterValue"] = [_as_payload(m.MeterValueType, v) for v in meter_value]
        tx_profiles = [p.id for p in self._profiles.values() if p.profile.transaction_id == transaction_id]

        def persist(tx: Any) -> None:
            tx.execute("DELETE FROM transactions WHERE transaction_id=?", (transaction_id,))
            for profile_id in tx_profiles:  # a TxProfile lives as long as its transaction
                tx.execute("DELETE FROM charging_profiles WHERE id=?", (profile_id,))

        seq = await self._transaction_event("Ended", state.evse_id, trigger_reason, info, extra, on_commit=persist)
        self._transactions.pop(transaction_id, None)
        self._iso15118_needs_sent.discard(transaction_id)
        self._ev_needs.pop(state.evse_id, None)
        self._allowed_energy_transfer.pop(transaction_id, None)
        for profile_id in tx_profiles:
            self._profiles.pop(profile_id, None)
            self._dynamic_pull.pop(profile_id, None)
        if tx_profiles:
            self.emit(ChargingProfilesChanged((state.evse_id,), "TransactionEnded"))
            self._emit_schedules((state.evse_id,), "TransactionEnded")
        self._wake()
        return seq

    def _require_tx(self, transaction_id: str) -> TransactionState:
        try:
            return self._transactions[transaction_id]
        except KeyError:
            raise ValueError(f"no open transaction {transaction_id}") from None

    async def _transaction_event(
        self,
        event_type: str,
        evse_id: int,
        trigger_reason: str,
        info: dict[str, Any],
        extra: dict[str, Any],
        *,
        restart: bool = False,
        on_commit: Callable[[Any], None] | None = None,
    ) -> int:
        timestamp = format_datetime(self._clock())

        def make(seq_no: int) -> dict[str, Any]:
            payload = {
                "eventType": event_type,
                "timestamp": timestamp,
                "triggerReason": trigger_reason,
                "seqNo": seq_no,
                "transactionInfo": info,
                **extra,
            }
            self.check_outgoing("TransactionEvent", payload, durable=True)
            return payload

        offline = self._session is None

        def commit() -> int:
            _, seq_no = self.outbox.put_transaction_event(
                evse_id, make, offline=offline, restart_sequence=restart, on_commit=on_commit
            )
            return seq_no

        seq_no = await self.store.run(commit)
        self._wake(outbox=True)
        return seq_no

    # ================================================================== connectors
    def set_connector_status(self, evse_id: int, connector_id: int, status: str) -> None:
        """Report the physical status (ConnectorStatusEnumType) of a connector; the station
        applies availability and sends StatusNotification when the reported status changes."""
        key = (evse_id, connector_id)
        if key not in self._connector_status:
            raise ValueError(f"unknown connector {evse_id}/{connector_id}")
        self._connector_status[key] = status
        self._wake()

    def effective_status(self, evse_id: int, connector_id: int) -> str:
        physical = self._connector_status[(evse_id, connector_id)]
        if physical in ("Faulted", "Occupied"):
            return physical  # G01.FR.05: becomes Unavailable only after the EV left
        if not self.operative(evse_id, connector_id):
            return "Unavailable"
        return physical

    def operative(self, evse_id: int | None = None, connector_id: int | None = None) -> bool:
        if self._availability.get("0") == "Inoperative":
            return False
        if evse_id is not None and self._availability.get(str(evse_id)) == "Inoperative":
            return False
        if connector_id is not None and self._availability.get(f"{evse_id}.{connector_id}") == "Inoperative":
            return False
        return True

    def set_availability(self, scope: str, operational_status: str) -> None:
        self._availability[scope] = operational_status
        self.store.set_json("availability", self._availability)
        self._wake()

    # ================================================================== smart charging
    def charging_profiles(self, evse_id: int | None = None) -> list[StoredProfile]:
        return [p for p in self._profiles.values() if evse_id is None or p.evse_id == evse_id]

    def composite_schedule(self, evse_id: int, duration: int, unit: str | None = None, *, start: datetime | None = None) -> dict[str, Any]:
        """K08: the CompositeScheduleType (dict) for ``evse_id`` from now."""
        from pnc_bridge.ocpp._smart_charging import composite_schedule

        start = start or self._clock()
        units = self.device_model.get_list(SmartChargingCtrlr.RateUnit)
        unit = unit or (units[0] if units else "W")
        if evse_id == 0:
            evse_max = sum(e.max_power_w for e in self._evses.values())
            phases = max((e.supply_phases for e in self._evses.values()), default=0)
        else:
            evse_max = self._evses[evse_id].max_power_w
            phases = self._evses[evse_id].supply_phases
        tx = self.transaction_on(evse_id) if evse_id else None
        if evse_id == 0:
            evse_discharge = sum(e.max_discharge_power_w for e in self._evses.values())
        else:
            evse_discharge = self._evses[evse_id].max_discharge_power_w
        return composite_schedule(
            self._profiles.values(),
            evse_id=evse_id,
            start=start,
            duration=duration,
            unit=unit,
            transaction_id=tx.transaction_id if tx else None,
            transaction_start=datetime.fromisoformat(tx.started.replace("Z", "+00:00")) if tx else None,
            evse_max=evse_max,
            evse_max_unit="W",
            supply_phases=phases,
            line_voltage=self.config.line_voltage if phases else self.config.dc_voltage,
            evse_max_discharge=evse_discharge,
            ev=self._ev_needs.get(evse_id) if evse_id else None,
            offline_for=self.offline_for(),
        )

    def charging_schedule(self, evse_id: int, duration: int = SCHEDULE_HORIZON, unit: str = "W",
                          *, start: datetime | None = None) -> ChargingSchedule:
        """The composite schedule of ``evse_id`` from now as the protocol-neutral
        ``ChargingSchedule``: charge and discharge (negative limit = discharge period,
        ``discharge_limit``, ``setpoint``), bounded by the EVSE and the EV's needs.

        While offline it is the last valid schedule: the stored profiles still apply, except
        those whose 2.1 ``maxOfflineDuration`` has passed. Falling back to charge-only after
        a while is the service's decision (``ChargingSchedule.charge_only()``)."""
        return schedule_from_composite(self.composite_schedule(evse_id, duration, unit, start=start))

    def station_profile(self, profile: OcppModel) -> m.ChargingProfileType:
        """A ChargingProfileType of either version in the station form (a 2.1 model): on
        2.0.1 our vendor's customData (dischargeLimit, setpoint, operationMode) is lifted
        into the period. Raises ``ValueError`` with the reason when the result is not
        valid OCPP 2.1 (a positive dischargeLimit in customData, ...)."""
        if isinstance(profile, m.ChargingProfileType):
            return profile
        payload = {"evseId": 0, "chargingProfile": profile.to_payload()}
        lifted = lift(payload, schema(OcppVersion.v21, "SetChargingProfileRequest"))
        error = protocol_for(OcppVersion.v21).check_payload("SetChargingProfile", "Request", lifted)
        if error is not None:
            raise ValueError(error.description)
        return m.ChargingProfileType.model_validate(lifted["chargingProfile"])

    def _emit_schedules(self, evse_ids: Iterable[int], reason: str, charging_profile_id: int | None = None) -> None:
        """``ChargingScheduleChanged`` for each EVSE touched (0 = all), with the new schedule."""
        ids = sorted(self._evses) if 0 in evse_ids else sorted(e for e in set(evse_ids) if e in self._evses)
        for evse_id in ids:
            try:
                schedule = self.charging_schedule(evse_id)
            except Exception:  # noqa: BLE001 - a schedule bug must not hide the change itself
                log.exception("composite schedule of EVSE %d failed", evse_id)
                continue
            self.emit(ChargingScheduleChanged(evse_id, schedule, reason, charging_profile_id))

    async def apply_schedule_update(self, profile_id: int, update: dict[str, Any], source: str) -> tuple[str, str | None]:
        """A ChargingScheduleUpdateType (2.1 UpdateDynamicSchedule / PullDynamicScheduleUpdate)
        for the Dynamic profile ``profile_id``: the values replace those of its period, the
        profile is stored, and ``DynamicScheduleUpdated`` + ``ChargingScheduleChanged`` go to
        the service at once. Returns (status, reason code)."""
        from pnc_bridge.ocpp._smart_charging import period_discharge_request, value_range

        stored = self._profiles.get(profile_id)
        if stored is None:
            return "Rejected", "UnknownProfile"
        if _value(stored.profile.charging_profile_kind) != "Dynamic":
            return "Rejected", "NotDynamic"
        fields = {k: v for k, v in update.items() if k != "customData"}
        schedule = stored.profile.charging_schedule[0]
        period = schedule.charging_schedule_period[0]
        new_period = m.ChargingSchedulePeriodType.model_validate({**period.to_payload(), **fields})
        if new_period.limit is None and new_period.setpoint is None:
            return "Rejected", "InvalidValue"
        unit = _value(schedule.charging_rate_unit)
        if period_discharge_request(new_period) and stored.evse_id:
            needs = self._ev_needs.get(stored.evse_id)
            if not self._evses[stored.evse_id].max_discharge_power_w or (needs is not None and not needs.bidirectional):
                return "Rejected", "NoBidirectional"
        if new_period.setpoint is not None and stored.evse_id:
            ctx = self._handlers._profile_context()
            low, high = value_range(stored.evse_id, unit, ctx)
            if not low <= new_period.setpoint <= high:
                return "Rejected", "SetpointOutOfRange"
        new_schedule = schedule.model_copy(update={"charging_schedule_period": [new_period, *schedule.charging_schedule_period[1:]]})
        profile = stored.profile.model_copy(
            update={"charging_schedule": [new_schedule, *stored.profile.charging_schedule[1:]], "dyn_update_time": self._clock()}
        )
        await self.store.run(lambda: self.store_profile(stored.evse_id, profile))
        evse_ids = (stored.evse_id,) if stored.evse_id else tuple(sorted(self._evses))
        for evse_id in evse_ids:
            schedule_now = self.charging_schedule(evse_id)
            self.emit(DynamicScheduleUpdated(evse_id, profile_id, profile.transaction_id, schedule_now.periods[0], source))
        self._emit_schedules(evse_ids, source, profile_id)
        return "Accepted", None

    def store_profile(self, evse_id: int, profile: m.ChargingProfileType) -> None:
        """Store a profile (station form); blocking, for ``Store.run``."""
        stored = StoredProfile(evse_id, profile)
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM charging_profiles WHERE id=?", (stored.id,))
            tx.execute(
                "INSERT INTO charging_profiles (id, evse_id, purpose, stack_level, transaction_id, profile) VALUES (?, ?, ?, ?, ?, ?)",
                (stored.id, evse_id, stored.purpose, stored.stack_level, profile.transaction_id, json.dumps(profile.to_payload())),
            )
        self._profiles[stored.id] = stored

    def track_dynamic_pull(self, profile: m.ChargingProfileType) -> None:
        """2.1: pull updates of a Dynamic profile every dynUpdateInterval (event loop only)."""
        interval = getattr(profile, "dyn_update_interval", None)
        if _value(profile.charging_profile_kind) == "Dynamic" and interval and interval > 0:
            if int(profile.id) not in self._dynamic_pull:
                self._dynamic_pull[int(profile.id)] = asyncio.get_running_loop().time() + interval
                self._wake()
        else:
            self._dynamic_pull.pop(int(profile.id), None)

    def remove_profiles(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self.store.transaction() as tx:
            for profile_id in ids:
                tx.execute("DELETE FROM charging_profiles WHERE id=?", (profile_id,))
        for profile_id in ids:
            self._profiles.pop(profile_id, None)
            self._dynamic_pull.pop(profile_id, None)

    # ================================================================== certificates (A02/A03)
    async def request_certificate(self, use: str, *, triggered: bool = False) -> str:
        """Create a CSR for ``use`` (ChargingStationCertificate, V2GCertificate or, on OCPP
        2.1, V2G20Certificate) and send SignCertificate; returns SignCertificateResponse.status.
        Re-sent with back-off while no CertificateSigned arrives (A02.FR.17-19)."""
        from pnc_bridge.ocpp._variables import ISO15118Ctrlr

        dm = self.device_model
        if use in ("V2GCertificate", "V2G20Certificate"):
            common_name = dm.get(ISO15118Ctrlr.SeccId) or self.config.identity
            organization = dm.get(ISO15118Ctrlr.OrganizationName) or dm.get(SecurityCtrlr.OrganizationName) or ""
            country = dm.get(ISO15118Ctrlr.CountryName) or None
        else:
            common_name = self.config.info.serial_number or self.config.identity
            organization = dm.get(SecurityCtrlr.OrganizationName) or ""
            country = None
        csr = await self.store.run(
            lambda: self.certificates.create_csr(use, common_name=common_name, organization=organization, country=country)
        )
        return await self._send_csr(use, csr, triggered=triggered, first=True)

    async def _send_csr(self, use: str, csr: str, *, triggered: bool, first: bool) -> str:
        request = m.SignCertificateRequest.model_validate({"csr": csr, "certificateType": use})
        response = await self.call(request, triggered=triggered)
        status = _value(response.status)
        loop = asyncio.get_running_loop()
        if status == "Accepted":
            wait = float(self.device_model.get_int(SecurityCtrlr.CertSigningWaitMinimum))
            if first:
                repeats = self.device_model.get_int(SecurityCtrlr.CertSigningRepeatTimes)
                self._cert_signing[use] = (loop.time() + wait, wait, repeats, csr)
            self._wake()
        else:
            self._cert_signing.pop(use, None)
        return status

    def certificate_signed(self, use: str) -> None:
        """CertificateSigned arrived for ``use``: stop re-sending its CSR."""
        self._cert_signing.pop(use, None)

