"""``pnc-bridge exi verify-signature``: JSON verdicts, exit status 0 only when valid,
one-line errors (status 2) for the user's mistakes, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge import exi, xmldsig
from pnc_bridge.cli import main
from pnc_bridge.xmldsig import Standard
from tests.conftest import REPO
from tests.exi.test_fragments import SIGNED, SIGNER, _session_certs
from tests.xmldsig.conftest import validation_time
from tests.xmldsig.messages import GEN_CHALLENGE, signer_key, unsigned


@pytest.fixture(autouse=True)
def _needs_vectors(shared_dir):
    """Most of these run on captured signed messages from ../shared/exi-vectors."""


def _vector(name):
    return next(v for v in SIGNED if v["msg"] == name)


def _pem(tmp_path, name, ders):
    from cryptography import x509

    path = tmp_path / name
    path.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM) for d in ders))
    return str(path)


def run(capsys, *argv):
    status = main(["exi", "verify-signature", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_valid_capture_with_cert(capsys, tmp_path):
    v = _vector("AuthorizationReq")
    cert = _pem(tmp_path, "contract.pem", _session_certs(v, SIGNER["AuthorizationReq"])[:1])
    status, out, err = run(capsys, "--schema", "iso2", "--cert", cert, v["hex"])
    assert status == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "Valid" and doc["valid"] is True
    assert doc["message"] == "AuthorizationReq" and doc["references"] == ["#ID1"]
    assert doc["response_code"] is None


def test_tampered_capture(capsys, tmp_path):
    v = _vector("MeteringReceiptReq")
    msg = exi.decode("iso2", bytes.fromhex(v["hex"]))
    msg.body.body_element.meter_info.meter_reading = (msg.body.body_element.meter_info.meter_reading or 0) + 1
    cert = _pem(tmp_path, "contract.pem", _session_certs(v, SIGNER["MeteringReceiptReq"])[:1])
    status, out, _ = run(capsys, "--schema", "iso2", "--cert", cert, exi.encode("iso2", msg).hex())
    assert status == 1
    doc = json.loads(out)
    assert doc["verdict"] == "DigestMismatch" and doc["ref"] == "#id1"
    assert doc["response_code"] == "FAILED_MeteringSignatureNotValid"


def test_message_that_carries_its_signer(capsys):
    v = _vector("CertificateInstallationRes")
    status, out, _ = run(capsys, "--schema", "iso2", v["hex"])
    assert status == 0 and json.loads(out)["references"] == ["#ID1", "#ID2", "#ID3", "#ID4"]


def test_v2gtp_frame_accepted(capsys):
    v = _vector("CertificateInstallationReq")
    payload = bytes.fromhex(v["hex"])
    frame = b"\x01\xfe\x80\x01" + len(payload).to_bytes(4, "big") + payload
    status, out, _ = run(capsys, "--schema", "iso2", frame.hex())
    assert status == 0, out


def test_user_errors_are_one_line(capsys, tmp_path):
    v = _vector("AuthorizationReq")
    status, out, err = run(capsys, "--schema", "iso2", v["hex"])
    assert status == 2 and "pass --cert or --chain" in err and "Traceback" not in err
    status, _, err = run(capsys, "--schema", "iso2", "--cert", str(tmp_path / "missing.pem"), v["hex"])
    assert status == 2 and "missing.pem" in err
    two = _pem(tmp_path, "two.pem", _session_certs(v, SIGNER["AuthorizationReq"])[:1] * 2)
    status, _, err = run(capsys, "--schema", "iso2", "--cert", two, v["hex"])
    assert status == 2 and "--chain" in err
    status, _, err = run(capsys, "--schema", "iso2", "--at", "2030-01-01", v["hex"])
    assert status == 2 and "--store" in err
    status, _, err = run(capsys, "--schema", "iso2", "--store", str(tmp_path), "--chain", two, v["hex"])
    assert status == 2 and "trust store" in err
    status, _, err = run(capsys, "--schema", "iso2", "zz")
    assert status == 1 and "hex" in err
    status, _, err = run(capsys, "--schema", "iso2", "8000")
    assert status == 1 and "cannot decode" in err


def test_iso20_with_store_and_challenge(capsys, pkis, stores, tmp_path):
    for variant in ("iso20", "iso20-ed448"):
        pki = pkis[variant]
        msg = xmldsig.sign_message(unsigned(Standard.ISO15118_20, "AuthorizationReq", pki), signer_key(Standard.ISO15118_20, "AuthorizationReq", pki))
        hexed = exi.encode("iso20-common", msg).hex()
        at = validation_time(pki).isoformat()
        store = str(stores[variant].path)
        status, out, err = run(capsys, "--schema", "iso20-common", "--store", store, "--at", at, "--gen-challenge", GEN_CHALLENGE.hex(), hexed)
        assert status == 0, err
        assert json.loads(out)["signature_method"] in (xmldsig.ECDSA_SHA512, xmldsig.EDDSA_ED448)
        status, out, _ = run(capsys, "--schema", "iso20-common", "--gen-challenge", "00" * 16, hexed)
        assert status == 1 and json.loads(out)["response_code"] == "WARNING_ChallengeInvalid"
        other = str(stores["iso2"].path)
        status, out, _ = run(capsys, "--schema", "iso20-common", "--store", other, "--at", at, hexed)
        doc = json.loads(out)
        assert status == 1 and doc["verdict"] == "CertificateInvalid" and doc["response_code"] == "FAILED_SignatureError"


def test_batch_from_stdin(capsys, monkeypatch):
    good = _vector("CertificateUpdateRes")["hex"]
    bad = bytearray(bytes.fromhex(good))
    bad[-40] ^= 0x01
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{good}\n\n{bad.hex()}\nnothex\n"))
    status, out, _ = run(capsys, "--schema", "iso2", "-")
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 1 and len(lines) == 3
    assert lines[0]["valid"] is True and lines[1]["valid"] is False and "error" in lines[2]


def test_entry_point_and_help(tmp_path):
    """The installed command's way in: python -m pnc_bridge (a subprocess, no shared state)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    v = _vector("CertificateInstallationReq")
    proc = subprocess.run(
        [sys.executable, "-m", "pnc_bridge", "exi", "verify-signature", "--schema", "iso2", v["hex"]],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "Valid"
    helptext = subprocess.run(
        [sys.executable, "-m", "pnc_bridge", "exi", "verify-signature", "--help"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    ).stdout
    assert "--cert" in helptext and "--chain" in helptext and "Exit status" in helptext


@pytest.mark.parametrize("schema", ["iso20-dc", "iso20-ac"])
def test_unsigned_iso20_messages_say_no_signature(capsys, schema):
    from tests.exi.vectors import load

    v = next(x for x in load(schemas=(schema,)) if not x.get("negative"))
    status, out, _ = run(capsys, "--schema", schema, v["hex"])
    assert status == 1 and json.loads(out)["verdict"] == "NoSignature"
