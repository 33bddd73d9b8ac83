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
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pnc_bridge.ocpp._events import ChargingProfilesChanged
from pnc_bridge.ocpp._generated import v201 as m
from pnc_bridge.ocpp._model import OcppModel, format_datetime
from pnc_bridge.ocpp._rpc import OutgoingInvalid
from pnc_bridge.ocpp._smart_charging import StoredProfile
from pnc_bridge.ocpp._variables import SecurityCtrlr, SmartChargingCtrlr

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
        charging_needs: m.ChargingNeedsType | dict[str, Any],
        *,
        max_schedule_tuples: int | None = None,
        timeout: float | None = None,
    ) -> m.NotifyEVChargingNeedsResponse:
        """K15/K17: the EV's charging needs; the CSMS answers with a TxProfile later."""
        payload: dict[str, Any] = {"evseId": evse_id, "chargingNeeds": _dump(charging_needs)}
        if max_schedule_tuples is not None:
            payload["maxScheduleTuples"] = max_schedule_tuples
        tx = self.transaction_on(evse_id)
        if tx is not None:
            self._iso15118_needs_sent.add(tx.transaction_id)
        return await self.call(m.NotifyEVChargingNeedsRequest.model_validate(payload), timeout=timeout)  # type: ignore[return-value]

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
        """K15.FR.10: the EV's charging profile, durable."""
        request = m.NotifyEVChargingScheduleRequest.model_validate(
            {"evseId": evse_id, "timeBase": time_base, "chargingSchedule": _dump(charging_schedule)}
        )
        await self._put_durable("NotifyEVChargingSchedule", request.to_payload())

    async def _put_durable(self, action: str, payload: dict[str, Any]) -> None:
        error = self._protocols[0].check_payload(action, "Request", payload, self._field_lengths())
        if error is not None:
            raise OutgoingInvalid(action, error)
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
    ) -> int:
        """A TransactionEvent(Updated); returns its seqNo."""
        state = self._require_tx(transaction_id)
        info: dict[str, Any] = {"transactionId": transaction_id}
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
        for profile_id in tx_profiles:
            self._profiles.pop(profile_id, None)
        if tx_profiles:
            self.emit(ChargingProfilesChanged((state.evse_id,), "TransactionEnded"))
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
        protocol = self._protocols[0]
        field_lengths = self._field_lengths()

        def make(seq_no: int) -> dict[str, Any]:
            payload = {
                "eventType": event_type,
                "timestamp": timestamp,
                "triggerReason": trigger_reason,
                "seqNo": seq_no,
                "transactionInfo": info,
                **extra,
            }
            error = protocol.check_payload("TransactionEvent", "Request", payload, field_lengths)
            if error is not None:
                raise OutgoingInvalid("TransactionEvent", error)
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
        )

    def store_profile(self, evse_id: int, profile: m.ChargingProfileType) -> None:
        stored = StoredProfile(evse_id, profile)
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM charging_profiles WHERE id=?", (stored.id,))
            tx.execute(
                "INSERT INTO charging_profiles (id, evse_id, purpose, stack_level, transaction_id, profile) VALUES (?, ?, ?, ?, ?, ?)",
                (stored.id, evse_id, stored.purpose, stored.stack_level, profile.transaction_id, json.dumps(profile.to_payload())),
            )
        self._profiles[stored.id] = stored

    def remove_profiles(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self.store.transaction() as tx:
            for profile_id in ids:
                tx.execute("DELETE FROM charging_profiles WHERE id=?", (profile_id,))
        for profile_id in ids:
            self._profiles.pop(profile_id, None)

    # ================================================================== certificates (A02/A03)
    async def request_certificate(self, use: str, *, triggered: bool = False) -> str:
        """Create a CSR for ``use`` (ChargingStationCertificate or V2GCertificate) and send
        SignCertificate; returns SignCertificateResponse.status. Re-sent with back-off
        while no CertificateSigned arrives (A02.FR.17-19)."""
        from pnc_bridge.ocpp._variables import ISO15118Ctrlr

        dm = self.device_model
        if use == "V2GCertificate":
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

