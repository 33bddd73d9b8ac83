"""Josev's EVCC and SECC as processes, for interop tests and the turnaround benchmark.

- :func:`write_josev_pki` writes one of our test PKIs (``pnc_bridge.pki.TestPki``) in the
  directory layout Josev reads (``PKI_PATH/iso15118_2/certs``, ``.../private_keys`` with
  empty password files), so that Josev and we share one hierarchy: Josev's EV trusts our
  V2G root, carries our OEM provisioning certificate and signs with the contract key our CPS
  stand-in hands out.
- :class:`JosevEvcc` / :class:`JosevSecc` start ``iso15118.evcc.main`` /
  ``iso15118.secc.main`` in the venv (``tests.josev.venv``), optionally inside a network
  namespace, with their settings in the environment and a JSON file (EVCC), from an empty
  working directory so no stray ``.env`` is read. Output goes to a log file; ``wait()``
  returns the exit status and ``log()`` the text.
- Josev's EVCC modes are in :data:`EVCC_MODES` (ISO 15118-20 ones included for later use).

Facts about Josev 0.31.2 as a peer (checked here): its EV picks Contract whenever the SECC
offers it over TLS; over TLS it offers only ECDHE-ECDSA-AES128-SHA256 on P-256 (TLS 1.2);
it closes TCP 5 s after SessionStopRes and exits 0 after a successful session (it restarts
SDP after a failed one, so a failed session never exits on its own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

#: mode name -> EVCC JSON config (Josev's own keys)
EVCC_MODES: dict[str, dict] = {
    "din-dc": {"supportedProtocols": ["DIN_SPEC_70121"], "energyTransferMode": "DC_extended", "useTls": False},
    "iso2-ac-eim": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["AC"],
                    "energyTransferMode": "AC_three_phase_core", "useTls": False},
    "iso2-dc-eim": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                    "energyTransferMode": "DC_extended", "useTls": False},
    "iso2-dc-pnc": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                    "energyTransferMode": "DC_extended", "useTls": True, "enforceTls": True, "isCertInstallNeeded": True},
    "iso2-ac-pnc": {"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["AC"],
                    "energyTransferMode": "AC_three_phase_core", "useTls": True, "enforceTls": True,
                    "isCertInstallNeeded": True},
    # ISO 15118-20 (Josev's -20 EV; TLS 1.3 needs ENABLE_TLS_1_3 and a -20 PKI)
    "iso20-ac": {"supportedProtocols": ["ISO_15118_20_AC"], "supportedEnergyServices": ["AC"], "useTls": True},
    "iso20-dc": {"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"], "useTls": True},
    "iso20-ac-bpt": {"supportedProtocols": ["ISO_15118_20_AC"], "supportedEnergyServices": ["AC_BPT"], "useTls": True},
    "iso20-dc-bpt": {"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC_BPT"], "useTls": True},
}

#: our test-PKI name -> Josev's file stem (certificate "<stem>Cert.der", key "<stem>.key")
_NAMES = {
    "contract_leaf": "contractLeaf",
    "mo_sub_ca2": "moSubCA2",
    "mo_sub_ca1": "moSubCA1",
    "mo_root": "moRootCA",
    "secc_leaf": "seccLeaf",
    "cpo_sub_ca2": "cpoSubCA2",
    "cpo_sub_ca1": "cpoSubCA1",
    "v2g_root": "v2gRootCA",
    "cps_leaf": "cpsLeaf",
    "cps_sub_ca2": "cpsSubCA2",
    "cps_sub_ca1": "cpsSubCA1",
    "oem_prov_leaf": "oemLeaf",
    "oem_sub_ca2": "oemSubCA2",
    "oem_sub_ca1": "oemSubCA1",
    "oem_root": "oemRootCA",
}
_PASSWORD_FILES = ("seccLeafPassword.txt", "oemLeafPassword.txt", "contractLeafPassword.txt", "cpsLeafPassword.txt",
                   "moSubCA2LeafPassword.txt")


def write_josev_pki(pki, directory: Path) -> Path:
    """Write ``pki`` (a TestPki) in Josev's ISO 15118-2 layout under ``directory``; returns
    the directory for ``PKI_PATH``."""
    certs = directory / "iso15118_2" / "certs"
    keys = directory / "iso15118_2" / "private_keys"
    certs.mkdir(parents=True, exist_ok=True)
    keys.mkdir(parents=True, exist_ok=True)
    for name, stem in _NAMES.items():
        cert = pki.cert(name)
        (certs / f"{stem}Cert.der").write_bytes(cert.public_bytes(Encoding.DER))
        (certs / f"{stem}Cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        key = pki.key(name).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        (keys / f"{stem}.key").write_bytes(key)
    pem = lambda names: b"".join(pki.cert(n).public_bytes(Encoding.PEM) for n in names)  # noqa: E731
    (certs / "cpoCertChain.pem").write_bytes(pem(("secc_leaf", "cpo_sub_ca2", "cpo_sub_ca1")))
    (certs / "oemCertChain.pem").write_bytes(pem(("oem_prov_leaf", "oem_sub_ca2", "oem_sub_ca1")))
    for name in _PASSWORD_FILES:
        (keys / name).write_text("")  # keys are not encrypted
    return directory


@dataclass
class _Process:
    proc: subprocess.Popen
    log_path: Path
    workdir: tempfile.TemporaryDirectory

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout`` s."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGINT (Josev's own way out), then SIGKILL; safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.workdir.cleanup()


def _start(python: Path, module: str, args: Sequence[str], env: dict[str, str], netns: str | None, log_path: Path) -> _Process:
    workdir = tempfile.TemporaryDirectory(prefix="josev-")
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
                "PYTHONUNBUFFERED": "1", **env}
    prefix = ["ip", "netns", "exec", netns] if netns else []
    log = open(log_path, "wb")
    try:
        proc = subprocess.Popen([*prefix, str(python), "-m", module, *args], cwd=workdir.name, env=full_env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()
    return _Process(proc, log_path, workdir)


class JosevEvcc(_Process):
    """Josev's EV in ``mode`` (see :data:`EVCC_MODES`) on ``iface``."""

    @classmethod
    def start(cls, python: Path, mode: str, *, iface: str, pki_path: Path, log_path: Path, netns: str | None = None,
              loops: int = 5, overrides: dict | None = None, env: dict[str, str] | None = None) -> "JosevEvcc":
        config = {**EVCC_MODES[mode], "chargeLoopCycle": loops, **(overrides or {})}
        config_path = log_path.with_suffix(".evcc.json")
        config_path.write_text(json.dumps(config))
        env = {"NETWORK_INTERFACE": iface, "PKI_PATH": str(pki_path) + "/", "LOG_LEVEL": "INFO",
               "MESSAGE_LOG_JSON": "False", "MESSAGE_LOG_EXI": "False",
               # ISO 15118-20: TLS 1.3 with the EV's OEM certificate (mutual authentication)
               **({"ENABLE_TLS_1_3": "True"} if mode.startswith("iso20") else {}), **(env or {})}
        p = _start(python, "iso15118.evcc.main", [str(config_path)], env, netns, log_path)
        return cls(p.proc, p.log_path, p.workdir)


