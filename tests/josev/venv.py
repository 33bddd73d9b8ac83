"""Josev (PyPI ``iso15118``) in its own virtual environment, built by the test set-up.

Josev pins pydantic 1 and its own cryptography, so it cannot share our interpreter. The
venv lives in ``<repo>/.cache/josev-venv`` (``$PNC_BRIDGE_JOSEV_VENV`` overrides it) and is
made once with pip from PyPI: the wheel ``--no-deps`` plus exact pins of what it needs at
run time. Two of them are not what the wheel declares:

- ``aiofile`` (and its ``caio``): the EVCC imports it, the wheel does not declare it;
- ``packaging``: marshmallow 3 imports it.

``python3 -m tests.josev.venv`` builds it (``.ci/run`` does that before the tests); the
tests call :func:`josev_python`, which builds it on first use and says why when it cannot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JOSEV_VERSION = "0.31.2"
#: Exact run-time pins for iso15118 0.31.2 (its wheel asks for cryptography==44.0.0,
#: pydantic==1.10.21, environs 14, psutil 6, py4j 0.10.9).
PINS = (
    f"iso15118=={JOSEV_VERSION}",
    "pydantic==1.10.21",
    "typing-extensions==4.12.2",
    "py4j==0.10.9.9",
    "psutil==6.1.1",
    "environs==14.1.1",
    "marshmallow==3.26.1",
    "python-dotenv==1.0.1",
    "packaging==24.2",
    "cryptography==44.0.0",
    "cffi==1.17.1",
    "pycparser==2.22",
    "mypy-extensions==1.0.0",
    "types-psutil==6.1.0.20241221",
    "types-toml==0.10.8.20240310",
    "aiofile==3.9.0",
    "caio==0.9.22",
)
_PROBE = "import iso15118.evcc.main, iso15118.secc.main, aiofile"


def venv_dir() -> Path:
    return Path(os.environ.get("PNC_BRIDGE_JOSEV_VENV", REPO / ".cache" / "josev-venv"))


def josev_python(*, build: bool = True) -> Path:
    """The venv's interpreter, building the venv if needed. Raises RuntimeError with the
    reason when it cannot be built (no network to PyPI, no venv module, ...)."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", _PROBE], capture_output=True, timeout=120).returncode == 0:
        return python
    if not build:
        raise RuntimeError(f"no Josev venv at {venv} (build it with: python3 -m tests.josev.venv)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", *PINS],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"building the Josev venv failed: {' '.join(step[:4])} ...\n{result.stderr[-2000:]}")
    probe = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        raise RuntimeError(f"Josev venv built but does not import: {probe.stderr[-1500:]}")
    return python


if __name__ == "__main__":
    print(josev_python())
