"""Josev (PyPI ``iso15118``) in its own virtual environment, as an independent peer.

Josev pins an old ``cryptography`` and pydantic 1, so it cannot share our interpreter's
packages. The venv is built once under ``$PNC_BRIDGE_CACHE`` (default
``~/.cache/pnc-bridge``) with pip from PyPI; tests call into it with a JSON script on stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

JOSEV_VERSION = "0.28.5"
# iso15118 0.28.5 reads marshmallow.__version_info__, which marshmallow 4 removed.
JOSEV_EXTRA = ["marshmallow==3.26.1"]


def josev_python() -> Path:
    """The venv's interpreter, building the venv if needed. Raises RuntimeError on failure."""
    cache = Path(os.environ.get("PNC_BRIDGE_CACHE", Path.home() / ".cache" / "pnc-bridge"))
    venv = cache / "josev-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import iso15118.shared.security"]
    if python.exists() and subprocess.run(probe, capture_output=True, timeout=120).returncode == 0:
        return python
    cache.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"iso15118=={JOSEV_VERSION}", *JOSEV_EXTRA],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"building the Josev venv failed: {' '.join(step)}\n{result.stderr[-2000:]}")
    if subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
        raise RuntimeError("Josev venv built but iso15118.shared.security does not import")
    return python


def run_josev(python: Path, script: str, payload: dict) -> dict:
    result = subprocess.run(
        [str(python), "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"Josev script failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
