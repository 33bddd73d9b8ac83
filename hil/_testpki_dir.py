"""Load a test PKI written by ``pnc-bridge pki test-pki DIR`` (or ``generate_test_pki``) back
into a :class:`pnc_bridge.pki.TestPki`, so that an EV emulator and a SECC in different
processes can share one hierarchy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pnc_bridge.pki import Purpose, TestPki, Variant
from pnc_bridge.pki._testpki import Issued

__all__ = ["TestPkiDirError", "load_test_pki"]


class TestPkiDirError(ValueError):
    __test__ = False


def load_test_pki(directory: str | Path) -> TestPki:
    out = Path(directory)
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise TestPkiDirError(f"{out} is not a test PKI directory (manifest.json: {exc})") from None
    issued = {}
    for name, entry in manifest.get("certificates", {}).items():
        pem, der, key = out / entry["pem"], out / entry["der"], out / entry["key"]
        try:
            cert = x509.load_pem_x509_certificate(pem.read_bytes())
            private = load_pem_private_key(key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise TestPkiDirError(f"{name}: {exc}") from None
        issued[name] = Issued(name, cert, private, pem, der, key)
    chains = {p: out / "chains" / f"{p.value}.pem" for p in Purpose if (out / "chains" / f"{p.value}.pem").exists()}
    return TestPki(
        out_dir=out,
        variant=Variant(manifest["variant"]),
        at=dt.datetime.fromisoformat(manifest["issued_at"]),
        emaid=manifest["emaid"],
        pcid=manifest["pcid"],
        issued=issued,
        chain_paths=chains,
    )
