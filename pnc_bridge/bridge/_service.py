"""The pnc-bridge service: one process that runs the OCPP client, the EVSE drivers, the
SECC (SLAC, SDP, TCP/TLS, ISO 15118-2 / DIN 70121 sessions) and the bridge between them.

Rules of this module:

- ``Service`` owns the store, the trust store, the drivers, the station, the bridge's ports
  and the V2G endpoints for one run; ``run_service`` restarts it in-process after an OCPP
  Reset (B11/B12) and ends it cleanly on SIGTERM/SIGINT.
- The trust store is ``pnc_bridge.pki.TrustStore`` (created empty when missing), behind the
  OCPP client's ``CertificateStore`` port and the SECC's TLS credentials.
- The service reacts to station events (remote start/stop, reset, new charging limits,
  deauthorization, TxStart/StopPoint changes) and feeds the station what the hardware and
  the EV sessions report (connector status, meter values, TransactionEvents).
- EVSEs with a ``[evse.v2g]`` table serve EVs (see ``_v2g``); the others, and every EVSE when
  ``[simulator] sessions`` is set, can play simulated EV sessions without ISO 15118, which is
  how the OCPP fault tests produce TransactionEvents.
- Settings only tests and rigs need (shorter SECC timers, a logger for the SECC) are
  constructor arguments, never patched.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any, Callable

from pnc_bridge import timing
from pnc_bridge.bridge._certificates import TrustStoreCertificates
from pnc_bridge.bridge._context import EvseContext, RemoteStart
from pnc_bridge.bridge._evse import EvsePort
from pnc_bridge.bridge._fulfil import Bridge, fulfiller_table
from pnc_bridge.bridge._ocsp import OcspRefresher
from pnc_bridge.bridge._ocpp import OcppPort
from pnc_bridge.bridge._pki import ContractPolicy, PkiPort
from pnc_bridge.bridge._transactions import TransactionPoints
from pnc_bridge.bridge._v2g import TrustStoreCredentials, V2gEndpoint
from pnc_bridge.config import ConfigError, EvseSection, ServiceConfig
from pnc_bridge.evse import CpState, EvBattery, EvseDriver, EvseLimits, EvseSimulator
from pnc_bridge.evse._loader import DriverLoadError, import_factory, make_driver
from pnc_bridge.ocpp import (
    CallFailed,
    ChargingStation,
    ChargingStationInfo,
    ConnectorLayout,
    EvseLayout,
    NetworkProfile,
    StationConfig,
    StationSettings,
    Store,
    StoreError,
    events,
)
from pnc_bridge.ocpp._variables import AuthCtrlr, ISO15118Ctrlr, TxCtrlr, standard_variables
from pnc_bridge.pki import StoreError as TrustStoreError
from pnc_bridge.pki import TrustStore
from pnc_bridge.secc import Iso20Config, PowerSetpoint, SeccConfig, SeccTimers, SupportedProtocol
from pnc_bridge.secc.effects import ControlMode, EnergyService, EnergyTransferMode, PaymentOption

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
            max_discharge_power_w=e.max_discharge_power_w,
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


#: The battery the EVSE simulator gives a plugged-in EV on a bidirectional EVSE (Wh).
SIMULATED_EV_CAPACITY_WH = 60_000.0

#: ``[evse.v2g] protocols`` names -> the SECC's protocols
_PROTOCOLS = {p.schema: p for p in SupportedProtocol}


def energy_transfer_modes(section: EvseSection) -> tuple[EnergyTransferMode, ...]:
    """What an EVSE offers the EV, from its supply phases (0 = DC)."""
    if section.supply_phases == 0:
        return (EnergyTransferMode.DC_extended, EnergyTransferMode.DC_core)
    if section.supply_phases == 3:
        return (EnergyTransferMode.AC_three_phase_core, EnergyTransferMode.AC_single_phase_core)
    return (EnergyTransferMode.AC_single_phase_core,)


def iso20_services(section: EvseSection) -> tuple[EnergyService, ...]:
    """The ISO 15118-20 energy services an EVSE offers: its family (DC, or AC with supply
    phases), and the BPT service only when it can discharge (``max_discharge_power_w``)."""
    base, bpt = (EnergyService.DC, EnergyService.DC_BPT) if section.supply_phases == 0 else (EnergyService.AC, EnergyService.AC_BPT)
    return (base, bpt) if section.max_discharge_power_w > 0 else (base,)


def _warm_up(schemas: set[str], trust_store: TrustStore) -> None:
    """Load now what the first EV would otherwise wait for: the EXI codecs of the offered
    protocols (about half a second each on a small machine; a SessionSetupRes must not wait
    for that), the signature checks and the trust store's contract anchors."""
    from pnc_bridge import exi, xmldsig  # noqa: F401 - imported for its tables
    from pnc_bridge.pki import Purpose

    if any(s.startswith("iso20") for s in schemas):
        schemas = schemas | {"iso20-common"}
    for schema in ("apphand", *sorted(schemas)):
        try:
            exi.decode(schema, b"\x80")
        except exi.ExiDecodeError:
            pass  # expected: an empty document; the codec is loaded
    try:
        trust_store.snapshot().anchors_for(Purpose.CONTRACT)
    except TrustStoreError as exc:
        log.error("trust store: %s", exc)


