"""Handlers for the requests a CSMS sends to the station (OCPP 2.0.1 and 2.1).

Rules of this module:

- ``StationHandlers.routes`` is the explicit action -> handler table, built once. An
  action without a row is answered by the station with CALLERROR NotSupported.
- A handler takes the typed request and returns a ``Reply``: the typed response, and an
  optional ``after`` step that runs once the response has been sent (F06.FR.04: the
  triggered message follows the TriggerMessageResponse; B07: NotifyReport follows
  GetBaseReportResponse). To answer with a CALLERROR a handler raises ``Refuse``.
- Each decision cites the requirement it implements. Handlers never block on the CSMS;
  anything that needs another call is done in ``after``.
- Requests arrive as models of the connection's version (the same field names in both);
  responses are built with ``self.m``, the models of that version. Charging profiles are
  turned into the station form (2.1) on arrival (``station.station_profile``). Actions only
  2.1 has (UpdateDynamicSchedule, NotifyAllowedEnergyTransfer) never reach a 2.0.1
  connection's handlers: the RPC core answers them NotImplemented there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from pnc_bridge.ocpp._certificates import CertificateHashData
from pnc_bridge.ocpp._connection import NetworkProfile
from pnc_bridge.ocpp._device_model import SetOutcome, VariableKey
from pnc_bridge.ocpp._errors import CallError, ErrorCode
from pnc_bridge.ocpp._events import (
    AvailabilityChanged,
    CertificateDeleted,
    CertificateInstalled,
    AllowedEnergyTransferChanged,
    ChargingProfilesChanged,
    RemoteStartRequested,
    RemoteStopRequested,
    ResetRequested,
)
from pnc_bridge.ocpp._generated import v201 as m  # for type annotations (both versions have the same names)
from pnc_bridge.ocpp._generated import v21  # the station form of what the station sends
from pnc_bridge.ocpp._model import OcppModel
from pnc_bridge.ocpp._rpc import OutgoingInvalid
from pnc_bridge.ocpp._smart_charging import ProfileContext, StoredProfile, check_profile, matches_criteria
from pnc_bridge.ocpp._versions import to_version
from pnc_bridge.ocpp._variables import (
    DeviceDataCtrlr,
    ISO15118Ctrlr,
    OCPPCommCtrlr,
    SecurityCtrlr,
    SmartChargingCtrlr,
)

if TYPE_CHECKING:
    from pnc_bridge.ocpp._station import ChargingStation

__all__ = ["StationHandlers", "Reply", "Refuse"]

log = logging.getLogger("pnc_bridge.ocpp")


@dataclass
class Reply:
    response: OcppModel
    after: Callable[[], Awaitable[None] | None] | None = None


class Refuse(Exception):
    """Raised by a handler to answer with a CALLERROR."""

    def __init__(self, code: ErrorCode, description: str = "") -> None:
        super().__init__(description)
        self.error = CallError(code, description)


def _v(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _status_info(reason: str | None, detail: str | None = None) -> dict[str, Any] | None:
    if reason is None:
        return None
    info: dict[str, Any] = {"reasonCode": reason}
    if detail:
        info["additionalInfo"] = detail[:512]
    return info


def _build(cls: type[OcppModel], **fields: Any) -> OcppModel:
    """Build a response from camelCase fields, leaving out the ones that are None."""
    return cls.model_validate({k: v for k, v in fields.items() if v is not None})


class StationHandlers:
    """The route table of one ``ChargingStation``."""

    def __init__(self, station: "ChargingStation") -> None:
        self.station = station
        self.routes: dict[str, Callable[[Any], Awaitable[Reply]]] = {
            "GetVariables": self.get_variables,
            "SetVariables": self.set_variables,
            "GetBaseReport": self.get_base_report,
            "GetReport": self.get_report,
            "SetNetworkProfile": self.set_network_profile,
            "Reset": self.reset,
            "ChangeAvailability": self.change_availability,
            "RequestStartTransaction": self.request_start_transaction,
            "RequestStopTransaction": self.request_stop_transaction,
            "GetTransactionStatus": self.get_transaction_status,
            "TriggerMessage": self.trigger_message,
            "SetChargingProfile": self.set_charging_profile,
            "ClearChargingProfile": self.clear_charging_profile,
            "GetChargingProfiles": self.get_charging_profiles,
            "GetCompositeSchedule": self.get_composite_schedule,
            "CertificateSigned": self.certificate_signed,
            "InstallCertificate": self.install_certificate,
            "DeleteCertificate": self.delete_certificate,
            "GetInstalledCertificateIds": self.get_installed_certificate_ids,
            "DataTransfer": self.data_transfer,
            # OCPP 2.1 only
            "UpdateDynamicSchedule": self.update_dynamic_schedule,
            "NotifyAllowedEnergyTransfer": self.notify_allowed_energy_transfer,
        }
        dm = station.device_model
        dm.guard(OCPPCommCtrlr.NetworkConfigurationPriority, self._check_network_priority)

    @property
    def m(self) -> Any:
        """The generated models of the connection's OCPP version."""
        return self.station.models

    # ================================================================== device model (B05-B08)
    def _limit(self, key: VariableKey) -> int:
        return self.station.device_model.get_int(key)

    def _check_size(self, request: OcppModel, items: int, items_key: VariableKey, bytes_key: VariableKey) -> None:
        if items > self._limit(items_key):
            # B06.FR.16 / B08.FR.17
            raise Refuse(ErrorCode.OccurrenceConstraintViolation, f"at most {self._limit(items_key)} items per message")
        size = len(request.model_dump_json(by_alias=True, exclude_none=True).encode())
        if size > self._limit(bytes_key):
            raise Refuse(ErrorCode.FormatViolation, f"at most {self._limit(bytes_key)} bytes per message")  # B06.FR.17

    @staticmethod
    def _where(component: Any, variable: Any) -> tuple[str, str | None, int | None, int | None, str, str | None]:
        evse = component.evse
        return (
            component.name,
            component.instance,
            evse.id if evse is not None else None,
            evse.connector_id if evse is not None else None,
            variable.name,
            variable.instance,
        )

    async def get_variables(self, request: m.GetVariablesRequest) -> Reply:
        self._check_size(request, len(request.get_variable_data), DeviceDataCtrlr.ItemsPerMessageGetVariables,
                         DeviceDataCtrlr.BytesPerMessageGetVariables)
        dm = self.station.device_model
        results = []
        for item in request.get_variable_data:
            attribute_type = _v(item.attribute_type) if item.attribute_type else "Actual"  # B06.FR.11
            outcome = dm.get_variable(*self._where(item.component, item.variable), attribute_type)
            result: dict[str, Any] = {
                "attributeStatus": outcome.status,
                "attributeType": attribute_type,
                "component": item.component.to_payload(),
                "variable": item.variable.to_payload(),
            }
            if outcome.status == "Accepted":
                result["attributeValue"] = (outcome.value or "")[: dm.get_int(DeviceDataCtrlr.ReportingValueSize)]
            info = _status_info(outcome.reason)
            if info:
                result["attributeStatusInfo"] = info
            results.append(result)
        return Reply(self.m.GetVariablesResponse.model_validate({"getVariableResult": results}))

    async def set_variables(self, request: m.SetVariablesRequest) -> Reply:
        self._check_size(request, len(request.set_variable_data), DeviceDataCtrlr.ItemsPerMessageSetVariables,
                         DeviceDataCtrlr.BytesPerMessageSetVariables)
        dm = self.station.device_model
        results = []
        changed: list[VariableKey] = []
        for item in request.set_variable_data:
            attribute_type = _v(item.attribute_type) if item.attribute_type else "Actual"  # B05.FR.12
            where = self._where(item.component, item.variable)
            outcome = dm.set_variable(*where, item.attribute_value, attribute_type)
            if outcome.status in ("Accepted", "RebootRequired"):
                changed.append(VariableKey(where[0], where[4], where[5], where[2], where[3], where[1]))
            result: dict[str, Any] = {
                "attributeStatus": outcome.status,
                "attributeType": attribute_type,
                "component": item.component.to_payload(),
                "variable": item.variable.to_payload(),
            }
            info = _status_info(outcome.reason, outcome.detail)
            if info:
                result["attributeStatusInfo"] = info
            results.append(result)

        async def after() -> None:
            if SecurityCtrlr.BasicAuthPassword in changed:
                # A01.FR.11: log the change (never the password: A01.FR.12); A01 step 3-4:
                # reconnect with the new password, keeping every queued message.
                await self.station.security_event("ReconfigurationOfSecurityParameters", "BasicAuthPassword changed")
                if self.station.device_model.get_int(SecurityCtrlr.SecurityProfile) in (1, 2):
                    await self.station.reconnect()

        return Reply(self.m.SetVariablesResponse.model_validate({"setVariableResult": results}), after if changed else None)

    def _check_network_priority(self, value: str) -> SetOutcome | None:
        """B10.FR.01/02 and A05.FR.02/03/07 for a new NetworkConfigurationPriority."""
        station = self.station
        current = station.device_model.get_int(SecurityCtrlr.SecurityProfile)
        profiles = station.network_profiles
        now = station._clock()
        if not [v for v in value.split(",") if v]:
            return SetOutcome("Rejected", "InvalidValue", "at least one configuration slot is needed")
        for item in [v for v in value.split(",") if v]:
            slot = int(item)
            profile = profiles.get(slot)
            if profile is None:
                return SetOutcome("Rejected", "InvalidValue", f"configuration slot {slot} is empty")
            if profile.security_profile < current:
                return SetOutcome("Rejected", "InvalidValue", f"slot {slot} would lower the security profile")
            if profile.security_profile in (2, 3) and not station.certificates.csms_root_pem():
                return SetOutcome("Rejected", "MissingDevModelInfo", "no CSMSRootCertificate installed")  # A05.FR.02
            if profile.security_profile == 3 and not station.certificates.charging_station_certificate_valid(now):
                return SetOutcome("Rejected", "MissingDevModelInfo", "no valid ChargingStationCertificate")  # A05.FR.03
        return SetOutcome("RebootRequired")  # B10.FR.01, A05.FR.05: used after the next reboot

    def _send_report(self, request_id: int, rows: list[dict[str, Any]]) -> None:
        """NotifyReport parts: ItemsPerMessageGetReport rows each, seqNo from 0 (B07.FR.10)."""
        per_message = max(1, self._limit(DeviceDataCtrlr.ItemsPerMessageGetReport))
        parts = [rows[i : i + per_message] for i in range(0, len(rows), per_message)] or [[]]
        generated_at = self.station._clock()
        for seq_no, part in enumerate(parts):
            payload: dict[str, Any] = {"requestId": request_id, "generatedAt": generated_at, "seqNo": seq_no}
            if part:
                payload["reportData"] = part
            if seq_no < len(parts) - 1:
                payload["tbc"] = True
            self.station.send_soon(v21.NotifyReportRequest.model_validate(payload), triggered=True)

    async def get_base_report(self, request: m.GetBaseReportRequest) -> Reply:
        base = _v(request.report_base)
        rows = self.station.device_model.report(base=base)  # B07.FR.07-09
        return Reply(
            self.m.GetBaseReportResponse.model_validate({"status": "Accepted"}),
            lambda: self._send_report(request.request_id, rows),
        )

    async def get_report(self, request: m.GetReportRequest) -> Reply:
        variables = request.component_variable or []
        if len(variables) > self._limit(DeviceDataCtrlr.ItemsPerMessageGetReport):
            raise Refuse(ErrorCode.OccurrenceConstraintViolation, "too many componentVariable entries")  # B08.FR.17
        dm = self.station.device_model
        criteria = [_v(c) for c in (request.component_criteria or [])]
        component_values: dict[tuple[Any, ...], dict[str, str | None]] = {}
        for spec in dm.specs():
            k = spec.key
            component_values.setdefault((k.component, k.component_instance, k.evse, k.connector), {})[k.variable] = (
                dm.get(k) if spec.readable else None
            )

        def criterion_ok(key: VariableKey) -> bool:
            if not criteria:
                return True
            values = component_values[(key.component, key.component_instance, key.evse, key.connector)]
            for criterion in criteria:  # B08.FR.13: any of them
                if criterion == "Problem":
                    if values.get("Problem") == "true":
                        return True
                elif values.get(criterion, "true") == "true":  # B08.FR.07-09: true or absent
                    return True
            return False

        def variable_ok(key: VariableKey) -> bool:
            if not variables:
                return True
            for cv in variables:  # B08.FR.20-25
                c = cv.component
                if c.name != key.component:
                    continue
                if c.instance is not None and c.instance != key.component_instance:
                    continue
                if c.evse is not None:
                    if key.evse != c.evse.id:
                        continue
                    if c.evse.connector_id is not None and key.connector != c.evse.connector_id:
                        continue
                if cv.variable is not None:
                    if cv.variable.name != key.variable:
                        continue
                    if cv.variable.instance is not None and cv.variable.instance != key.instance:
                        continue
                return True
            return False

        rows = dm.report(selection=lambda key: variable_ok(key) and criterion_ok(key))
        if not rows:
            return Reply(self.m.GetReportResponse.model_validate({"status": "EmptyResultSet"}))  # B08.FR.15
        return Reply(
            self.m.GetReportResponse.model_validate({"status": "Accepted"}),
            lambda: self._send_report(request.request_id, rows),
        )

    # ================================================================== network profiles (B09, A05)
    async def set_network_profile(self, request: m.SetNetworkProfileRequest) -> Reply:
        station = self.station
        slot = request.configuration_slot
        data = request.connection_data
        allowed = [v for v in (station.device_model.spec(OCPPCommCtrlr.NetworkConfigurationPriority).values_list or ()) if v != "0"]
        current = station.device_model.get_int(SecurityCtrlr.SecurityProfile)
        reason = None
        if str(slot) not in allowed:
            reason = ("InvalidValue", "slot 0 holds the local configuration; use slots " + ",".join(allowed))  # B09.FR.05
        elif data.security_profile < current:
            reason = ("InvalidValue", "lower security profile than in use")  # B09.FR.04, A00.FR.005
        elif _v(data.ocpp_transport) != "JSON" or (
            data.ocpp_version is not None and _v(data.ocpp_version) not in ("OCPP20", "OCPP201", "OCPP21")
        ):
            reason = ("UnsupportedParam", "only OCPP 2.0.1 / 2.1 over JSON")
        elif data.security_profile not in (1, 2, 3):
            reason = ("InvalidValue", "security profile must be 1, 2 or 3")
        else:
            scheme = data.ocpp_csms_url.split(":", 1)[0].lower()
            if (data.security_profile == 1) != (scheme == "ws") or scheme not in ("ws", "wss"):
                reason = ("InvalidURL", f"{scheme}:// does not fit security profile {data.security_profile}")
        if reason is not None:
            return Reply(_build(self.m.SetNetworkProfileResponse, status="Rejected", statusInfo=_status_info(*reason)))
        try:
            station.save_network_profile(NetworkProfile(slot, data.ocpp_csms_url, data.security_profile, float(data.message_timeout)))
        except Exception:  # noqa: BLE001 - B09.FR.03: storing failed
            log.exception("cannot store network profile %d", slot)
            return Reply(self.m.SetNetworkProfileResponse.model_validate({"status": "Failed"}))
        await station.security_event("ReconfigurationOfSecurityParameters", f"network profile slot {slot} set")
        return Reply(self.m.SetNetworkProfileResponse.model_validate({"status": "Accepted"}))  # B09.FR.01

    # ================================================================== reset, availability (B11, B12, G03, G04)
    async def reset(self, request: m.ResetRequest) -> Reply:
        reset_type = _v(request.type)
        if reset_type == "ImmediateAndResume":
            reset_type = "Immediate"  # 2.1: resuming transactions after a reset is not supported; a plain Immediate reset
        if request.evse_id is not None:
            # B11.FR.09 / B12.FR.09: resetting one EVSE is not supported (EVSE.AllowReset absent).
            return Reply(_build(self.m.ResetResponse, status="Rejected", statusInfo=_status_info("UnsupportedRequest")))
        busy = bool(self.station.transactions())
        scheduled = busy and reset_type == "OnIdle"  # B12.FR.01; Immediate is Accepted (B12.FR.02)

        async def after() -> None:
            await self.station.security_event("ResetOrReboot", f"{reset_type} reset requested by the CSMS")
            self.station.emit(ResetRequested(reset_type, None, scheduled))

        return Reply(self.m.ResetResponse.model_validate({"status": "Scheduled" if scheduled else "Accepted"}), after)

    async def change_availability(self, request: m.ChangeAvailabilityRequest) -> Reply:
        station = self.station
        wanted = _v(request.operational_status)
        evse = request.evse
        if evse is None:
            scope, affected = "0", [t for t in station.transactions()]  # G04.FR.01
        else:
            if evse.id not in station._evses:
                return Reply(_build(self.m.ChangeAvailabilityResponse, status="Rejected", statusInfo=_status_info("UnknownEvse")))
            if evse.connector_id is not None and evse.connector_id not in [c.id for c in station._evses[evse.id].connectors]:
                return Reply(
                    _build(self.m.ChangeAvailabilityResponse, status="Rejected", statusInfo=_status_info("UnknownConnectorId"))
                )
            scope = str(evse.id) if evse.connector_id is None else f"{evse.id}.{evse.connector_id}"
            affected = [t for t in station.transactions() if t.evse_id == evse.id]
        previous = station._availability.get(scope, "Operative")
        if previous == wanted:
            return Reply(self.m.ChangeAvailabilityResponse.model_validate({"status": "Accepted"}))  # G03.FR.03, G04.FR.04
        station.set_availability(scope, wanted)  # persisted: G03.FR.08, G04.FR.09
        scheduled = wanted == "Inoperative" and bool(affected)  # G03.FR.05, G04.FR.06
        evse_id = None if evse is None else evse.id
        connector_id = None if evse is None else evse.connector_id
        return Reply(
            self.m.ChangeAvailabilityResponse.model_validate({"status": "Scheduled" if scheduled else "Accepted"}),
            lambda: station.emit(AvailabilityChanged(evse_id, connector_id, wanted, scheduled)),
        )

    # ================================================================== remote control (F01-F03, E14)
    async def request_start_transaction(self, request: m.RequestStartTransactionRequest) -> Reply:
        station = self.station

        def rejected(reason: str, detail: str | None = None) -> Reply:
            return Reply(_build(self.m.RequestStartTransactionResponse, status="Rejected", statusInfo=_status_info(reason, detail)))

        if station.registration != "Accepted":
            return rejected("CSNotAccepted")  # B02.FR.05
        evse_id = request.evse_id
        if evse_id is None:
            # F01.FR.20: pick an operative EVSE without a transaction.
            free = [e for e in sorted(station._evses) if station.operative(e) and station.transaction_on(e) is None]
            if not free:
                return rejected("UnknownEvse", "no free EVSE")
            evse_id = free[0]
        if evse_id not in station._evses:
            return rejected("UnknownEvse")
        connectors = [c.id for c in station._evses[evse_id].connectors]
        statuses = {station.effective_status(evse_id, c) for c in connectors}
        if not station.operative(evse_id) or statuses <= {"Unavailable", "Faulted"}:
            return rejected("InvalidValue", "EVSE unavailable or faulted")  # F01.FR.23
        tx = station.transaction_on(evse_id)
        if tx is not None and tx.authorized:
            return rejected("TxInProgress")  # F01.FR.24
        profile = request.charging_profile
        if profile is not None:
            try:
                profile = station.station_profile(profile)
            except ValueError as exc:
                return rejected("InvalidProfile", str(exc))
        if profile is not None and station.device_model.get_bool(SmartChargingCtrlr.Enabled):
            if _v(profile.charging_profile_purpose) != "TxProfile" or profile.transaction_id is not None:
                return rejected("InvalidProfile")  # F01.FR.09/11
            placeholder = profile.model_copy(update={"transaction_id": "remote-start"})
            ctx = self._profile_context(extra_transactions={evse_id: "remote-start"})
            status, reason = check_profile(evse_id, placeholder, [], ctx)
            if status != "Accepted":
                return rejected(reason or "InvalidProfile")  # F01.FR.26
        payload: dict[str, Any] = {"status": "Accepted"}
        if tx is not None:
            payload["transactionId"] = tx.transaction_id  # F01.FR.13
        event = RemoteStartRequested(evse_id, request.id_token, request.remote_start_id, request.group_id_token, profile)
        return Reply(self.m.RequestStartTransactionResponse.model_validate(payload), lambda: station.emit(event))

    async def request_stop_transaction(self, request: m.RequestStopTransactionRequest) -> Reply:
        tx = next((t for t in self.station.transactions() if t.transaction_id == request.transaction_id), None)
        if tx is None:
            return Reply(
                _build(self.m.RequestStopTransactionResponse, status="Rejected", statusInfo=_status_info("TxNotFound"))
            )  # F03.FR.08
        event = RemoteStopRequested(tx.transaction_id, tx.evse_id)
        return Reply(self.m.RequestStopTransactionResponse.model_validate({"status": "Accepted"}), lambda: self.station.emit(event))

    async def get_transaction_status(self, request: m.GetTransactionStatusRequest) -> Reply:
        queued = await self.station.store.run(self.station.outbox.queued)
        events = [e for e in queued if e.action == "TransactionEvent"]
        if request.transaction_id is None:
            return Reply(self.m.GetTransactionStatusResponse.model_validate({"messagesInQueue": bool(events)}))
        mine = [e for e in events if e.payload["transactionInfo"]["transactionId"] == request.transaction_id]
        ongoing = any(t.transaction_id == request.transaction_id for t in self.station.transactions())
        return Reply(
            self.m.GetTransactionStatusResponse.model_validate({"messagesInQueue": bool(mine), "ongoingIndicator": ongoing})
        )

    # ================================================================== TriggerMessage (F06)
    async def trigger_message(self, request: m.TriggerMessageRequest) -> Reply:
        station = self.station
        what = _v(request.requested_message)
        evse = request.evse

        def answer(status: str, after: Callable[[], Any] | None = None, reason: str | None = None) -> Reply:
            return Reply(_build(self.m.TriggerMessageResponse, status=status, statusInfo=_status_info(reason)), after)

        if what == "BootNotification":
            if station.registration == "Accepted":
                return answer("Rejected")  # F06.FR.17
            return answer("Accepted", station.trigger_boot)
        if what == "Heartbeat":
            return answer("Accepted", lambda: station.send_soon(v21.HeartbeatRequest(), triggered=True))
        if what == "StatusNotification":
            if evse is None or evse.connector_id is None:
                return answer("Rejected", reason="MissingParam")  # F06.FR.12
            key = (evse.id, evse.connector_id)
            if key not in station._connector_status:
                return answer("Rejected", reason="UnknownConnectorId")

            def send_status() -> None:
                request = v21.StatusNotificationRequest.model_validate(
                    {
                        "timestamp": station._clock(),
                        "connectorStatus": station.effective_status(*key),
                        "evseId": key[0],
                        "connectorId": key[1],
                    }
                )
                station.send_soon(request, triggered=True)

            return answer("Accepted", send_status)
        if what == "TransactionEvent":
            txs = [t for t in station.transactions() if evse is None or t.evse_id == evse.id]  # F06.FR.11
            if not txs:
                return answer("Rejected", reason="TxNotFound")

            async def send_tx() -> None:
                for tx in txs:
                    meter = await self._read_meter(tx.evse_id, "Trigger")
                    await station.update_transaction(
                        tx.transaction_id, trigger_reason="Trigger", charging_state=tx.charging_state or "EVConnected",
                        meter_value=meter,
                    )  # F06.FR.07

            return answer("Accepted", send_tx)
        if what == "MeterValues":
            if station.meter_reader is None:
                return answer("NotImplemented")  # F06.FR.08
            evse_ids = [evse.id] if evse is not None else sorted(station._evses)

            async def send_meter() -> None:
                for evse_id in evse_ids:
                    meter = await self._read_meter(evse_id, "Trigger")
                    if meter:
                        await station.meter_values(evse_id, meter)  # F06.FR.06

            return answer("Accepted", send_meter)
        if what in ("SignChargingStationCertificate", "SignV2GCertificate", "SignV2G20Certificate"):
            use = {"SignChargingStationCertificate": "ChargingStationCertificate", "SignV2GCertificate": "V2GCertificate",
                   "SignV2G20Certificate": "V2G20Certificate"}[what]  # the last one only on OCPP 2.1
            if use != "ChargingStationCertificate" and not station.device_model.get_bool(ISO15118Ctrlr.V2GCertificateInstallationEnabled):
                return answer("Rejected", reason="NotEnabled")
            return answer("Accepted", lambda: station.spawn(station.request_certificate(use, triggered=True), f"SignCertificate {use}"))
        if what == "FirmwareStatusNotification":
            # F06.FR.16: no firmware task is running here, so the status is Idle.
            return answer("Accepted", lambda: station.send_soon(
                v21.FirmwareStatusNotificationRequest.model_validate({"status": "Idle"}), triggered=True))
        if what == "LogStatusNotification":
            return answer("Accepted", lambda: station.send_soon(
                v21.LogStatusNotificationRequest.model_validate({"status": "Idle"}), triggered=True))  # F06.FR.15
        return answer("NotImplemented")  # F06.FR.08: SignCombinedCertificate, PublishFirmwareStatusNotification

    async def _read_meter(self, evse_id: int, context: str) -> list[dict[str, Any]]:
        reader = self.station.meter_reader
        if reader is None:
            return []
        try:
            values = await reader(evse_id)
        except Exception:  # noqa: BLE001 - a meter problem must not break the OCPP answer
            log.exception("reading the meter of EVSE %d failed", evse_id)
            return []
        return values

    # ================================================================== smart charging (K01, K08-K10)
    def _profile_context(self, extra_transactions: dict[int, str] | None = None) -> ProfileContext:
        station = self.station
        dm = station.device_model
        transactions = {t.evse_id: t.transaction_id for t in station.transactions()}
        transactions.update(extra_transactions or {})
        return ProfileContext(
            evse_ids=frozenset(station._evses),
            transactions=transactions,
            supported_units=frozenset(dm.get_list(SmartChargingCtrlr.RateUnit)),
            max_stack_level=dm.get_int(SmartChargingCtrlr.ProfileStackLevel),
            periods_per_schedule=dm.get_int(SmartChargingCtrlr.PeriodsPerSchedule),
            max_profiles=int(dm.spec(SmartChargingCtrlr.EntriesChargingProfiles).max_limit or 100),
            phase_switching_supported=dm.get_bool(SmartChargingCtrlr.ACPhaseSwitchingSupported),
            dc_evses=frozenset(e.id for e in station._evses.values() if e.supply_phases == 0),
            iso15118_transactions=frozenset(station._iso15118_needs_sent),
            discharge_evses={e.id: e.max_discharge_power_w for e in station._evses.values() if e.max_discharge_power_w > 0},
            ev_needs=dict(station._ev_needs),
            evse_max_w={e.id: e.max_power_w for e in station._evses.values()},
            nominal_voltage={
                e.id: (station.config.line_voltage * e.supply_phases if e.supply_phases else station.config.dc_voltage)
                for e in station._evses.values()
            },
        )

    async def set_charging_profile(self, request: m.SetChargingProfileRequest) -> Reply:
        station = self.station
        if not station.device_model.get_bool(SmartChargingCtrlr.Enabled):
            return Reply(_build(self.m.SetChargingProfileResponse, status="Rejected", statusInfo=_status_info("NotEnabled")))
        try:
            profile = station.station_profile(request.charging_profile)
        except ValueError as exc:
            # A 2.0.1 CSMS put an invalid V2X value in our vendor's customData.
            return Reply(_build(self.m.SetChargingProfileResponse, status="Rejected", statusInfo=_status_info("InvalidValue", str(exc))))
        status, reason = check_profile(request.evse_id, profile, station.charging_profiles(), self._profile_context())
        if status != "Accepted":
            log.info("SetChargingProfile %s rejected: %s", profile.id, reason)
            return Reply(_build(self.m.SetChargingProfileResponse, status=status, statusInfo=_status_info(reason)))
        await station.store.run(lambda: station.store_profile(request.evse_id, profile))  # K01.FR.27
        station.track_dynamic_pull(profile)
        event = ChargingProfilesChanged((request.evse_id,), "SetChargingProfile")  # K01.FR.07

        def after() -> None:
            station.emit(event)
            station._emit_schedules((request.evse_id,), "SetChargingProfile", profile.id)

        return Reply(self.m.SetChargingProfileResponse.model_validate({"status": "Accepted"}), after)

    async def clear_charging_profile(self, request: m.ClearChargingProfileRequest) -> Reply:
        station = self.station
        installed = station.charging_profiles()
        if request.charging_profile_id is not None:
            matches = [p for p in installed if p.id == request.charging_profile_id]  # K10.FR.03
        else:
            criteria = request.charging_profile_criteria
            matches = [
                p for p in installed
                if criteria is None
                or matches_criteria(
                    p,
                    evse_id=criteria.evse_id,
                    purpose=_v(criteria.charging_profile_purpose) if criteria.charging_profile_purpose else None,
                    stack_level=criteria.stack_level,
                )
            ]  # K10.FR.04
        matches = [p for p in matches if p.purpose != "ChargingStationExternalConstraints"]  # K10.FR.08/09
        if not matches:
            return Reply(self.m.ClearChargingProfileResponse.model_validate({"status": "Unknown"}))  # K10.FR.01
        await station.store.run(lambda: station.remove_profiles(p.id for p in matches))
        evse_ids = tuple(sorted({p.evse_id for p in matches}))
        def after() -> None:
            station.emit(ChargingProfilesChanged(evse_ids, "ClearChargingProfile"))  # K10.FR.05
            station._emit_schedules(evse_ids, "ClearChargingProfile")

        return Reply(self.m.ClearChargingProfileResponse.model_validate({"status": "Accepted"}), after)

    async def get_charging_profiles(self, request: m.GetChargingProfilesRequest) -> Reply:
        criteria = request.charging_profile
        found = [
            p for p in self.station.charging_profiles()
            if matches_criteria(
                p,
                evse_id=request.evse_id,  # K09.FR.04-06
                profile_ids=criteria.charging_profile_id,
                purpose=_v(criteria.charging_profile_purpose) if criteria.charging_profile_purpose else None,
                stack_level=criteria.stack_level,
                limit_sources=[_v(s) for s in criteria.charging_limit_source or []],
            )
        ]
        if not found:
            return Reply(self.m.GetChargingProfilesResponse.model_validate({"status": "NoProfiles"}))

        def report() -> None:
            groups: dict[tuple[int, str], list[StoredProfile]] = {}
            for p in sorted(found, key=lambda p: (p.evse_id, p.id)):
                source = "EMS" if p.purpose == "ChargingStationExternalConstraints" else "CSO"
                groups.setdefault((p.evse_id, source), []).append(p)
            keys = list(groups)
            for index, (evse_id, source) in enumerate(keys):
                payload: dict[str, Any] = {
                    "requestId": request.request_id,  # K09.FR.01
                    "chargingLimitSource": source,
                    "evseId": evse_id,
                    "chargingProfile": [p.profile.to_payload() for p in groups[(evse_id, source)]],
                }
                if index < len(keys) - 1:
                    payload["tbc"] = True  # K09.FR.02
                try:
                    self.station.send_soon(v21.ReportChargingProfilesRequest.model_validate(payload), triggered=True)
                except OutgoingInvalid as exc:
                    # A 2.1-only profile (Dynamic, ...) asked for over 2.0.1: it cannot be reported there.
                    log.warning("ReportChargingProfiles for EVSE %d not sent: %s", evse_id, exc)

        return Reply(self.m.GetChargingProfilesResponse.model_validate({"status": "Accepted"}), report)

    async def get_composite_schedule(self, request: m.GetCompositeScheduleRequest) -> Reply:
        station = self.station
        unit = _v(request.charging_rate_unit) if request.charging_rate_unit else None
        if request.evse_id != 0 and request.evse_id not in station._evses:
            return Reply(_build(self.m.GetCompositeScheduleResponse, status="Rejected", statusInfo=_status_info("UnknownEvse")))  # K08.FR.05
        if unit is not None and unit not in station.device_model.get_list(SmartChargingCtrlr.RateUnit):
            return Reply(
                _build(self.m.GetCompositeScheduleResponse, status="Rejected", statusInfo=_status_info("UnsupportedRateUnit"))
            )  # K08.FR.07
        schedule = station.composite_schedule(request.evse_id, request.duration, unit)
        version = station.ocpp_version or station._protocols[0].version
        payload = to_version("GetCompositeSchedule", "Response", {"status": "Accepted", "schedule": schedule}, version)
        return Reply(self.m.GetCompositeScheduleResponse.model_validate(payload))

    # ================================================================== certificates (A02, A03, M03-M05)
    async def certificate_signed(self, request: m.CertificateSignedRequest) -> Reply:
        station = self.station
        use = _v(request.certificate_type) if request.certificate_type else "ChargingStationCertificate"
        limit = station.device_model.get_int(SecurityCtrlr.MaxCertificateChainSize)

        def rejected(reason: str) -> Reply:
            async def after() -> None:
                # A02.FR.07 / A03.FR.07
                await station.security_event("InvalidChargingStationCertificate", f"{use}: {reason}")

            return Reply(_build(self.m.CertificateSignedResponse, status="Rejected", statusInfo=_status_info(reason)), after)

        if len(request.certificate_chain) > limit:
            return rejected("TooLargeElement")  # A02.FR.16
        if use != "ChargingStationCertificate" and not station.device_model.get_bool(ISO15118Ctrlr.V2GCertificateInstallationEnabled):
            return rejected("NotEnabled")
        status, reason = await station.store.run(
            lambda: station.certificates.install_signed(use, request.certificate_chain, station._clock())
        )
        if status != "Accepted":
            return rejected(reason or "InvalidCertificate")
        station.certificate_signed(use)

        async def after() -> None:
            station.emit(CertificateInstalled(use))
            await station.security_event("ReconfigurationOfSecurityParameters", f"{use} installed")
            if use == "ChargingStationCertificate" and station.device_model.get_int(SecurityCtrlr.SecurityProfile) == 3:
                # A02.FR.08: use the new certificate by reconnecting.
                await station.reconnect()

        return Reply(self.m.CertificateSignedResponse.model_validate({"status": "Accepted"}), after)

    async def install_certificate(self, request: m.InstallCertificateRequest) -> Reply:
        station = self.station
        use = _v(request.certificate_type)
        status, reason = await station.store.run(
            lambda: station.certificates.install_root(use, request.certificate, station._clock())
        )
        after = (lambda: station.emit(CertificateInstalled(use))) if status == "Accepted" else None
        return Reply(_build(self.m.InstallCertificateResponse, status=status, statusInfo=_status_info(reason)), after)

    async def delete_certificate(self, request: m.DeleteCertificateRequest) -> Reply:
        station = self.station
        h = request.certificate_hash_data
        hash_data = CertificateHashData(_v(h.hash_algorithm), h.issuer_name_hash, h.issuer_key_hash, h.serial_number)
        status = await station.store.run(lambda: station.certificates.delete(hash_data))
        after = (lambda: station.emit(CertificateDeleted(h.serial_number))) if status == "Accepted" else None
        return Reply(self.m.DeleteCertificateResponse.model_validate({"status": status}), after)

    async def get_installed_certificate_ids(self, request: m.GetInstalledCertificateIdsRequest) -> Reply:
        types = [_v(t) for t in request.certificate_type] if request.certificate_type else None
        found = await self.station.store.run(lambda: self.station.certificates.installed(types))
        if not found:
            return Reply(self.m.GetInstalledCertificateIdsResponse.model_validate({"status": "NotFound"}))  # M03.FR.02

        def hash_dict(h: CertificateHashData) -> dict[str, Any]:
            return {
                "hashAlgorithm": h.hash_algorithm,
                "issuerNameHash": h.issuer_name_hash,
                "issuerKeyHash": h.issuer_key_hash,
                "serialNumber": h.serial_number,
            }

        chains = []
        for item in found:
            chain: dict[str, Any] = {"certificateType": item.certificate_type, "certificateHashData": hash_dict(item.hash_data)}
            if item.children:
                chain["childCertificateHashData"] = [hash_dict(c) for c in item.children]
            chains.append(chain)
        return Reply(
            self.m.GetInstalledCertificateIdsResponse.model_validate({"status": "Accepted", "certificateHashDataChain": chains})
        )  # M03.FR.03/04

    # ================================================================== V2X (OCPP 2.1)
    async def update_dynamic_schedule(self, request: Any) -> Reply:
        """2.1 UpdateDynamicSchedule: new limit / dischargeLimit / setpoint for a Dynamic
        profile, applied at once and sent to the service as ``DynamicScheduleUpdated``."""
        station = self.station
        update = request.schedule_update.to_payload()
        status, reason = await station.apply_schedule_update(request.charging_profile_id, update, "UpdateDynamicSchedule")
        if status != "Accepted":
            log.info("UpdateDynamicSchedule for profile %d rejected: %s", request.charging_profile_id, reason)
        return Reply(_build(self.m.UpdateDynamicScheduleResponse, status=status, statusInfo=_status_info(reason)))

    async def notify_allowed_energy_transfer(self, request: Any) -> Reply:
        """2.1 NotifyAllowedEnergyTransfer: which energy transfer modes the CSMS allows for a
        transaction (after the EV's needs); the service limits the SECC's offer to them."""
        station = self.station
        tx = next((t for t in station.transactions() if t.transaction_id == request.transaction_id), None)
        if tx is None:
            return Reply(_build(self.m.NotifyAllowedEnergyTransferResponse, status="Rejected", statusInfo=_status_info("TxNotFound")))
        allowed = tuple(_v(m_) for m_ in request.allowed_energy_transfer)
        station._allowed_energy_transfer[tx.transaction_id] = allowed
        event = AllowedEnergyTransferChanged(tx.transaction_id, tx.evse_id, allowed)
        return Reply(self.m.NotifyAllowedEnergyTransferResponse.model_validate({"status": "Accepted"}), lambda: station.emit(event))

    # ================================================================== DataTransfer (P01)
    async def data_transfer(self, request: m.DataTransferRequest) -> Reply:
        # P01: no vendor extensions are implemented, so every vendorId is unknown.
        return Reply(self.m.DataTransferResponse.model_validate({"status": "UnknownVendorId"}))
