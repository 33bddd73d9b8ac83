"""One EVSE's way to the EV: SLAC (with a PLC interface), SDP, the TCP / TLS servers, and
one ``SeccAdapter`` per EV connection, fulfilled by the bridge.

Rules of this module:

- :class:`V2gEndpoint` owns the link services of one EVSE and nothing of the session: every
  connection gets a fresh ``SeccConfig`` (the device model may have changed: PnCEnabled,
  certificate installation) and the EVSE's resume slot (ISO 15118-2 pause / resume).
- One EV at a time per EVSE (one cable): a second connection while a session is live is
  closed at once and logged.
- The EV is "connected" from its first successful SupportedAppProtocol handshake and has
  "left" when a connection ends without a paused session to come back to; the service turns
  these into the transaction's EVConnected condition and the connector status.
- A hardware driver's control pilot is watched: state A, E or F ends the live session at
  once (as a lost connection; the transaction as EVDeparted) and forgets a paused one; E/F
  also set the connector Faulted until the CP recovers. The simulator has no CP line.
- While a connection is live the EVSE's status (present values, limits, meter) is read every
  ``BRIDGE_EVSE_STATUS_INTERVAL`` and handed to the SECC.
- The SECC's TLS certificate comes from the trust store (:class:`TrustStoreCredentials`): a
  new one installed by ``pnc-bridge pki`` or OCPP CertificateSigned is used by the next
  connection, without a restart; so is the leaf's OCSP response (OCPP M06, ``_ocsp.py``),
  stapled while current.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

from pnc_bridge import timing
from pnc_bridge.bridge._context import EvseContext
from pnc_bridge.bridge._evse import simulated_ac_ev_power
from pnc_bridge.bridge._ocsp import SECC_SLOTS, current_response
from pnc_bridge.config import V2gSection
from pnc_bridge.evse import CpState
from pnc_bridge.link.server import V2gtpServer
from pnc_bridge.link.tls import KeyLog, SeccCredential, TlsProfile, TlsServerConfig
from pnc_bridge.messages import apphand
from pnc_bridge.pki import RootKind, StoreError, TrustStore, issuing_root
from pnc_bridge.secc import SeccConfig, WireStep
from pnc_bridge.secc._adapter import SeccAdapter

__all__ = ["DYNAMIC_PORTS", "TrustStoreCredentials", "V2gEndpoint"]

#: The dynamic port range (RFC 6335) an SECC's TCP / TLS servers use.
DYNAMIC_PORTS = (49152, 65535)

log = logging.getLogger("pnc_bridge.bridge")


class TrustStoreCredentials:
    """The SECC chains and keys from a ``pnc_bridge.pki.TrustStore`` (a TLS credential
    provider): the ISO 15118-2 one (slot ``secc``, P-256, TLS 1.2) and the ISO 15118-20 one
    (slot ``secc20``, P-521 / Ed448, TLS 1.3); a chain's profile follows from its key, so
    either slot may hold either."""

    def __init__(self, store: TrustStore) -> None:
        self.store = store
        self._generation: int | None = None
        self._credentials: tuple[SeccCredential, ...] = ()
        self._stale_at: datetime | None = None  # the stapled response's nextUpdate

    def __call__(self, profile: TlsProfile) -> Sequence[SeccCredential]:
        try:
            snapshot = self.store.snapshot()
        except StoreError as exc:
            log.error("SECC certificate unavailable: %s", exc)
            return ()
        now = datetime.now(timezone.utc)
        if snapshot.generation != self._generation or (self._stale_at is not None and now >= self._stale_at):
            credentials: list[SeccCredential] = []
            stale: list[datetime] = []
            for slot in SECC_SLOTS:
                leaf = snapshot.leaves.get(slot)
                if leaf is None:
                    continue
                top = leaf.chain[-1]
                root = issuing_root(top, snapshot.roots_of(RootKind.V2G))
                # OCPP M06: the leaf's OCSP response from the CSMS, stapled while it is current
                issuer = leaf.chain[1] if len(leaf.chain) > 1 else root
                stapled = current_response(snapshot, leaf.certificate, issuer, now, slot)
                if stapled and stapled[1] is not None:
                    stale.append(stapled[1])
                credentials.append(SeccCredential(leaf.chain, leaf.key, root=root,
                                                  ocsp_response=stapled[0] if stapled else None))
            self._stale_at = min(stale) if stale else None
            self._generation, self._credentials = snapshot.generation, tuple(credentials)
        return [c for c in self._credentials if c.profile == profile]

    def profiles(self) -> tuple[TlsProfile, ...]:
        """The TLS profiles the store has a SECC certificate for."""
        return tuple(p for p in TlsProfile if self(p))

    def available(self) -> bool:
        return bool(self.profiles())

    def ev_trust_anchors(self) -> list[Any]:
        """ISO 15118-20 TLS: the OEM roots an EV's certificate must chain to."""
        try:
            return list(self.store.snapshot().roots_of(RootKind.OEM))
        except StoreError as exc:
            log.error("OEM roots unavailable: %s", exc)
            return []


