"""The pnc-bridge service: one process that runs the OCPP client, the EVSE drivers and
(later) the SECC, wired together.

Rules of this module:

- ``Service`` owns the store, the certificate store, the drivers and the station for one
  run; ``run_service`` restarts it in-process after an OCPP Reset (B11/B12) and ends it
  cleanly on SIGTERM/SIGINT.
- The service reacts to station events (remote start/stop, reset, new charging limits)
  and feeds the station what the hardware reports (connector status, meter values).
- Without a hardware driver the EVSE simulator runs; with ``[simulator] sessions`` it
  also plays EV sessions, which is how the fault tests produce TransactionEvents.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from pnc_bridge.config import ConfigError, ServiceConfig
from pnc_bridge.evse import EvseLimits, EvseSimulator
from pnc_bridge.ocpp import (
    CallFailed,
    ChargingStation,
    ChargingStationInfo,
    ConnectorLayout,
    EvseLayout,
    FileCertificateStore,
    NetworkProfile,
    StationConfig,
    StationSettings,
    Store,
    StoreError,
    events,
)
from pnc_bridge.ocpp._variables import AuthCtrlr, SampledDataCtrlr, standard_variables

__all__ = ["Service", "run_service", "station_config"]

log = logging.getLogger("pnc_bridge.bridge")


def station_config(config: ServiceConfig, *, boot_reason: str = "PowerUp") -> StationConfig:
    """The OCPP client's configuration from the service configuration."""
    evses = tuple(
        EvseLayout(
            e.id,
            tuple(ConnectorLayout(c.id, c.type) for c in e.connectors),
            e.max_power_w,
            e.supply_phases,
            e.iso15118_evse_id,
        )
        for e in config.evse
    )
    iso = config.iso15118
    settings = StationSettings(
        identity=config.station.identity,
        vendor_name=config.station.vendor,
        model=config.station.model,
        security_profile=config.csms.security_profile,
        basic_auth_password=config.password(),
        organization_name=config.station.organization_name,
        evses=evses,
        message_timeout=config.csms.message_timeout,
        iso15118_secc_id=iso.secc_id,
        iso15118_country_name=iso.country_name,
        iso15118_organization_name=iso.organization_name,
        pnc_enabled=iso.pnc_enabled,
        central_contract_validation_allowed=iso.central_contract_validation_allowed,
        contract_validation_offline=iso.contract_validation_offline,
        v2g_certificate_installation_enabled=iso.v2g_certificate_installation_enabled,
        contract_certificate_installation_enabled=iso.contract_certificate_installation_enabled,
        items_per_message=config.limits.items_per_message,
        bytes_per_message=config.limits.bytes_per_message,
        overrides=dict(config.device_model),
    )
    known = {spec.key.id for spec in standard_variables(settings)}
    unknown = sorted(set(config.device_model) - known)
    if unknown:
        raise ConfigError(f"{config.source}: [device_model] has unknown variables: {', '.join(unknown)}")
    return StationConfig(
        identity=config.station.identity,
        network=NetworkProfile(0, config.csms.url, config.csms.security_profile, config.csms.message_timeout),
        info=ChargingStationInfo(
            config.station.vendor, config.station.model, config.station.serial_number, config.station.firmware_version
        ),
        settings=settings,
        subprotocols=tuple(config.csms.subprotocols),
        max_message_bytes=config.limits.max_message_bytes,
        boot_reason=boot_reason,
    )


