"""The OCPP port: the SECC's authorization, certificate, schedule and transaction effects
through the charging station (``pnc_bridge.ocpp.ChargingStation``).

Rules of this module:

- Authorization (C07). Plug & Charge: ``Authorize`` with idToken ``eMAID`` and the OCSP
  hash data of the contract chain (``iso15118CertificateHashData``, C07.FR.02 as libocpp
  quotes it), plus the chain itself (``certificate``) when ISO15118Ctrlr.
  CentralContractValidationAllowed and the chain's root is not in the trust store or local
  validation is off (C07.FR.06). A chain the local validation refused is not sent at all.
  When the CSMS cannot be reached (``Offline``/``NotAccepted``) ContractValidationOffline
  decides: a locally valid contract is accepted, anything else refused (C07.FR.07/08 as
  libocpp quotes them). A CSMS that does not answer (``Timeout``) or answers with a
  CALLERROR is a failed effect: the EV gets FAILED. EIM: AuthCtrlr.Enabled false is free
  charging; otherwise a RequestStartTransaction for the EVSE (waiting, or arriving while the
  EV asks) authorizes it, checked with Authorize when AuthCtrlr.AuthorizeRemoteStart.
- Certificates (M01/M02): the EV's own EXI goes to Get15118EVCertificate untouched (base64,
  at most the schema's 5600 characters); the CSMS's exiResponse comes back untouched.
- Schedules (K15): NotifyEVChargingNeeds at ChargeParameterDiscovery, then the bridge waits
  (``BRIDGE_SCHEDULE_WAIT``) for the CSMS's SetChargingProfile and offers what the
  installed profiles allow (``_schedules.offered_schedules``); offline or refused: the
  station's own limits at once. The EV's chosen profile goes out as NotifyEVChargingSchedule.
  A new profile during the charge loop makes the SECC renegotiate; the schedule then comes
  from the profiles already installed.
- Transactions: the session's milestones feed the EVSE's :class:`TransactionTracker`
  (TxStartPoint / TxStopPoint); its actions become TransactionEvents with meter values
  (Transaction.Begin / Sample.Periodic every SampledDataCtrlr.TxUpdatedInterval /
  Transaction.End), applied one after the other per EVSE. They go through the station's
  durable outbox: nothing is lost when the CSMS is down. A bidirectional EVSE's events carry
  both energy registers and, periodically, the schedule's OCPP 2.1 ``operationMode``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge import timing
from pnc_bridge.bridge._pki import ContractPolicy, PkiPort
from pnc_bridge.bridge._schedules import charge_only, ev_charging_schedule, horizon, ocpp_needs, offered_schedules
from pnc_bridge.bridge._transactions import TxAction, TxEnd, TxStart, TxUpdate
from pnc_bridge.ocpp import CallFailed, OutgoingInvalid, bidirectional_meter_value
from pnc_bridge.ocpp._variables import AuthCtrlr, SampledDataCtrlr
from pnc_bridge.pki import Failure, certificate_hash_data
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    AuthorizeExternalPaymentResult,
    AuthorizeWithCsms,
    AuthorizeWithCsmsResult,
    EffectFailed,
    GetChargingSchedule,
    GetChargingScheduleResult,
    ReportChargingState,
    ReportEvChargingSchedule,
    ReportEvStatus,
    RequestEvCertificate,
    RequestEvCertificateResult,
    StartTransaction,
    StopTransaction,
)

__all__ = ["OcppPort"]

log = logging.getLogger("pnc_bridge.bridge")

#: Get15118EVCertificateRequest.exiRequest maxLength (OCPP 2.0.1 schema).
EXI_REQUEST_MAX = 5600
#: AuthorizeRequest.iso15118CertificateHashData maxItems.
HASH_DATA_MAX = 4


def _v(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class OcppPort:
    """Fulfils the SECC's OCPP effects for every EVSE of one station."""

    def __init__(self, station: Any, pki: PkiPort, policy: Callable[[], ContractPolicy], *,
                 clock: Callable[[], dt.datetime] = _utc_now, schedule_wait: float = timing.BRIDGE_SCHEDULE_WAIT,
                 v2x_offline_grace: float = timing.BRIDGE_V2X_OFFLINE_GRACE) -> None:
        self.station = station
        self.pki = pki
        self.policy = policy
        self._clock = clock
        self.schedule_wait = schedule_wait
        self.v2x_offline_grace = v2x_offline_grace
        self.background: set[asyncio.Task] = set()

    # ================================================================== authorization
    async def authorize_with_csms(self, effect: AuthorizeWithCsms, ctx) -> AuthorizeWithCsmsResult | EffectFailed:
        # Started together with ValidateContractChain at PaymentDetailsReq: let the session send
        # its PaymentDetailsRes before this builds and checks the Authorize request.
        await asyncio.sleep(0)
        policy = self.policy()
        token = {"idToken": effect.emaid, "type": "eMAID"}
        ctx.token = token
        chain = effect.contract_chain
        where = f"EVSE {ctx.evse_id}: Authorize {effect.emaid}"
        verdict = self.pki.verdict(chain[0], tuple(chain[1:]), effect.emaid) if chain else None
        unknown_root = verdict is not None and verdict.failure is Failure.UNKNOWN_ROOT
        if policy.local_validation and verdict is not None and not verdict.valid and not (
            unknown_root and policy.central_validation_allowed
        ):
            log.info("%s not sent: the contract was refused locally (%s)", where, verdict.reason)
            ctx.tracker.authorization_refused()
            return AuthorizeWithCsmsResult(effect.id, status="Invalid")
        hash_data = self._hash_data(verdict, chain)
        send_chain = policy.central_validation_allowed and (unknown_root or not policy.local_validation)
        certificate = self._pem(chain) if send_chain and chain else None
        try:
            response = await self.station.authorize(token, certificate=certificate,
                                                    iso15118_certificate_hash_data=hash_data or None)
        except CallFailed as exc:
            if exc.reason not in ("Offline", "NotAccepted"):
                log.warning("%s failed: %s", where, exc)
                ctx.tracker.authorization_refused()
                return EffectFailed(effect.id, str(exc))
            return self._offline(effect, ctx, verdict, policy, where)
        except (OutgoingInvalid, ValueError) as exc:
            log.error("%s cannot be sent: %s", where, exc)
            ctx.tracker.authorization_refused()
            return EffectFailed(effect.id, str(exc))
        status = _v(response.id_token_info.status)
        certificate_status = _v(response.certificate_status) if response.certificate_status is not None else None
        log.info("%s: %s (certificate %s)%s", where, status, certificate_status or "-",
                 " with the chain (central validation)" if certificate else "")
        if status != "Accepted" or certificate_status not in (None, "Accepted"):
            ctx.tracker.authorization_refused()
        return AuthorizeWithCsmsResult(effect.id, status=status, certificate_status=certificate_status)

    def _offline(self, effect, ctx, verdict, policy: ContractPolicy, where: str) -> AuthorizeWithCsmsResult:
        if policy.validation_offline and verdict is not None and verdict.valid:
            # C07.FR.08 (as libocpp quotes it): offline, the contract is validated locally
            log.warning("%s: CSMS unreachable; ContractValidationOffline: accepted on the local validation", where)
            return AuthorizeWithCsmsResult(effect.id, status="Accepted", certificate_status="Accepted")
        # C07.FR.07 (as libocpp quotes it): no charging without a decision
        why = "ContractValidationOffline is false" if not policy.validation_offline else "no locally valid contract"
        log.warning("%s: CSMS unreachable and %s: refused", where, why)
        ctx.tracker.authorization_refused()
        return AuthorizeWithCsmsResult(effect.id, status="NotAtThisTime")

    @staticmethod
    def _hash_data(verdict, chain: tuple[bytes, ...]) -> list[dict[str, str]]:
        """OCSPRequestDataType of every certificate whose issuer is known (the validated path
        without its root, else the presented certificates issued by the next one). Only
        certificates with an OCSP responder can be listed: the field is required."""
        if verdict is not None and verdict.valid:
            path = list(verdict.chain)
        else:
            try:
                path = [x509.load_der_x509_certificate(c) for c in chain]
            except ValueError:
                return []
        out = []
        for cert, issuer in zip(path, path[1:]):
            try:
                data = certificate_hash_data(cert, issuer)
            except ValueError:
                break  # the presented chain is out of order: nothing further is identifiable
            if data.responder_url:
                out.append(data.as_ocpp())
        return out[:HASH_DATA_MAX]

    @staticmethod
    def _pem(chain: tuple[bytes, ...]) -> str | None:
        try:
            return "".join(x509.load_der_x509_certificate(c).public_bytes(Encoding.PEM).decode() for c in chain)
        except ValueError:
            return None

    async def authorize_external_payment(self, effect: AuthorizeExternalPayment, ctx) -> AuthorizeExternalPaymentResult:
        dm = self.station.device_model
        if not dm.get_bool(AuthCtrlr.Enabled):
            log.info("EVSE %d: EIM: AuthCtrlr.Enabled is false, free charging", ctx.evse_id)
            ctx.token = {"idToken": "", "type": "NoAuthorization"}
            return AuthorizeExternalPaymentResult(effect.id, accepted=True)
        log.info("EVSE %d: EIM: waiting for a remote start (RequestStartTransaction)", ctx.evse_id)
        remote = await ctx.wait_for(lambda: ctx.remote_start, None)
        ctx.remote_start = None
        if dm.get_bool(AuthCtrlr.AuthorizeRemoteStart):
            try:
                response = await self.station.authorize(remote.id_token)
            except CallFailed as exc:
                log.warning("EVSE %d: remote start token not authorized: %s", ctx.evse_id, exc)
                ctx.tracker.authorization_refused()
                return AuthorizeExternalPaymentResult(effect.id, accepted=False, reason=str(exc))
            if _v(response.id_token_info.status) != "Accepted":
                ctx.tracker.authorization_refused()
                return AuthorizeExternalPaymentResult(effect.id, accepted=False,
                                                      reason=f"remote start token {_v(response.id_token_info.status)}")
        ctx.token = dict(remote.id_token)
        ctx.remote_start_id = remote.remote_start_id
        log.info("EVSE %d: EIM: authorized by remote start %d", ctx.evse_id, remote.remote_start_id)
        return AuthorizeExternalPaymentResult(effect.id, accepted=True)

    # ================================================================== certificates
    async def request_ev_certificate(self, effect: RequestEvCertificate, ctx) -> RequestEvCertificateResult | EffectFailed:
        action = _v(effect.action)
        exi_request = base64.b64encode(effect.exi_request).decode("ascii")
        if len(exi_request) > EXI_REQUEST_MAX:
            reason = f"the EV's request is {len(exi_request)} base64 characters; exiRequest allows {EXI_REQUEST_MAX}"
            log.warning("EVSE %d: Get15118EVCertificate %s not sent: %s", ctx.evse_id, action, reason)
            return RequestEvCertificateResult(effect.id, False, b"", reason)
        try:
            response = await self.station.get_15118_ev_certificate(
                iso15118_schema_version=effect.schema_version, action=action, exi_request=exi_request,
                timeout=timing.BRIDGE_EV_CERTIFICATE_TIMEOUT,
            )
        except CallFailed as exc:
            log.warning("EVSE %d: Get15118EVCertificate %s failed: %s", ctx.evse_id, action, exc)
            return EffectFailed(effect.id, str(exc))
        except OutgoingInvalid as exc:
            log.warning("EVSE %d: Get15118EVCertificate %s not sent: %s", ctx.evse_id, action, exc)
            return RequestEvCertificateResult(effect.id, False, b"", str(exc))
        status = _v(response.status)
        if status != "Accepted":
            info = response.status_info.reason_code if response.status_info is not None else ""
            log.warning("EVSE %d: Get15118EVCertificate %s: %s %s", ctx.evse_id, action, status, info)
            return RequestEvCertificateResult(effect.id, False, b"", f"CSMS: {status} {info}".strip())
        try:
            exi_response = base64.b64decode(response.exi_response, validate=True)
        except (binascii.Error, ValueError):
            log.warning("EVSE %d: Get15118EVCertificate: exiResponse is not base64", ctx.evse_id)
            return RequestEvCertificateResult(effect.id, False, b"", "exiResponse is not base64")
        log.info("EVSE %d: Get15118EVCertificate %s: Accepted (%d bytes of EXI)", ctx.evse_id, action, len(exi_response))
        return RequestEvCertificateResult(effect.id, True, exi_response)

    # ================================================================== schedules
    def offline_fallback(self) -> bool:
        """The CSMS has been unreachable for longer than the V2X grace time: charge only."""
        offline = self.station.offline_for()
        return offline is not None and offline >= self.v2x_offline_grace

    def schedules_now(self, ctx, needs) -> tuple:
        """The schedules the EV is offered now: the installed profiles (the last valid
        schedule while the CSMS is away), charge-only once the V2X grace time has passed."""
        schedules = self._schedules_now(ctx, needs)
        if self.offline_fallback() and any(p.discharge_magnitude or (p.setpoint or 0) < 0
                                           for s in schedules for p in s.periods):
            log.warning("EVSE %d: CSMS unreachable for %.0f s: charge-only limits (no discharge)", ctx.evse_id,
                        self.station.offline_for() or 0)
            return charge_only(schedules)
        return schedules

    def _schedules_now(self, ctx, needs) -> tuple:
        station = self.station
        tx = station.transaction_on(ctx.evse_id)
        started = dt.datetime.fromisoformat(tx.started.replace("Z", "+00:00")) if tx is not None else None
        section = ctx.section
        voltage = station.config.line_voltage if section.supply_phases else station.config.dc_voltage
        if started is not None:
            # the composite schedule works in whole seconds from its (floored) start: a relative
            # TxProfile's origin in the same second must not look later than the start, or a
            # period of the EVSE's maximum would come first
            started = started.replace(microsecond=0)
        return offered_schedules(
            station.charging_profiles(), evse_id=ctx.evse_id, now=self._clock(), duration=horizon(needs),
            transaction_id=tx.transaction_id if tx is not None else None, transaction_start=started,
            evse_max_w=section.max_power_w, supply_phases=section.supply_phases, voltage=voltage,
            # ISO 15118-20: the EV's limits both ways bound the offer (-2 and DIN keep the
            # CSMS's periods as they are; their EV applies its own maximum)
            evse_max_discharge_w=section.max_discharge_power_w,
            ev=station.ev_needs(ctx.evse_id) if needs is not None and needs.v2x is not None else None,
            offline_for=station.offline_for(),
        )

    async def get_charging_schedule(self, effect: GetChargingSchedule, ctx) -> GetChargingScheduleResult:
        needs = effect.needs
        if effect.renegotiation and ctx.renegotiation_requested:
            ctx.renegotiation_requested = False
            schedules = self.schedules_now(ctx, needs)
            log.info("EVSE %d: renegotiation with the CSMS's new profile: %s", ctx.evse_id, _describe(schedules))
            return GetChargingScheduleResult(effect.id, schedules)
        async with ctx.in_order():
            pass  # the transaction the session's StartTransaction opens is there before the needs go out
        generation = ctx.profile_generation
        status = "not sent"
        if needs is not None:
            try:
                response = await self.station.notify_ev_charging_needs(ctx.evse_id, ocpp_needs(needs))
                status = _v(response.status)
            except CallFailed as exc:
                status = f"failed ({exc.reason})"
            except OutgoingInvalid as exc:
                log.error("EVSE %d: NotifyEVChargingNeeds not sent: %s", ctx.evse_id, exc)
        if status in ("Accepted", "Processing"):
            changed = await ctx.wait_for(lambda: ctx.profile_generation > generation, self.schedule_wait)
            if not changed:
                log.warning("EVSE %d: NotifyEVChargingNeeds %s but no charging profile within %.0f s; "
                            "offering the installed limits", ctx.evse_id, status, self.schedule_wait)
        schedules = self.schedules_now(ctx, needs)
        log.info("EVSE %d: NotifyEVChargingNeeds %s; offering %s", ctx.evse_id, status, _describe(schedules))
        return GetChargingScheduleResult(effect.id, schedules)

    async def _report_ev_charging_schedule(self, effect: ReportEvChargingSchedule, ctx) -> None:
        schedule = ev_charging_schedule(effect)
        if schedule is None:
            return  # the EV sent no charging profile
        async with ctx.in_order():
            try:
                await self.station.notify_ev_charging_schedule(ctx.evse_id, self._clock(), schedule)
            except OutgoingInvalid as exc:
                log.error("EVSE %d: NotifyEVChargingSchedule not queued: %s", ctx.evse_id, exc)

    # ================================================================== transactions
    def _keep(self, coro: Any) -> Any:
        """Run ``coro`` to completion even if the session that caused it is cancelled: an
        adapter cancels what is pending when its session closes, but a TransactionEvent on
        its way to the outbox must not be lost. Tasks start in call order, and each takes the
        EVSE's FIFO lock first, so the order of the session's effects is kept."""
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return asyncio.shield(task)

    async def report_ev_charging_schedule(self, effect: ReportEvChargingSchedule, ctx) -> None:
        await self._keep(self._report_ev_charging_schedule(effect, ctx))

    async def start_transaction(self, effect: StartTransaction, ctx) -> None:
        await self._keep(self._start_transaction(effect, ctx))

    async def stop_transaction(self, effect: StopTransaction, ctx) -> None:
        await self._keep(self._stop_transaction(effect, ctx))

    async def report_charging_state(self, effect: ReportChargingState, ctx) -> None:
        await self._keep(self._report_charging_state(effect, ctx))

    async def ev_connected(self, ctx) -> None:
        await self._keep(self._ev_connected(ctx))

    async def ev_left(self, ctx) -> None:
        await self._keep(self._ev_left(ctx))

    async def end_authorization(self, ctx, cause: str) -> None:
        """The CSMS ended the authorization (remote stop, deauthorized): its cause wins."""
        await self._keep(self._end_authorization(ctx, cause))

    async def drain(self, timeout: float) -> None:
        """Wait for the TransactionEvents still being made (service shutdown)."""
        if self.background:
            await asyncio.wait(set(self.background), timeout=timeout)

    async def _start_transaction(self, effect: StartTransaction, ctx) -> None:
        async with ctx.in_order():
            token = ctx.token
            if token is None:
                token = ({"idToken": effect.emaid, "type": "eMAID"} if effect.emaid
                         else {"idToken": "", "type": "NoAuthorization"})
                ctx.token = token
            actions = ctx.tracker.authorized_by(token, remote_start_id=ctx.remote_start_id)
            await self.apply(ctx, actions)
            if "DataSigned" in ctx.points.start and not ctx.tracker.signed:
                reading = await ctx.driver.read_meter(signed=True)
                if reading.signed is not None:
                    await self.apply(ctx, ctx.tracker.data_signed())

    async def _stop_transaction(self, effect: StopTransaction, ctx) -> None:
        async with ctx.in_order():
            cause = ctx.stop_cause or _v(effect.reason)
            log.info("EVSE %d: session %s ended (%s): %s", ctx.evse_id, effect.session_id, cause, effect.detail)
            if ctx.tracker.authorized:
                await self.apply(ctx, ctx.tracker.authorization_ended(cause))

    async def _report_charging_state(self, effect: ReportChargingState, ctx) -> None:
        async with ctx.in_order():
            await self.apply(ctx, ctx.tracker.charging(_v(effect.state)))

    async def report_ev_status(self, effect: ReportEvStatus, ctx) -> None:
        if effect.soc is not None:
            ctx.soc = effect.soc

    async def _ev_connected(self, ctx) -> None:
        async with ctx.in_order():
            await self.apply(ctx, ctx.tracker.ev_connected())

    async def _ev_left(self, ctx) -> None:
        async with ctx.in_order():
            await self.apply(ctx, ctx.tracker.ev_disconnected(departed=ctx.departed))
            ctx.session_ended()

    async def _end_authorization(self, ctx, cause: str) -> None:
        async with ctx.in_order():
            ctx.stop_cause = cause
            if ctx.tracker.authorized:
                await self.apply(ctx, ctx.tracker.authorization_ended(cause))

    async def apply(self, ctx, actions: list[TxAction]) -> None:
        """Send the tracker's TransactionEvents (call inside ``ctx.in_order()``)."""
        station = self.station
        for action in actions:
            try:
                if isinstance(action, TxStart):
                    meter = await self.meter_values(ctx, "Transaction.Begin")
                    ctx.transaction_id = await station.start_transaction(
                        ctx.evse_id, ctx.connector_id, trigger_reason=action.trigger_reason, id_token=action.id_token,
                        charging_state=action.charging_state, remote_start_id=action.remote_start_id, meter_value=meter,
                    )
                    log.info("EVSE %d: transaction %s started (%s)", ctx.evse_id, ctx.transaction_id, action.trigger_reason)
                    self._start_meter_task(ctx)
                elif isinstance(action, TxUpdate) and ctx.transaction_id is not None:
                    await station.update_transaction(
                        ctx.transaction_id, trigger_reason=action.trigger_reason, charging_state=action.charging_state,
                        id_token=action.id_token, remote_start_id=action.remote_start_id,
                    )
                elif isinstance(action, TxEnd) and ctx.transaction_id is not None:
                    self._stop_meter_task(ctx)
                    meter = await self.meter_values(ctx, "Transaction.End")
                    await station.end_transaction(
                        ctx.transaction_id, trigger_reason=action.trigger_reason, stopped_reason=action.stopped_reason,
                        charging_state=action.charging_state, meter_value=meter,
                    )
                    log.info("EVSE %d: transaction %s ended (%s, %s)", ctx.evse_id, ctx.transaction_id,
                             action.trigger_reason, action.stopped_reason)
                    ctx.transaction_id = None
            except (OutgoingInvalid, ValueError) as exc:
                log.error("EVSE %d: TransactionEvent %s not queued: %s", ctx.evse_id, type(action).__name__, exc)

    def _start_meter_task(self, ctx) -> None:
        self._stop_meter_task(ctx)
        ctx.meter_task = asyncio.create_task(self._periodic_meter(ctx), name=f"meter-values-{ctx.evse_id}")

    @staticmethod
    def _stop_meter_task(ctx) -> None:
        task, ctx.meter_task = ctx.meter_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _periodic_meter(self, ctx) -> None:
        """TransactionEvent(Updated, MeterValuePeriodic) every SampledDataCtrlr.TxUpdatedInterval s."""
        while True:
            interval = self.station.device_model.get_int(SampledDataCtrlr.TxUpdatedInterval)
            await asyncio.sleep(interval if interval > 0 else 60)
            if interval <= 0:
                continue
            async with ctx.in_order():
                if ctx.transaction_id is None:
                    return
                meter = await self.meter_values(ctx, "Sample.Periodic")
                try:
                    await self.station.update_transaction(ctx.transaction_id, trigger_reason="MeterValuePeriodic",
                                                          meter_value=meter, operation_mode=self.operation_mode(ctx))
                except (OutgoingInvalid, ValueError) as exc:
                    log.error("EVSE %d: periodic meter values not queued: %s", ctx.evse_id, exc)

    def operation_mode(self, ctx) -> str | None:
        """OCPP 2.1 ``transactionInfo.operationMode`` of a bidirectional EVSE's transaction: the
        mode of the CSMS's schedule period in force (CentralSetpoint, ChargingOnly, Idle, ...;
        on 2.0.1 it goes into customData), None when the schedule names none."""
        if not ctx.section.max_discharge_power_w:
            return None
        try:
            mode = self.station.charging_schedule(ctx.evse_id).periods[0].operation_mode
        except Exception as exc:  # noqa: BLE001 - a schedule problem must not lose the meter values
            log.error("EVSE %d: composite schedule failed: %s", ctx.evse_id, exc)
            return None
        return mode.value if mode is not None else None

    async def meter_values(self, ctx, context: str = "Sample.Periodic") -> list[dict[str, Any]]:
        """MeterValueType list: energy register (signed when SampledDataCtrlr.SignReadings and
        the meter can), power and, when the EV told it, its state of charge."""
        signed = self.station.device_model.get_bool(SampledDataCtrlr.SignReadings)
        try:
            reading = await ctx.driver.read_meter(signed=signed)
        except Exception as exc:  # noqa: BLE001 - a meter fault must not lose the TransactionEvent
            log.error("EVSE %d: meter read failed: %s", ctx.evse_id, exc)
            return []
        signed_value = None
        if reading.signed is not None:
            signed_value = {
                "signedMeterData": reading.signed.signed_meter_data,
                "signingMethod": reading.signed.signing_method,
                "encodingMethod": reading.signed.encoding_method,
                "publicKey": reading.signed.public_key,
            }
        if ctx.section.max_discharge_power_w > 0:
            # a bidirectional EVSE: both registers (import into the EV, export out of it) and
            # the power split by direction, in every TransactionEvent and MeterValues
            sampled = bidirectional_meter_value(
                timestamp=reading.timestamp, energy_import_wh=reading.energy_import_wh,
                energy_export_wh=reading.energy_export_wh, power_w=reading.power_w, context=context,
                signed=signed_value)["sampledValue"]
        else:
            energy: dict[str, Any] = {"value": round(reading.energy_import_wh, 1), "context": context,
                                      "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
            if signed_value is not None:
                energy["signedMeterValue"] = signed_value
            sampled = [energy, {"value": round(reading.power_w, 1), "context": context,
                                "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}}]
        if ctx.soc is not None:
            sampled.append({"value": float(ctx.soc), "context": context, "measurand": "SoC", "location": "EV",
                            "unitOfMeasure": {"unit": "Percent"}})
        return [{"timestamp": reading.timestamp, "sampledValue": sampled}]


def _describe(schedules: tuple) -> str:
    parts = []
    for s in schedules:
        limits = ", ".join(f"{p.start}s:{p.limit:g}{s.unit.value}"
                           + (f"/-{p.discharge_magnitude:g}" if p.limit >= 0 and p.discharge_magnitude else "")
                           + (f" sp {p.setpoint:g}" if p.setpoint is not None else "") for p in s.periods[:6])
        more = f" (+{len(s.periods) - 6})" if len(s.periods) > 6 else ""
        parts.append(f"#{s.id} [{limits}{more}]" + (" +tariff" if s.tariff else ""))
    return "; ".join(parts) or "no schedule"
