"""The EXIficient oracle (../shared/tools/exi-oracle), run as a batch subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED

ORACLE = SHARED / "tools" / "exi-oracle" / "exi-oracle"


def available() -> str | None:
    """None when usable, else why not."""
    if not ORACLE.is_file():
        return f"EXI oracle not found at {ORACLE}"
    if shutil.which("java") is None or shutil.which("javac") is None:
        return "Java 17 (java, javac) is needed for the EXIficient oracle"
    return None


def require() -> None:
    why = available()
    if why:
        pytest.skip(why)


def run(mode: str, ns: str, items: list[str], *extra: str, timeout: float = 600) -> list[dict]:
    """Run one batch; each answer as a dict {hex|xml|..., error?}."""
    payload = "".join(json.dumps({"hex": i} if mode != "encode" else {"xml": i}) + "\n" for i in items)
    proc = subprocess.run(
        [str(ORACLE), mode, ns, "--jsonl", *extra],
        input=payload,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"exi-oracle {mode} {ns} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(out) != len(items):
        raise RuntimeError(f"exi-oracle answered {len(out)} of {len(items)} items: {proc.stderr[-2000:]}")
    return out


def jar() -> Path:
    """EXICodec.jar of the oracle build (building the oracle first if needed)."""
    import os
    from pathlib import Path

    candidates = []
    if os.environ.get("EXI_ORACLE_BUILD"):
        candidates.append(Path(os.environ["EXI_ORACLE_BUILD"]))
    candidates += [ORACLE.parent / "build", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "exi-oracle"]
    for _ in range(2):
        for c in candidates:
            if (c / "EXICodec.jar").is_file() and (c / "classes").is_dir():
                return c / "EXICodec.jar"
        run("decode", "apphand", ["8000"])  # triggers the oracle's own build
    raise RuntimeError("EXICodec.jar not found after building the oracle")