#: OCPP requests of a live EV session, with a sample each: checking one now builds the schema
#: validators (and the version mapping) the first Authorize would otherwise wait for.
_LIVE_SAMPLES: dict[str, dict[str, Any]] = {
    "Authorize": {"idToken": {"idToken": "DE8AA0012345670", "type": "eMAID"}, "iso15118CertificateHashData": [
        {"hashAlgorithm": "SHA256", "issuerNameHash": "00", "issuerKeyHash": "00", "serialNumber": "1",
         "responderURL": "http://ocsp.invalid"}]},
    "Get15118EVCertificate": {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install",
                              "exiRequest": "gA=="},
    "NotifyEVChargingNeeds": {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC",
                                                             "dcChargingParameters": {"evMaxCurrent": 1, "evMaxVoltage": 1}}},
}


def _warm_station(station: ChargingStation) -> None:
    for action, payload in _LIVE_SAMPLES.items():
        try:
            station.check_outgoing(action, payload)
        except Exception as exc:  # noqa: BLE001 - only a warm-up; the real call reports its own errors
            log.debug("warming %s: %s", action, exc)


def driver_factory(config: ServiceConfig) -> Callable[..., Any] | None:
    """The configured driver factory (``[driver] kind = "python"``), imported; None for the
    simulator. ``python_path`` directories are searched first. Raises ``ConfigError``."""
    section = config.driver
    if section.kind != "python":
        return None
    assert section.factory is not None
    for directory in reversed(section.python_path):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    try:
        return import_factory(section.factory)
    except DriverLoadError as exc:
        raise ConfigError(f"driver: {exc}") from None


def build_drivers(config: ServiceConfig) -> dict[int, EvseDriver]:
    """One driver per configured EVSE: the simulator, or the charger maker's own (docs/evse.md)."""
    factory = driver_factory(config)
    drivers: dict[int, EvseDriver] = {}
    for evse in config.evse:
        limits = EvseLimits(evse.max_current_a, evse.max_power_w, evse.max_voltage_v,
                            max_discharge_current_a=evse.max_discharge_current_a,
                            max_discharge_power_w=evse.max_discharge_power_w)
        ac = evse.supply_phases > 0
        if factory is None:
            drivers[evse.id] = EvseSimulator(evse.id, limits=limits, ac=ac)
            continue
        assert config.driver.factory is not None
        try:
            drivers[evse.id] = make_driver(factory, config.driver.factory, evse_id=evse.id, limits=limits, ac=ac,
                                           options=config.driver.options)
        except DriverLoadError as exc:
            raise ConfigError(f"driver: {exc}") from None
    return drivers


async def _close_drivers(drivers: dict[int, EvseDriver]) -> None:
    """A driver with ``aclose()`` (or ``close()``) gets it once at shutdown; its errors are logged."""
    for evse_id, driver in drivers.items():
        close = getattr(driver, "aclose", None) or getattr(driver, "close", None)
        if close is None:
            continue
        try:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        except Exception as exc:  # the service still stops cleanly
            log.warning("EVSE %d: the driver's close failed: %s: %s", evse_id, type(exc).__name__, exc)