class V2gEndpoint:
    """The link services and SECC connections of one EVSE (see the module rules)."""

    def __init__(
        self,
        ctx: EvseContext,
        section: V2gSection,
        *,
        secc_config: Callable[[], SeccConfig],
        fulfil: Callable[[Any], Awaitable[Any]],
        status: Callable[[EvseContext], Awaitable[Any]],
        credentials: TrustStoreCredentials | None,
        on_ev_connected: Callable[[EvseContext], Awaitable[None]],
        on_ev_left: Callable[[EvseContext], Awaitable[None]],
        on_step: Callable[[EvseContext, Any, WireStep], None] | None = None,
        on_cp_state: Callable[[EvseContext, CpState], Awaitable[None]] | None = None,
        status_interval: float = timing.BRIDGE_EVSE_STATUS_INTERVAL,
        secc_logger: logging.Logger | None = None,
    ) -> None:
        self.ctx = ctx
        self.section = section
        self._secc_config = secc_config
        self._fulfil = fulfil
        self._status = status
        self._credentials = credentials
        self._on_ev_connected = on_ev_connected
        self._on_ev_left = on_ev_left
        self._on_step = on_step
        self._on_cp_state = on_cp_state
        self._slac: Any = None
        self._status_interval = status_interval
        self._secc_logger = secc_logger
        self._servers: list[V2gtpServer] = []
        self._services: list[Any] = []
        self._tasks: set[asyncio.Task] = set()
        self._key_log: KeyLog | None = None
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        self.sessions = 0
        #: the last SLAC events (Matched, MatchingFailed, ...), for status pages and tests
        self.slac_events: list[Any] = []

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        s = self.section
        host, iface = s.host, s.interface
        try:
            if s.tcp_port is not None:
                server = await self._listen(s.tcp_port, None)
                self.tcp_port = server.port
            if s.tls_port is not None:
                if self._credentials is None or not self._credentials.available():
                    log.warning("EVSE %d: no SECC certificate in the trust store (pnc-bridge pki store ...): "
                                "TLS is not offered, so no Plug & Charge", self.ctx.evse_id)
                else:
                    self._key_log = KeyLog(str(s.tls_keylog)) if s.tls_keylog else None
                    if self._key_log is not None:
                        log.warning("EVSE %d: TLS keys are logged to %s (lab use only)", self.ctx.evse_id, s.tls_keylog)
                    profiles = self._credentials.profiles()
                    if TlsProfile.ISO15118_20 in profiles and not self._credentials.ev_trust_anchors():
                        log.warning("EVSE %d: an ISO 15118-20 SECC certificate but no OEM root in the trust store: "
                                    "no -20 EV can authenticate (pnc-bridge pki store add --kind oem ...)", self.ctx.evse_id)
                    tls = TlsServerConfig(credentials=self._credentials, profiles=profiles, key_log=self._key_log,
                                          ev_trust_anchors=self._credentials.ev_trust_anchors)
                    server = await self._listen(s.tls_port, tls)
                    self.tls_port = server.port
            if not self._servers:
                raise OSError("neither TCP nor TLS could be offered")
            if iface:
                await self._start_link(iface)
            if self._slac is not None or not self.ctx.simulated:
                self._spawn(self._watch_cp(), f"cp-{self.ctx.evse_id}")
        except BaseException:
            await self.close()
            raise
        log.info("EVSE %d: SECC on %s%s (TCP %s, TLS %s)", self.ctx.evse_id, iface or host,
                 " with SLAC" if iface and s.slac else "", self.tcp_port or "-", self.tls_port or "-")

    async def _listen(self, port: int, tls: TlsServerConfig | None) -> V2gtpServer:
        """A server on ``port``, or with 0 on a free port of the dynamic range 49152-65535, where
        an ISO 15118 SECC listens (EVs check it: Josev's refuses an SDP answer with another port)."""
        s = self.section
        candidates = [port] if port else random.sample(range(DYNAMIC_PORTS[0], DYNAMIC_PORTS[1] + 1), 64)
        for candidate in candidates:
            server = V2gtpServer(self._handle, tls=tls, host=s.host, port=candidate, interface=s.interface,
                                 max_connections=2)
            try:
                await server.start()
            except OSError as exc:
                if port or exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._servers.append(server)
            return server
        raise OSError(errno.EADDRINUSE, "no free port in 49152-65535")

    async def _start_link(self, iface: str) -> None:
        from pnc_bridge.link.sdp import SdpPolicy
        from pnc_bridge.link.sdp_server import SdpServer, link_local_address

        sdp = SdpServer(iface, SdpPolicy(link_local_address(iface), tls_port=self.tls_port, tcp_port=self.tcp_port))
        await sdp.start()
        self._services.append(sdp)
        if self.section.slac:
            from pnc_bridge.link.slac import CpState as SlacCp
            from pnc_bridge.link.slac.adapter import SlacService

            evse_id = (self.ctx.section.iso15118_evse_id or "").encode()[:17].ljust(17, b"\x00")
            slac = SlacService(iface, self._slac_event, evse_id=evse_id)
            await slac.start()
            self._services.append(slac)
            driver = self.ctx.driver
            slac.cp_state(SlacCp(driver.cp_state().value))
            if self.ctx.simulated and not SlacCp(driver.cp_state().value).ev_connected:
                # the simulator has no CP line: a lab EV on the PLC link is taken as plugged in
                slac.cp_state(SlacCp.B)
            else:
                self._slac = slac

    async def _watch_cp(self) -> None:
        """Every CP state change of the driver: to SLAC, and (a hardware driver) the EV's
        departure or a fault ends its session (see :meth:`_cp_changed`)."""
        async for state in self.ctx.driver.cp_state_changes():
            if self._slac is not None:
                from pnc_bridge.link.slac import CpState as SlacCp

                self._slac.cp_state(SlacCp(state.value))
            if not self.ctx.simulated:
                try:
                    await self._cp_changed(state)
                except Exception:  # noqa: BLE001 - keep watching the control pilot
                    log.exception("EVSE %d: handling CP state %s failed", self.ctx.evse_id, state.value)

    async def _cp_changed(self, state: CpState) -> None:
        """IEC 61851-1: state A (no EV), E or F (no power / EVSE fault). The cable is gone or
        unusable, so the live session ends now (not at its timeout: the power stage stops
        through the session's own stop effects) and a paused ISO 15118-2 session is over
        (its EV cannot come back on this plug-in); the transaction ends as EVDeparted."""
        ctx = self.ctx
        if self._on_cp_state is not None:
            await self._on_cp_state(ctx, state)
        if state not in (CpState.A, CpState.E, CpState.F):
            return
        if ctx.adapter is not None:
            log.info("EVSE %d: CP state %s during a session: ending it", ctx.evse_id, state.value)
            ctx.departed = True
            ctx.adapter.abort()
        elif ctx.resume.value is not None:
            log.info("EVSE %d: CP state %s: the paused session's EV left", ctx.evse_id, state.value)
            ctx.resume.value = None
            ctx.departed = True
            await self._on_ev_left(ctx)

    def _slac_event(self, event: Any) -> None:
        self.slac_events.append(event)
        del self.slac_events[:-32]
        log.info("EVSE %d: SLAC %s", self.ctx.evse_id, type(event).__name__)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for service in reversed(self._services):
            await service.close()
        for server in self._servers:
            await server.close()
        self._services.clear()
        self._servers.clear()
        if self._key_log is not None:
            self._key_log.close()
            self._key_log = None

    def _spawn(self, coro: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ connections
    async def _handle(self, conn: Any) -> None:
        ctx = self.ctx
        if ctx.adapter is not None:
            log.warning("EVSE %d: refusing a second EV connection from %s while a session is live", ctx.evse_id, conn.peer)
            conn.close("a session is already live on this EVSE")
            return
        connected = False
        ctx.departed = False

        def hook(step: WireStep) -> None:
            nonlocal connected
            if not connected and isinstance(step.response, apphand.SupportedAppProtocolRes) and not step.close:
                connected = True
                self._spawn(self._on_ev_connected(ctx), f"ev-connected-{ctx.evse_id}")
            if ctx.simulated and ctx.section.supply_phases:
                power = simulated_ac_ev_power(step)
                if power is not None and ctx.output_closed:
                    self._spawn(ctx.driver.set_setpoint(power), f"ac-ev-{ctx.evse_id}")
            if self._on_step is not None:
                self._on_step(ctx, adapter, step)

        adapter = SeccAdapter(conn, self._secc_config(), self._fulfil, resume=ctx.resume, on_step=hook,
                              logger=self._secc_logger)
        ctx.adapter = adapter
        self.sessions += 1
        try:
            adapter.update_evse_status(await self._status(ctx))
        except Exception:  # noqa: BLE001 - the session answers from defaults, the poller retries
            log.exception("EVSE %d: reading the EVSE status failed", ctx.evse_id)
        poller = self._spawn(self._poll_status(ctx, adapter), f"evse-status-{ctx.evse_id}")
        last = None
        try:
            last = await adapter.run()
        finally:
            poller.cancel()
            try:
                if connected and (last is None or last.resume is None):
                    await self._on_ev_left(ctx)
            finally:
                ctx.adapter = None  # the EVSE takes the next EV only after this one's cleanup

    async def _poll_status(self, ctx: EvseContext, adapter: SeccAdapter) -> None:
        while True:
            await asyncio.sleep(self._status_interval)
            try:
                adapter.update_evse_status(await self._status(ctx))
            except Exception:  # noqa: BLE001 - keep polling; the SECC keeps the last snapshot
                log.exception("EVSE %d: reading the EVSE status failed", ctx.evse_id)