class JosevSecc(_Process):
    """Josev's SECC with its simulated EVSE on ``iface`` (EIM and PnC, -2 and DIN)."""

    @classmethod
    def start(cls, python: Path, *, iface: str, pki_path: Path, log_path: Path, netns: str | None = None,
              protocols: Sequence[str] = ("DIN_SPEC_70121", "ISO_15118_2"), auth_modes: Sequence[str] = ("EIM", "PNC"),
              env: dict[str, str] | None = None) -> "JosevSecc":
        env = {"NETWORK_INTERFACE": iface, "PKI_PATH": str(pki_path) + "/", "LOG_LEVEL": "INFO",
               "MESSAGE_LOG_JSON": "False", "MESSAGE_LOG_EXI": "False", "PROTOCOLS": ",".join(protocols),
               "AUTH_MODES": ",".join(auth_modes), "FREE_CHARGING_SERVICE": "False",
               # ISO 15118-20: TLS 1.3, the EV's OEM certificate checked
               **({"ENABLE_TLS_1_3": "True"} if any(p.startswith("ISO_15118_20") for p in protocols) else {}),
               **(env or {})}
        p = _start(python, "iso15118.secc.main", [], env, netns, log_path)
        return cls(p.proc, p.log_path, p.workdir)


@dataclass
class JosevRun:
    """What one Josev EVCC session against the bridge left: its log, the SECC's requests by
    name, the TransactionEvents, the CALLs at the CSMS (direction, action, payload) and the
    frames the CSMS emulator found schema-invalid."""

    log: str
    requests: "Counter[str]"
    events: list
    calls: list
    invalid: list


def run_josev_against_bridge(rig, josev: Path, mode: str, *, netns_pair, evse_loop, josev_pki: Path,
                             log_path: Path, loops: int, wait: float) -> JosevRun:
    """Start the bridge rig in the EVSE's namespace, run Josev's EVCC in ``mode`` in the EV's
    until it exits, and collect what both sides saw. Fails unless Josev's EVCC exited 0 after
    SessionStopRes (it also exits 0 after some failures: the log says what happened)."""
    requests: Counter = rig.requests_seen

    async def enter():
        await rig.__aenter__()

    evse_loop.run(enter())
    evcc = None
    try:
        evcc = JosevEvcc.start(josev, mode, iface=netns_pair.ev_if, pki_path=josev_pki, log_path=log_path,
                               netns=netns_pair.ev_ns, loops=loops)
        status = evcc.wait(wait)
        log = evcc.log()
        assert status == 0 and "SessionStopRes received" in log, f"Josev's EVCC (status {status}):\n{log[-4000:]}"

        async def outcome():
            await rig.wait_ended(30)
            await rig.wait_idle(30)
            return rig.tx_events(), [(r.direction, r.action, r.payload) for r in rig.csms.record if r.message_type == 2], \
                rig.csms.invalid_frames()

        events, calls, invalid = evse_loop.run(outcome(), timeout=90)
    finally:
        if evcc is not None:
            evcc.stop()
        evse_loop.run(rig.__aexit__(None, None, None), timeout=60)
    return JosevRun(log, requests, events, calls, invalid)


def counting_rig(*args, **kwargs):
    """A ``BridgeRig`` that counts the SECC's requests by message name (``rig.requests_seen``)."""
    from hil.demo_rig import BridgeRig
    from pnc_bridge.secc import message_name

    requests: Counter = Counter()

    def on_step(ctx, adapter, step):
        if step.request is not None:
            requests[message_name(step.request)] += 1

    service = dict(kwargs.pop("service", None) or {})
    service["on_step"] = on_step
    rig = BridgeRig(*args, service=service, **kwargs)
    rig.requests_seen = requests
    return rig
