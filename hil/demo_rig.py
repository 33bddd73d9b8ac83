"""The bridge on a bench: a test PKI's trust store, the ``hil.csms`` CSMS emulator with the
Plug & Charge behaviour of ``hil.demo_csms``, and ``pnc_bridge.bridge.Service`` (what
``pnc-bridge run`` runs) configured from a TOML file written for it.

``async with BridgeRig(work_dir, pki, ...) as rig:`` then connect an EV to
``rig.endpoint.tls_port`` / ``tcp_port`` (or let it find the SECC with SDP on ``iface``) and
look at what the CSMS saw in ``rig.csms`` (``rig.tx_events()``). Used by ``pnc-bridge demo``,
the bridge tests, the Josev interop tests and the turnaround benchmark.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any, Callable

__all__ = ["IDENTITY", "PASSWORD", "BridgeRig", "loopback_host", "make_trust_store"]

IDENTITY = "DEMO-CS-1"
PASSWORD = "demo-password-0123456789"


def loopback_host() -> str:
    """``::1`` where IPv6 works (ISO 15118 runs on IPv6), else ``127.0.0.1`` (containers
    without IPv6): the demo must run on any machine."""
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return "::1"
    except OSError:
        return "127.0.0.1"


def make_trust_store(directory: Path, pki: Any, *, roots: tuple[str, ...] = ("v2g", "mo", "oem"), secc: bool = True,
                     pki20: Any = None) -> Any:
    """A ``pnc_bridge.pki.TrustStore`` with ``pki``'s roots of the given kinds and, with
    ``secc``, its SECC certificate and key; with ``pki20`` (an ISO 15118-20 test PKI) also
    its roots and its SECC certificate in the ``secc20`` slot (TLS 1.3)."""
    from pnc_bridge.pki import LeafSlot, RootKind, TrustStore

    store = TrustStore.init(directory)
    for kind in roots:
        store.add_roots(RootKind(kind), [p.roots()[RootKind(kind)] for p in (pki, pki20) if p is not None])
    if secc:
        leaf, subs = pki.chain("secc")
        store.install_leaf(LeafSlot.SECC, [leaf, *subs], pki.key("secc_leaf"))
        if pki20 is not None:
            leaf, subs = pki20.chain("secc")
            store.install_leaf(LeafSlot.SECC20, [leaf, *subs], pki20.key("secc_leaf"))
    return store


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


class BridgeRig:
    """See the module docstring. ``device_model`` and ``iso15118`` add to the configuration;
    ``v2g`` replaces keys of ``[evse.v2g]``; ``service`` are keyword arguments of ``Service``;
    ``behaviour`` of ``PncCsms``; ``roots`` the trust-store root kinds; ``driver_toml`` a
    ``[driver]`` table (a charger maker's own driver instead of the simulator). ISO 15118-20:
    ``pki20`` (its roots and SECC certificate go into the trust store too), ``evse`` adds
    keys to ``[[evse]]`` (``max_discharge_power_w``), ``subprotocols`` the station's
    ``[csms] subprotocols`` (the CSMS emulator picks by its own ``csms={"subprotocols": ...}``)."""

    def __init__(
        self,
        work_dir: Path,
        pki: Any,
        *,
        phases: int = 0,
        v2g: dict[str, Any] | None = None,
        device_model: dict[str, str] | None = None,
        iso15118: dict[str, Any] | None = None,
        roots: tuple[str, ...] = ("v2g", "mo", "oem"),
        message_timeout: float = 10.0,
        behaviour: dict[str, Any] | None = None,
        service: dict[str, Any] | None = None,
        csms_host: str = "127.0.0.1",
        csms: dict[str, Any] | None = None,
        pki20: Any = None,
        evse: dict[str, Any] | None = None,
        subprotocols: tuple[str, ...] | None = None,
        driver_toml: str = "",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.pki = pki
        self.pki20 = pki20
        self.evse = evse or {}
        self.subprotocols = subprotocols
        self.phases = phases
        self.v2g = {"host": loopback_host(), **(v2g or {})}
        self.device_model = {"OCPPCommCtrlr/WebSocketPingInterval": "0", "OCPPCommCtrlr/RetryBackOffWaitMinimum": "0",
                             "OCPPCommCtrlr/RetryBackOffRandomRange": "0", **(device_model or {})}
        self.iso15118 = iso15118 or {}
        self.roots = roots
        self.message_timeout = message_timeout
        self.behaviour_options = behaviour or {}
        self.service_options = service or {}
        self.csms_host = csms_host
        self.csms_options = csms or {}
        self.driver_toml = driver_toml
        self.csms: Any = None
        self.behaviour: Any = None
        self.service: Any = None
        self.trust_store: Any = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.outcome: str | None = None

    # ------------------------------------------------------------------ set-up
    def config_text(self, url: str) -> str:
        v2g = "\n".join(f"{k} = {_toml_value(v)}" for k, v in self.v2g.items() if v is not None)
        dm = "\n".join(f'"{k}" = "{v}"' for k, v in self.device_model.items())
        iso = "\n".join(f"{k} = {_toml_value(v)}" for k, v in self.iso15118.items())
        dc = self.phases == 0
        evse = "\n".join(f"{k} = {_toml_value(v)}" for k, v in self.evse.items())
        csms = f"subprotocols = {_toml_value(list(self.subprotocols))}\n" if self.subprotocols else ""
        return textwrap.dedent(f"""
            [station]
            identity = "{IDENTITY}"
            vendor = "pnc-bridge"
            model = "bench"
            [csms]
            url = "{url}"
            security_profile = 1
            password = "{PASSWORD}"
            message_timeout = {self.message_timeout}
        """) + csms + textwrap.dedent("""
            [paths]
            data_dir = "data"
            trust_store = "trust"
            [iso15118]
        """) + iso + textwrap.dedent(f"""
            [[evse]]
            id = 1
            supply_phases = {self.phases}
            max_power_w = {150000 if dc else 22000}
            max_current_a = {200 if dc else 32}
            iso15118_evse_id = "DE*PNC*E00001*1"
        """) + evse + "\n[evse.v2g]\n" + v2g + "\n[device_model]\n" + dm + "\n" + self.driver_toml + "\n"

    async def __aenter__(self) -> "BridgeRig":
        from hil.csms import CsmsEmulator
        from hil.demo_csms import PncCsms
        from pnc_bridge.bridge import Service
        from pnc_bridge.config import load_config

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.trust_store = make_trust_store(self.work_dir / "trust", self.pki, roots=self.roots, pki20=self.pki20)
        self.csms = CsmsEmulator(host=self.csms_host, basic_auth={IDENTITY: PASSWORD}, **self.csms_options)
        await self.csms.start()
        try:
            self.behaviour = PncCsms(self.csms, self.pki, pki20=self.pki20, **self.behaviour_options).install()
            self.behaviour.warm_up()
            config_path = self.work_dir / "pnc-bridge.toml"
            config_path.write_text(self.config_text(self.csms.url))
            self.service = Service(load_config(config_path), **self.service_options)
            self._task = asyncio.create_task(self.service.run(self._stop))
            ready = asyncio.create_task(self.service.ready.wait())
            await asyncio.wait({ready, self._task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if not self.service.ready.is_set():
                ready.cancel()
                if self._task.done():
                    self._task.result()  # raises the service's own error
                raise RuntimeError("the bridge did not start within 30 s")
            await self.csms.wait_for(lambda e: e.received("BootNotification", station=IDENTITY), 30)
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def stop_service(self) -> str | None:
        """Stop the bridge (as SIGTERM does); returns "stopped" / "reset"."""
        if self._task is not None and not self._task.done():
            self._stop.set()
            self.outcome = await asyncio.wait_for(self._task, 30)
        return self.outcome

    async def _close(self) -> None:
        try:
            await self.stop_service()
        finally:
            if self.csms is not None:
                await self.csms.stop()

    # ------------------------------------------------------------------ looking
    @property
    def endpoint(self) -> Any:
        return self.service.endpoints[1]

    @property
    def station(self) -> Any:
        return self.service.station

    def calls(self, action: str) -> list[dict[str, Any]]:
        """Payloads of the station's CALLs of ``action`` the CSMS received, in order."""
        return [r.payload for r in self.csms.received(action, station=IDENTITY)]

    def tx_events(self) -> list[dict[str, Any]]:
        return self.calls("TransactionEvent")

    async def wait_for(self, predicate: Callable[[Any], Any], timeout: float = 15.0) -> Any:
        """Wait until ``predicate(rig)`` is truthy (re-checked every 20 ms); returns its value,
        raises TimeoutError."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not (value := predicate(self)):
            if loop.time() >= end:
                raise TimeoutError("condition not met within the timeout")
            await asyncio.sleep(0.02)
        return value

    async def wait_ended(self, timeout: float = 15.0) -> dict[str, Any]:
        """The TransactionEvent Ended, once the CSMS has it."""
        return await self.wait_for(
            lambda rig: next((p for p in rig.tx_events() if p["eventType"] == "Ended"), None), timeout)

    async def wait_idle(self, timeout: float = 15.0) -> None:
        """Until the EV's connection is over (its cleanup done), the station's outbox is empty
        and every CALL of the station was answered."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        station = self.station
        while True:
            if self.service.contexts[1].adapter is None and station.online:
                answered = {r.message_id for r in self.csms.received()} <= {o.message_id for o in self.csms.sent()}
                if answered and await station.store.run(station.outbox.pending) == 0:
                    return
            if loop.time() >= end:
                raise TimeoutError("the bridge did not become idle")
            await asyncio.sleep(0.02)
