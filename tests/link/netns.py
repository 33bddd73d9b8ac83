"""Network namespaces for link tests: two namespaces joined by a veth pair, IPv6 link-local.

``NetnsPair.create()`` makes ``<prefix>-ev`` and ``<prefix>-evse`` with unique names (pid +
random), DAD off so link-local addresses are usable at once; ``destroy()`` removes both and is
safe to call twice. ``run_in_netns(ns, coro_fn)`` runs an asyncio coroutine on a thread that
entered the namespace (sockets made there belong to it), so both sides of a test can live in
one pytest process; subprocesses go through ``ip netns exec``. ``netns_pair`` is the one
pytest fixture for a fresh pair (skips, with the reason, where namespaces cannot be made);
``tests/conftest.py`` registers this module as a plugin, so every test can ask for it.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@functools.cache
def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None (probed once per process)."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    if shutil.which("ip") is None:
        return "network namespace tests need iproute2 (`ip`)"
    name = f"pnc-probe-{os.getpid()}-{secrets.token_hex(2)}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@dataclass
class NetnsPair:
    ev_ns: str
    evse_ns: str
    ev_if: str = "ev0"
    evse_if: str = "plc0"

    @classmethod
    def create(cls) -> "NetnsPair":
        tag = f"pnc{os.getpid() % 100000}{secrets.token_hex(2)}"
        pair = cls(f"{tag}-ev", f"{tag}-evse")
        try:
            for ns in (pair.ev_ns, pair.evse_ns):
                _ip("ip", "netns", "add", ns)
                _ip("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=ns)
                _ip("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", ns=ns)
                _ip("ip", "link", "set", "lo", "up", ns=ns)
            _ip("ip", "link", "add", pair.evse_if, "netns", pair.evse_ns, "type", "veth",
                "peer", "name", pair.ev_if, "netns", pair.ev_ns)
            for ns, iface in ((pair.ev_ns, pair.ev_if), (pair.evse_ns, pair.evse_if)):
                _ip("sysctl", "-qw", f"net.ipv6.conf.{iface}.accept_dad=0", ns=ns)
                _ip("ip", "link", "set", iface, "up", ns=ns)
            pair._wait_link_local()
        except Exception:
            pair.destroy()
            raise
        return pair

    def _wait_link_local(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ok = True
            for ns, iface in ((self.ev_ns, self.ev_if), (self.evse_ns, self.evse_if)):
                out = subprocess.run(["ip", "netns", "exec", ns, "ip", "-6", "addr", "show", "dev", iface, "scope", "link"],
                                     capture_output=True, text=True).stdout
                if "fe80" not in out or "tentative" in out:
                    ok = False
            if ok:
                return
            time.sleep(0.05)
        raise RuntimeError("link-local addresses did not come up")

    def destroy(self) -> None:
        for ns in (self.ev_ns, self.evse_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def exec_args(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]


def enter_netns(ns: str) -> None:
    """Move the calling thread into network namespace ``ns``."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


class NetnsLoop:
    """An asyncio loop on its own thread inside a namespace. ``run(coro)`` waits for a result;
    ``submit(coro)`` returns a concurrent future."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        error: list[BaseException] = []

        def main() -> None:
            try:
                enter_netns(ns)
            except BaseException as exc:  # reported to the creator
                error.append(exc)
                ready.set()
                return
            asyncio.set_event_loop(self.loop)
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name=f"netns-{ns}", daemon=True)
        self.thread.start()
        ready.wait()
        if error:
            raise error[0]

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro, timeout: float = 60.0):
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def netns_pair():
    """A fresh ``NetnsPair`` for one test, destroyed after it."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    pair = NetnsPair.create()
    try:
        yield pair
    finally:
        pair.destroy()