class Service:
    """One run of the service; ``await run(stop)`` returns "stopped" or "reset".

    ``secc_timers`` (tests, rigs) replaces the SECC's standard timers; ``on_step(ctx,
    adapter, step)`` sees every SECC step (the demo's timeline); ``ready`` is set once the
    station and every V2G endpoint are up (``endpoints[evse_id].tls_port`` etc. are known).
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        boot_reason: str = "PowerUp",
        secc_timers: SeccTimers | None = None,
        on_step: Callable[..., None] | None = None,
        schedule_wait: float = timing.BRIDGE_SCHEDULE_WAIT,
        status_interval: float = timing.BRIDGE_EVSE_STATUS_INTERVAL,
        v2x_offline_grace: float = timing.BRIDGE_V2X_OFFLINE_GRACE,
        ocsp_check_interval: float = timing.BRIDGE_OCSP_CHECK_INTERVAL,
    ) -> None:
        self.config = config
        self.v2x_offline_grace = v2x_offline_grace
        self.boot_reason = boot_reason
        self.secc_timers = secc_timers
        self.on_step = on_step
        self.schedule_wait = schedule_wait
        self.status_interval = status_interval
        self.ocsp_check_interval = ocsp_check_interval
        self.station: ChargingStation | None = None
        self.trust_store: TrustStore | None = None
        self.drivers: dict[int, EvseDriver] = {}
        self.contexts: dict[int, EvseContext] = {}
        self.endpoints: dict[int, V2gEndpoint] = {}
        self.ocpp: OcppPort | None = None
        self.ready = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._reset = asyncio.Event()
        self._reset_pending = False
        self._sessions: dict[int, asyncio.Task] = {}
        self._faulted: set[int] = set()
        self.ocsp: OcspRefresher | None = None

    # ------------------------------------------------------------------ life cycle
    def _open_trust_store(self) -> TrustStore:
        path = self.config.paths.trust_store
        try:
            store = TrustStore(path)
            if not store.exists():
                store = TrustStore.init(path)
                log.info("created an empty trust store in %s (add roots with: pnc-bridge pki store add)", path)
            store.snapshot()
        except (TrustStoreError, OSError) as exc:
            raise ConfigError(f"paths.trust_store {path}: {exc}") from exc
        return store

    async def run(self, stop: asyncio.Event) -> str:
        cfg = self.config
        station_cfg = station_config(cfg, boot_reason=self.boot_reason)
        try:
            store = Store(cfg.paths.data_dir / "ocpp.sqlite")
        except StoreError as exc:
            raise ConfigError(str(exc)) from exc
        try:
            self.trust_store = trust_store = self._open_trust_store()
            self.drivers = build_drivers(cfg)
            station = ChargingStation(station_cfg, store=store, certificates=TrustStoreCertificates(trust_store),
                                      meter_reader=self._meter_values)
            self.station = station
            queue = station.subscribe()
            self._build_bridge(station, trust_store)
            await station.start()
            log.info("station %s started (%s, security profile %d); EVSE driver: %s",
                     cfg.station.identity, cfg.csms.url, cfg.csms.security_profile, cfg.driver.kind)
            self._spawn(self._events(queue), "events")
            if any(section.v2g is not None and section.v2g.tls_port is not None for section in cfg.evse):
                # M06: the SECC chain's OCSP responses, stapled in the EV's TLS handshake
                self.ocsp = OcspRefresher(station, trust_store, check_interval=self.ocsp_check_interval,
                                          busy=lambda: any(c.adapter is not None for c in self.contexts.values()))
                self._spawn(self.ocsp.run(), "ocsp")
            if self.endpoints:
                _warm_up({p for section in cfg.evse if section.v2g for p in section.v2g.protocols}, trust_store)
                _warm_station(station)
            for evse_id, endpoint in self.endpoints.items():
                try:
                    await endpoint.start()
                except (OSError, LookupError) as exc:
                    raise ConfigError(f"EVSE {evse_id}: cannot serve EVs: {exc}") from exc
            if cfg.simulator.sessions != 0:
                for evse_id in self.drivers:
                    self._start_session(evse_id, remote=None)
            self.ready.set()
            stop_wait = asyncio.create_task(stop.wait())
            reset_wait = asyncio.create_task(self._reset.wait())
            await asyncio.wait({stop_wait, reset_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            reset_wait.cancel()
            outcome = "reset" if self._reset.is_set() else "stopped"
            await self._shutdown(outcome)
            return outcome
        finally:
            for endpoint in self.endpoints.values():
                await endpoint.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for ctx in self.contexts.values():
                if ctx.meter_task is not None:
                    ctx.meter_task.cancel()
            if self.station is not None:
                await self.station.stop()
            await _close_drivers(self.drivers)
            store.close()

    def _build_bridge(self, station: ChargingStation, trust_store: TrustStore) -> None:
        """The bridge's ports and one table of fulfillers, the EVSE contexts and endpoints."""
        cfg = self.config
        dm = station.device_model
        points = TransactionPoints.parse(dm.get_list(TxCtrlr.TxStartPoint), dm.get_list(TxCtrlr.TxStopPoint))

        def policy() -> ContractPolicy:
            return ContractPolicy(
                local_validation=cfg.iso15118.local_contract_validation,
                central_validation_allowed=dm.get_bool(ISO15118Ctrlr.CentralContractValidationAllowed),
                validation_offline=dm.get_bool(ISO15118Ctrlr.ContractValidationOffline),
            )

        pki = PkiPort(trust_store, policy)
        self.ocpp = OcppPort(station, pki, policy, schedule_wait=self.schedule_wait,
                             v2x_offline_grace=self.v2x_offline_grace)
        evse_port = EvsePort(cfg.station.serial_number or cfg.station.identity)
        bridge = Bridge(fulfiller_table(pki, self.ocpp, evse_port))
        credentials = TrustStoreCredentials(trust_store)
        for section in cfg.evse:
            ctx = EvseContext(section.id, section, self.drivers[section.id], points,
                              connector_id=section.connectors[0].id)
            self.contexts[section.id] = ctx
            if section.v2g is None:
                continue
            self.endpoints[section.id] = V2gEndpoint(
                ctx, section.v2g, secc_config=lambda ctx=ctx: self._secc_config(ctx), fulfil=bridge.fulfil_for(ctx),
                status=evse_port.status, credentials=credentials, on_ev_connected=self._ev_connected,
                on_ev_left=self._ev_left, on_step=self.on_step, on_cp_state=self._cp_state,
                status_interval=self.status_interval,
            )

    def _secc_config(self, ctx: EvseContext) -> SeccConfig:
        """The SECC's configuration for the next connection (the device model may have changed)."""
        assert self.station is not None and ctx.section.v2g is not None
        dm = self.station.device_model
        v2g = ctx.section.v2g
        pnc = dm.get_bool(ISO15118Ctrlr.PnCEnabled)
        payment = tuple(PaymentOption(p) for p in v2g.payment_options if p != "Contract" or pnc) or (PaymentOption.ExternalPayment,)
        evse_id = ctx.section.iso15118_evse_id or f"ZZ*000*E{self.config.station.identity[:20]}*{ctx.evse_id}"
        return SeccConfig(
            evse_id=evse_id,
            protocols=tuple(_PROTOCOLS[p] for p in v2g.protocols if p in _PROTOCOLS),
            protocol_priority=v2g.protocol_priority,
            energy_transfer_modes=energy_transfer_modes(ctx.section),
            payment_options=payment,
            certificate_installation=dm.get_bool(ISO15118Ctrlr.ContractCertificateInstallationEnabled),
            metering_receipts=dm.get_bool(ISO15118Ctrlr.RequestMeteringReceipt),
            timers=self.secc_timers or SeccTimers(),
            iso20=Iso20Config(services=iso20_services(ctx.section),
                              control_modes=tuple(ControlMode(m) for m in v2g.control_modes)),
        )

    async def _ev_connected(self, ctx: EvseContext) -> None:
        station = self.station
        assert station is not None and self.ocpp is not None
        if ctx.simulated:
            # the simulator cannot see the EV: with discharge hardware it gets a battery that
            # can give power back (the session itself keeps to the EV's own limits)
            section = ctx.section
            battery = EvBattery(SIMULATED_EV_CAPACITY_WH, 50.0, section.max_power_w, section.max_discharge_power_w) \
                if section.max_discharge_power_w > 0 else None
            ctx.driver.plug_in(battery)
            ctx.driver.ev_ready()
        for connector in self._connectors(ctx.evse_id):
            station.set_connector_status(ctx.evse_id, connector, "Occupied")
        await self.ocpp.ev_connected(ctx)

    async def _cp_state(self, ctx: EvseContext, state: CpState) -> None:
        """A hardware driver's CP state: E (no power) and F (EVSE fault) make the connector
        Faulted (G01 / G05 StatusNotification); the next healthy state ends that."""
        station = self.station
        if station is None:
            return
        if state in (CpState.E, CpState.F):
            if ctx.evse_id not in self._faulted:
                log.warning("EVSE %d: CP state %s: connector Faulted", ctx.evse_id, state.value)
                self._faulted.add(ctx.evse_id)
            status = "Faulted"
        elif ctx.evse_id in self._faulted:
            self._faulted.discard(ctx.evse_id)
            log.info("EVSE %d: CP state %s: the fault is over", ctx.evse_id, state.value)
            status = "Available" if state is CpState.A else "Occupied"
        elif state is CpState.A and ctx.adapter is None and ctx.resume.value is None:
            status = "Available"  # the cable left after its session ended
        else:
            return
        for connector in self._connectors(ctx.evse_id):
            station.set_connector_status(ctx.evse_id, connector, status)

    async def _ev_left(self, ctx: EvseContext) -> None:
        station = self.station
        assert station is not None and self.ocpp is not None
        await self.ocpp.ev_left(ctx)
        if ctx.simulated:
            ctx.driver.unplug()
        status = "Available"
        if ctx.evse_id in self._faulted:
            status = "Faulted"
        elif not ctx.simulated and ctx.driver.cp_state() in (CpState.B, CpState.C, CpState.D):
            status = "Occupied"  # the session is over, the cable is still in: Available at CP state A
        for connector in self._connectors(ctx.evse_id):
            station.set_connector_status(ctx.evse_id, connector, status)
        if self._reset_pending and not station.transactions():
            self._reset.set()

    async def _shutdown(self, outcome: str) -> None:
        station = self.station
        assert station is not None
        for endpoint in self.endpoints.values():
            await endpoint.close()  # EV sessions end cleanly: contactors open, transactions end
        for task in list(self._sessions.values()):
            task.cancel()
        await asyncio.gather(*self._sessions.values(), return_exceptions=True)
        if self.ocpp is not None:
            await self.ocpp.drain(timing.SECC_CLEANUP_TIMEOUT)
        # The power stage stops with the service: end what is still open, so the CSMS
        # gets an Ended event with the right reason instead of a PowerLoss on restart.
        for tx in station.transactions():
            trigger, reason = ("ResetCommand", "ImmediateReset") if outcome == "reset" else ("AbnormalCondition", "Reboot")
            meter = await self._meter_values(tx.evse_id, "Transaction.End")
            await station.end_transaction(tx.transaction_id, trigger_reason=trigger, stopped_reason=reason, meter_value=meter)
            ctx = self.contexts.get(tx.evse_id)
            if ctx is not None:
                ctx.transaction_id = None
        # Give the CSMS a moment to receive the last events; they stay queued otherwise.
        if station.online:
            await self._drain(timeout=timing.BRIDGE_SHUTDOWN_DRAIN)
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
        assert station is not None and self.ocpp is not None
        if isinstance(event, events.ConnectionChanged):
            log.info("CSMS %s", "connected" if event.online else f"connection lost{f' ({event.reason})' if event.reason else ''}")
            self._v2x_connection(event.online)
        elif isinstance(event, events.DynamicScheduleUpdated):
            self._push_setpoint(event)
        elif isinstance(event, events.AllowedEnergyTransferChanged):
            log.warning("EVSE %s: the CSMS allows %s for transaction %s; not applied to a running session",
                        event.evse_id, ", ".join(event.allowed) or "nothing", event.transaction_id)
        elif isinstance(event, events.CertificateInstalled):
            if self.ocsp is not None:
                self.ocsp.wake.set()  # a new SECC chain is asked for at once
        elif isinstance(event, events.RegistrationChanged):
            log.info("registration %s (heartbeat interval %d s)", event.status, event.interval)
        elif isinstance(event, events.ResetRequested):
            if event.scheduled:
                log.info("reset scheduled: waiting for the transactions to end")
                self._reset_pending = True
            else:
                self._reset.set()
        elif isinstance(event, events.RemoteStartRequested):
            ctx = self.contexts.get(event.evse_id)
            if event.evse_id in self.endpoints and ctx is not None:
                # F01/F02: the EV (EIM) waits for it, or finds it when it connects
                token = event.id_token.to_payload() if hasattr(event.id_token, "to_payload") else dict(event.id_token)
                ctx.remote_start = RemoteStart(token, event.remote_start_id)
                log.info("EVSE %d: remote start %d for %s", event.evse_id, event.remote_start_id, token.get("idToken"))
                await ctx.changed()
            else:
                self._start_session(event.evse_id, remote=event)
        elif isinstance(event, events.RemoteStopRequested):
            ctx = self.contexts.get(event.evse_id)
            if ctx is not None and ctx.transaction_id == event.transaction_id:
                await self._stop_v2g(ctx, "Remote")  # F03
            else:
                tx = next((t for t in station.transactions() if t.transaction_id == event.transaction_id), None)
                if tx is not None:
                    meter = await self._meter_values(tx.evse_id, "Transaction.End")
                    await station.end_transaction(tx.transaction_id, trigger_reason="RemoteStop", stopped_reason="Remote",
                                                  meter_value=meter)  # F03.FR.03
                    self._stop_session(tx.evse_id)
        elif isinstance(event, events.ChargingProfilesChanged):
            await self._apply_limits(event.evse_ids)
            if event.reason != "TransactionEnded":
                await self._profiles_changed(event.evse_ids)
        elif isinstance(event, events.TransactionAuthorizationChanged):
            if event.status != "Accepted":
                log.warning("transaction %s deauthorized by the CSMS (%s)", event.transaction_id, event.status)
                ctx = next((c for c in self.contexts.values() if c.transaction_id == event.transaction_id), None)
                if ctx is not None and station.device_model.get_bool(TxCtrlr.StopTxOnInvalidId):
                    await self._stop_v2g(ctx, "DeAuthorized")  # E05
        elif isinstance(event, events.VariableChanged):
            if event.key in (TxCtrlr.TxStartPoint.id, TxCtrlr.TxStopPoint.id):
                dm = station.device_model
                points = TransactionPoints.parse(dm.get_list(TxCtrlr.TxStartPoint), dm.get_list(TxCtrlr.TxStopPoint))
                for ctx in self.contexts.values():
                    ctx.points = ctx.tracker.points = points
        elif isinstance(event, events.MessageDiscarded):
            log.error("%s #%d discarded after MessageAttempts: %s", event.action, event.outbox_id, event.error)
        if self._reset_pending and not station.transactions():
            self._reset.set()

    async def _stop_v2g(self, ctx: EvseContext, cause: str) -> None:
        """End the authorization of the EV session on ``ctx`` and ask the EV to stop."""
        assert self.ocpp is not None
        await self.ocpp.end_authorization(ctx, cause)
        adapter = ctx.adapter
        session = adapter.connection.session if adapter is not None and adapter.connection is not None else None
        if session is not None:
            session.stop_charging()  # EVSENotification=StopCharging in the next response
            log.info("EVSE %d: asking the EV to stop (%s)", ctx.evse_id, cause)

    # ------------------------------------------------------------------ V2X (ISO 15118-20)
    def _push_setpoint(self, event: events.DynamicScheduleUpdated) -> None:
        """OCPP 2.1 dynamic control: the CSMS's new setpoint goes into the running session at
        once (no effect round trip), so the next charge-loop response carries it. While the
        session lasts it is pushed again every half setpoint validity (SeccTimers) from the
        station's schedule (a CSMS that sets a setpoint once must not see it expire)."""
        ctx = self.contexts.get(event.evse_id)
        adapter = ctx.adapter if ctx is not None else None
        if adapter is None:
            return
        setpoint = event.period.setpoint
        adapter.update_setpoint(PowerSetpoint(float(setpoint)) if setpoint is not None else None)
        log.info("EVSE %d: CSMS setpoint %s W (profile %d, %s)", event.evse_id,
                 "none" if setpoint is None else f"{setpoint:g}", event.charging_profile_id, event.source)
        if ctx.setpoint_task is None or ctx.setpoint_task.done():
            ctx.setpoint_task = self._spawn(self._refresh_setpoint(ctx, adapter), f"setpoint-{ctx.evse_id}")

    async def _refresh_setpoint(self, ctx: EvseContext, adapter: Any) -> None:
        station = self.station
        assert station is not None
        while ctx.adapter is adapter:
            await asyncio.sleep((self.secc_timers or SeccTimers()).setpoint_validity / 2)
            if ctx.adapter is not adapter or ctx.v2x_fallback:
                return
            setpoint = station.charging_schedule(ctx.evse_id).periods[0].setpoint
            adapter.update_setpoint(PowerSetpoint(float(setpoint)) if setpoint is not None else None)

    def _v2x_connection(self, online: bool) -> None:
        """The V2X fallback policy (docs/bridge.md): offline, the last valid schedule holds for
        ``v2x_offline_grace`` s, then the session is renegotiated to charge-only limits; when
        the CSMS is back, it is renegotiated to the CSMS's schedule again."""
        for ctx in self.contexts.values():
            if not ctx.section.max_discharge_power_w:
                continue  # this EVSE never discharges: nothing to fall back from
            task, ctx.fallback_task = ctx.fallback_task, None
            if task is not None:
                task.cancel()
            if online:
                if ctx.v2x_fallback:
                    ctx.v2x_fallback = False
                    self._renegotiate(ctx, "the CSMS is back: its schedule applies again")
            elif ctx.adapter is not None:
                ctx.fallback_task = self._spawn(self._v2x_fallback_after(ctx), f"v2x-fallback-{ctx.evse_id}")

    async def _v2x_fallback_after(self, ctx: EvseContext) -> None:
        await asyncio.sleep(self.v2x_offline_grace)
        station = self.station
        if station is None or station.online or ctx.adapter is None:
            return
        ctx.v2x_fallback = True
        ctx.adapter.update_setpoint(None)  # a CSMS setpoint must not outlive the CSMS
        log.warning("EVSE %d: CSMS unreachable for %.0f s: falling back to charge-only limits", ctx.evse_id,
                    self.v2x_offline_grace)
        self._renegotiate(ctx, "V2X fallback: charge only")

    def _renegotiate(self, ctx: EvseContext, why: str) -> bool:
        """Make a charging EV renegotiate (EVSENotification ReNegotiation / -20
        ScheduleRenegotiation); its next schedule request gets what applies now."""
        adapter = ctx.adapter
        session = adapter.connection.session if adapter is not None and adapter.connection is not None else None
        if session is None or ctx.tracker.charging_state != "Charging":
            return False
        ctx.renegotiation_requested = True
        session.renegotiate()
        log.info("EVSE %d: renegotiating: %s", ctx.evse_id, why)
        return True

    async def _profiles_changed(self, evse_ids: tuple[int, ...]) -> None:
        """A new charging limit: wake a waiting GetChargingSchedule, or make a charging EV
        renegotiate (EVSENotification=ReNegotiation)."""
        targets = list(self.contexts.values()) if 0 in evse_ids else [self.contexts[e] for e in evse_ids if e in self.contexts]
        for ctx in targets:
            ctx.profile_generation += 1
            adapter = ctx.adapter
            session = adapter.connection.session if adapter is not None and adapter.connection is not None else None
            if session is not None and ctx.tracker.charging_state == "Charging":
                ctx.renegotiation_requested = True
                session.renegotiate()
                log.info("EVSE %d: new charging profile during the charge loop: renegotiating", ctx.evse_id)
            await ctx.changed()

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
        ctx = self.contexts.get(evse_id)
        if ctx is None or self.ocpp is None:
            return []
        return await self.ocpp.meter_values(ctx, context)

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
