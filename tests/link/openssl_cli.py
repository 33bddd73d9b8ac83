"""Drive ``openssl s_client`` (an independent TLS client) from tests."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass


@dataclass
class SClientResult:
    stdout: bytes
    stderr: str
    returncode: int | None


def s_client(args: list[str], send: bytes = b"", expect: bytes = b"", *, prefix: list[str] | None = None,
             timeout: float = 15.0, quiet: bool = True) -> SClientResult:
    """Run ``openssl s_client ARGS -quiet``, write ``send``, and read until ``expect`` arrived,
    the process ended, or ``timeout`` passed (the process is then killed)."""
    cmd = (prefix or []) + ["openssl", "s_client", *(["-quiet"] if quiet else ["-ign_eof"]), *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    err = bytearray()
    got = threading.Event()

    def read_out() -> None:
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            out.extend(chunk)
            if expect and expect in out:
                got.set()
        got.set()

    def read_err() -> None:
        err.extend(proc.stderr.read())

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    try:
        if send:
            proc.stdin.write(send)
            proc.stdin.flush()
    except BrokenPipeError:
        pass
    got.wait(timeout)
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    end = time.monotonic() + 2
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return SClientResult(bytes(out), err.decode(errors="replace"), proc.returncode)