class Service:
    """One run of the service; ``await run()`` returns "stopped" or "reset"."""

    def __init__(self, config: ServiceConfig, *, boot_reason: str = "PowerUp") -> None:
        self.config = config
        self.boot_reason = boot_reason
        self.station: ChargingStation | None = None
        self.drivers: dict[int, EvseSimulator] = {}
        self._tasks: set[asyncio.Task] = set()
        self._reset = asyncio.Event()
        self._reset_pending = False
        self._sessions: dict[int, asyncio.Task] = {}

    async def run(self, stop: asyncio.Event) -> str:
        cfg = self.config
        station_cfg = station_config(cfg, boot_reason=self.boot_reason)
        try:
            store = Store(cfg.paths.data_dir / "ocpp.sqlite")
        except StoreError as exc:
            raise ConfigError(str(exc)) from exc
        try:
            certificates = FileCertificateStore(cfg.paths.trust_store)
            for evse in cfg.evse:
                self.drivers[evse.id] = EvseSimulator(
                    evse.id,
                    limits=EvseLimits(evse.max_current_a, evse.max_power_w, evse.max_voltage_v),
                    ac=evse.supply_phases > 0,
                )
            station = ChargingStation(station_cfg, store=store, certificates=certificates, meter_reader=self._meter_values)
            self.station = station
            queue = station.subscribe()
            await station.start()
            log.info("station %s started (%s, security profile %d); EVSE driver: %s",
                     cfg.station.identity, cfg.csms.url, cfg.csms.security_profile, cfg.driver.kind)
            self._spawn(self._events(queue), "events")
            if cfg.simulator.sessions != 0:
                for evse_id in self.drivers:
                    self._start_session(evse_id, remote=None)
            stop_wait = asyncio.create_task(stop.wait())
            reset_wait = asyncio.create_task(self._reset.wait())
            await asyncio.wait({stop_wait, reset_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            reset_wait.cancel()
            outcome = "reset" if self._reset.is_set() else "stopped"
            await self._shutdown(outcome)
            return outcome
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.station is not None:
                await self.station.stop()
            store.close()

    async def _shutdown(self, outcome: str) -> None:
        station = self.station
        assert station is not None
        for task in list(self._sessions.values()):
            task.cancel()
        await asyncio.gather(*self._sessions.values(), return_exceptions=True)
        # The power stage stops with the service: end what is still open, so the CSMS
        # gets an Ended event with the right reason instead of a PowerLoss on restart.
        for tx in station.transactions():
            trigger, reason = ("ResetCommand", "ImmediateReset") if outcome == "reset" else ("AbnormalCondition", "Reboot")
            meter = await self._meter_values(tx.evse_id, "Transaction.End")
            await station.end_transaction(tx.transaction_id, trigger_reason=trigger, stopped_reason=reason, meter_value=meter)
        # Give the CSMS a moment to receive the last events; they stay queued otherwise.
        if station.online:
            await self._drain(timeout=3.0)
        log.info("service %s", "resetting" if outcome == "reset" else "stopped")

    async def _drain(self, timeout: float) -> None:
        station = self.station
        assert station is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end and station.online:
            if await station.store.run(station.outbox.pending) == 0:
                return
            await asyncio.sleep(0.05)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    # ------------------------------------------------------------------ events from the station
    async def _events(self, queue: asyncio.Queue) -> None:
        station = self.station
        assert station is not None
        while True:
            event = await queue.get()
            try:
                await self._on_event(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the service
                log.exception("handling %r failed", event)

    async def _on_event(self, event: Any) -> None:
        station = self.station
        assert station is not None
        if isinstance(event, events.ConnectionChanged):
            log.info("CSMS %s", "connected" if event.online else f"connection lost{f' ({event.reason})' if event.reason else ''}")
        elif isinstance(event, events.RegistrationChanged):
            log.info("registration %s (heartbeat interval %d s)", event.status, event.interval)
        elif isinstance(event, events.ResetRequested):
            if event.scheduled:
                log.info("reset scheduled: waiting for the transactions to end")
                self._reset_pending = True
            else:
                self._reset.set()
        elif isinstance(event, events.RemoteStartRequested):
            self._start_session(event.evse_id, remote=event)
        elif isinstance(event, events.RemoteStopRequested):
            tx = next((t for t in station.transactions() if t.transaction_id == event.transaction_id), None)
            if tx is not None:
                meter = await self._meter_values(tx.evse_id, "Transaction.End")
                await station.end_transaction(tx.transaction_id, trigger_reason="RemoteStop", stopped_reason="Remote",
                                              meter_value=meter)  # F03.FR.03
                self._stop_session(tx.evse_id)
        elif isinstance(event, events.ChargingProfilesChanged):
            await self._apply_limits(event.evse_ids)
        elif isinstance(event, events.TransactionAuthorizationChanged):
            if event.status != "Accepted":
                log.warning("transaction %s deauthorized by the CSMS (%s)", event.transaction_id, event.status)
        elif isinstance(event, events.MessageDiscarded):
            log.error("%s #%d discarded after MessageAttempts: %s", event.action, event.outbox_id, event.error)
        if self._reset_pending and not station.transactions():
            self._reset.set()

    async def _apply_limits(self, evse_ids: tuple[int, ...]) -> None:
        station = self.station
        assert station is not None
        targets = sorted(self.drivers) if 0 in evse_ids else [e for e in evse_ids if e in self.drivers]
        for evse_id in targets:
            schedule = station.composite_schedule(evse_id, 60, "W")
            limit = schedule["chargingSchedulePeriod"][0]["limit"]
            await self.drivers[evse_id].set_limit(power_w=limit)
            log.info("EVSE %d limited to %.0f W by the composite schedule", evse_id, limit)

    # ------------------------------------------------------------------ meter
    async def _meter_values(self, evse_id: int, context: str = "Sample.Periodic") -> list[dict[str, Any]]:
        driver = self.drivers.get(evse_id)
        if driver is None:
            return []
        station = self.station
        signed = bool(station and station.device_model.get_bool(SampledDataCtrlr.SignReadings))
        reading = await driver.read_meter(signed=signed)
        energy: dict[str, Any] = {
            "value": round(reading.energy_import_wh, 1),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh"},
        }
        if reading.signed is not None:
            energy["signedMeterValue"] = {
                "signedMeterData": reading.signed.signed_meter_data,
                "signingMethod": reading.signed.signing_method,
                "encodingMethod": reading.signed.encoding_method,
                "publicKey": reading.signed.public_key,
            }
        power = {"value": round(reading.power_w, 1), "context": context, "measurand": "Power.Active.Import",
                 "unitOfMeasure": {"unit": "W"}}
        return [{"timestamp": reading.timestamp, "sampledValue": [energy, power]}]

    # ------------------------------------------------------------------ simulated EV sessions
    def _start_session(self, evse_id: int, remote: events.RemoteStartRequested | None) -> None:
        current = self._sessions.get(evse_id)
        if current is not None and not current.done():
            if remote is None:
                return
            current.cancel()
        self._sessions[evse_id] = self._spawn(self._sessions_loop(evse_id, remote), f"ev-sessions-{evse_id}")

    def _stop_session(self, evse_id: int) -> None:
        task = self._sessions.get(evse_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        driver = self.drivers[evse_id]
        driver.unplug()
        if self.station is not None:
            for connector in self._connectors(evse_id):
                self.station.set_connector_status(evse_id, connector, "Available")

    def _connectors(self, evse_id: int) -> list[int]:
        evse = next(e for e in self.config.evse if e.id == evse_id)
        return [c.id for c in evse.connectors]

    async def _sessions_loop(self, evse_id: int, remote: events.RemoteStartRequested | None) -> None:
        sim = self.config.simulator
        count = 0
        while remote is not None or sim.sessions < 0 or count < sim.sessions:
            count += 1
            await self._one_session(evse_id, remote)
            if remote is not None:
                return
            await asyncio.sleep(sim.pause_seconds)

    async def _one_session(self, evse_id: int, remote: events.RemoteStartRequested | None) -> None:
        station = self.station
        assert station is not None
        sim = self.config.simulator
        driver = self.drivers[evse_id]
        connector = self._connectors(evse_id)[0]
        loop = asyncio.get_running_loop()
        driver.plug_in()
        station.set_connector_status(evse_id, connector, "Occupied")
        if remote is not None:
            token: Any = remote.id_token
            trigger = "RemoteStart"
        else:
            token = {"idToken": sim.id_token, "type": sim.id_token_type}
            trigger = "Authorized"
            if not await self._authorize(token):
                log.warning("EVSE %d: %s not authorized; the simulated EV leaves", evse_id, sim.id_token)
                driver.unplug()
                station.set_connector_status(evse_id, connector, "Available")
                return
        driver.ev_ready()
        await driver.set_contactors(True)
        driver.demand(sim.current_a, sim.voltage_v)
        meter = await self._meter_values(evse_id, "Transaction.Begin")
        transaction_id = await station.start_transaction(
            evse_id, connector, trigger_reason=trigger, id_token=token, charging_state="Charging",
            remote_start_id=remote.remote_start_id if remote else None, meter_value=meter,
        )
        log.info("EVSE %d: transaction %s started", evse_id, transaction_id)
        end = loop.time() + sim.session_seconds
        while loop.time() < end:
            await asyncio.sleep(max(0.0, min(sim.meter_interval, end - loop.time())))
            if not any(t.transaction_id == transaction_id for t in station.transactions()):
                return  # ended by a remote stop
            meter = await self._meter_values(evse_id)
            await station.update_transaction(transaction_id, trigger_reason="MeterValuePeriodic", meter_value=meter)
        await driver.set_contactors(False)
        meter = await self._meter_values(evse_id, "Transaction.End")
        driver.unplug()
        await station.end_transaction(
            transaction_id, trigger_reason="EVCommunicationLost", stopped_reason="EVDisconnected",
            charging_state="Idle", meter_value=meter,
        )
        station.set_connector_status(evse_id, connector, "Available")
        log.info("EVSE %d: transaction %s ended", evse_id, transaction_id)

    async def _authorize(self, token: dict[str, Any]) -> bool:
        station = self.station
        assert station is not None
        try:
            response = await station.authorize(token)
        except CallFailed as exc:
            if exc.reason in ("Offline", "NotAccepted", "Timeout"):
                allowed = station.device_model.get_bool(AuthCtrlr.LocalAuthorizeOffline)
                log.info("authorize while offline (%s): %s", exc.reason, "allowed" if allowed else "refused")
                return allowed
            return False
        status = response.id_token_info.status
        return (status.value if hasattr(status, "value") else status) == "Accepted"


async def run_service(config: ServiceConfig) -> int:
    """Run until SIGTERM/SIGINT; restart in-process after an OCPP Reset. Returns the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread
            pass
    boot_reason = "PowerUp"
    while True:
        outcome = await Service(config, boot_reason=boot_reason).run(stop)
        if outcome != "reset" or stop.is_set():
            return 0
        boot_reason = "RemoteReset"
        log.info("restarting after the reset")
