"""``pnc-bridge pki ...`` end to end, in process (the concurrency test runs it as subprocesses)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from pnc_bridge.cli import main
from pnc_bridge.pki import fingerprint
from pnc_bridge.pki._certio import chain_pem
from pnc_bridge.pki._profiles import HIERARCHY
from pnc_bridge.pki._testpki import issue


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["pki", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "pki"
    assert main(["pki", "test-pki", str(out), "--json"]) == 0
    return out


def _json(out: str):
    return json.loads(out)


def test_test_pki_writes_pem_der_keys_chains(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    for name in HIERARCHY:
        entry = manifest["certificates"][name]
        for kind in ("pem", "der", "key"):
            assert (generated / entry[kind]).stat().st_size > 0
        der = (generated / entry["der"]).read_bytes()
        pem = (generated / entry["pem"]).read_bytes()
        assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(pem)
        assert (generated / entry["key"]).read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8


def test_test_pki_refuses_non_empty_dir_and_reports_progress(generated, capsys, tmp_path):
    status, _, err = run(capsys, "test-pki", str(generated))
    assert status == 2 and "not empty" in err
    status, out, err = run(capsys, "test-pki", str(tmp_path / "x"), "--variant", "iso20-ed448")
    assert status == 0 and "issued contract_leaf" in err and "iso20-ed448" in out


def test_store_workflow(generated, capsys, tmp_path):
    store = str(tmp_path / "store")
    assert run(capsys, "store", "init", "--store", store)[0] == 0
    # PEM, DER and a bundle.
    status, out, _ = run(capsys, "store", "add", "--store", store, "--kind", "mo", str(generated / "certs/mo_root.der"), "--json")
    assert status == 0 and len(_json(out)["added"]) == 1
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((generated / "certs/v2g_root.pem").read_bytes() + (generated / "certs/v2g_root.pem").read_bytes())
    status, out, _ = run(capsys, "store", "add", "--store", store, "--kind", "v2g", str(bundle), "--json")
    assert status == 0 and len(_json(out)["added"]) == 1 and len(_json(out)["already_present"]) == 1
    status, out, _ = run(capsys, "store", "add", "--store", store, "--kind", "csms", str(generated / "certs/csms_root.pem"))
    assert status == 0 and "added csms root" in out

    status, out, _ = run(capsys, "store", "list", "--store", store, "--json")
    listing = _json(out)
    assert status == 0 and {e["kind"] for e in listing["certificates"]} == {"mo", "v2g", "csms"}
    for e in listing["certificates"]:
        assert e["subject"] and e["issuer"] and len(e["fingerprint"]) == 64 and e["not_after"]
    assert listing["warnings"] == []

    # verify: exit 0 only when valid, the verdict as JSON.
    status, out, _ = run(capsys, "verify", "--store", store, "--purpose", "contract", str(generated / "chains/contract.pem"))
    assert status == 0 and _json(out) == {"valid": True, "response_code": None, "reason": _json(out)["reason"]}
    status, out, _ = run(capsys, "verify", "--store", store, "--purpose", "oem", str(generated / "chains/oem.pem"))
    assert status == 1 and _json(out)["response_code"] == "FAILED_CertChainError"
    status, out, _ = run(capsys, "verify", "--store", store, "--purpose", "contract", "--at", "2099-01-01T00:00:00Z",
                         str(generated / "chains/contract.pem"))
    assert status == 1 and _json(out)["response_code"] == "FAILED_CertificateExpired"

    # export, then remove.
    export = tmp_path / "mo.der"
    status, _, _ = run(capsys, "store", "export", "--store", store, "--kind", "mo", "--outform", "DER", "-out", str(export))
    assert status == 0 and export.read_bytes() == (generated / "certs/mo_root.der").read_bytes()
    mo_fp = fingerprint(x509.load_der_x509_certificate(export.read_bytes()))
    status, out, _ = run(capsys, "store", "remove", "--store", store, mo_fp[:12], "--json")
    assert status == 0 and _json(out)["removed"][0]["fingerprint"] == mo_fp
    status, out, _ = run(capsys, "verify", "--store", store, "--purpose", "contract", str(generated / "chains/contract.pem"))
    assert status == 1 and "unknown root" in _json(out)["reason"]


def test_list_warns_about_expiry(generated, capsys, tmp_path):
    store = str(tmp_path / "store")
    run(capsys, "store", "init", "--store", store)
    run(capsys, "store", "add", "--store", store, "--kind", "mo", str(generated / "certs/mo_root.pem"))
    not_after = x509.load_pem_x509_certificate((generated / "certs/mo_root.pem").read_bytes()).not_valid_after_utc
    soon = (not_after - dt.timedelta(days=10)).isoformat()
    status, out, err = run(capsys, "store", "list", "--store", store, "--at", soon)
    assert status == 0 and "within 30 days" in err and "MO Root CA" in out
    status, out, err = run(capsys, "store", "list", "--store", store, "--at", (not_after + dt.timedelta(days=1)).isoformat(), "--json")
    assert _json(out)["certificates"][0]["expired"] and "expired" in err


def test_csr_and_install_signed(generated, capsys, tmp_path):
    store = str(tmp_path / "store")
    run(capsys, "store", "init", "--store", store)
    run(capsys, "store", "add", "--store", store, "--kind", "v2g", str(generated / "certs/v2g_root.pem"))
    csr_path = tmp_path / "secc.csr"
    status, out, _ = run(capsys, "csr", "--store", store, "--use", "V2GCertificate", "--cn", "SECC-7", "--org", "CPO", "-out", str(csr_path))
    assert status == 0 and csr_path.read_text().startswith("-----BEGIN CERTIFICATE REQUEST-----")
    # The CPO CA signs it.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    sub2 = x509.load_pem_x509_certificate((generated / "certs/cpo_sub_ca2.pem").read_bytes())
    sub2_key = load_pem_private_key((generated / "keys/cpo_sub_ca2.key").read_bytes(), None)
    cert = issue(HIERARCHY["secc_leaf"][0].replace(common_name="SECC-7"), public_key=csr.public_key(), issuer=sub2,
                 issuer_key=sub2_key, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    sub1 = x509.load_pem_x509_certificate((generated / "certs/cpo_sub_ca1.pem").read_bytes())
    chain_file = tmp_path / "signed.pem"
    chain_file.write_bytes(chain_pem([cert, sub2, sub1]))
    status, out, _ = run(capsys, "install-signed", "--store", store, "--use", "V2GCertificate", str(chain_file), "--json")
    assert status == 0 and _json(out)["status"] == "Accepted"
    status, out, _ = run(capsys, "install-signed", "--store", store, "--use", "V2GCertificate",
                         str(generated / "chains/secc.pem"), "--json")
    assert status == 1 and _json(out)["status"] == "Rejected"
    status, out, _ = run(capsys, "store", "export", "--store", store, "--leaf", "secc")
    assert status == 0 and out.count("BEGIN CERTIFICATE") == 3


def test_hash_data(generated, capsys):
    status, out, _ = run(capsys, "hash-data", str(generated / "chains/contract.pem"), "--json")
    items = _json(out)
    assert status == 0 and len(items) == 2  # leaf and sub-CA 2; sub-CA 1's issuer is not in the file
    assert items[0]["hashAlgorithm"] == "SHA256" and items[0]["responderURL"].endswith("mo_sub_ca2")
    status, out, _ = run(capsys, "hash-data", str(generated / "certs/mo_sub_ca1.pem"), "--issuer",
                         str(generated / "certs/mo_root.pem"), "--json")
    assert status == 0 and len(_json(out)) == 1
    status, _, err = run(capsys, "hash-data", str(generated / "certs/mo_sub_ca1.pem"))
    assert status == 2 and "--issuer" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["store", "list", "--store", "/nonexistent/store"], "not a trust store"),
        (["verify", "--store", "{store}", "--purpose", "contract", "/nonexistent.pem"], "No such file"),
        (["verify", "--store", "{store}", "--purpose", "contract", "{garbage}"], "neither PEM nor"),
        (["verify", "--store", "{store}", "--purpose", "contract", "--at", "yesterday", "{chain}"], "ISO 8601"),
        (["store", "add", "--store", "{store}", "--kind", "mo", "{leaf}"], "not a root"),
        (["store", "remove", "--store", "{store}", "deadbeefdeadbeef"], "no root"),
        (["csr", "--store", "{store}", "--use", "V2GCertificate", "--cn", "X", "--org", "O", "--country", "Deutschland"], "countryName"),
    ],
)
def test_user_errors_are_one_line_exit_2(generated, capsys, tmp_path, args, words):
    store = tmp_path / "store"
    run(capsys, "store", "init", "--store", str(store))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01garbage")
    values = {"store": str(store), "garbage": str(garbage), "chain": str(generated / "chains/contract.pem"),
              "leaf": str(generated / "certs/contract_leaf.pem")}
    status, _, err = run(capsys, *[a.format(**values) for a in args])
    assert status == 2
    assert err.startswith("pnc-bridge: error:") and err.count("\n") == 1 and words in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [[], ["store"], ["verify"], ["csr"], ["install-signed"], ["hash-data"], ["test-pki"],
                                     ["store", "add"], ["store", "list"], ["store", "export"], ["store", "remove"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main(["pki", *command, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_module_paths_are_relative_to_nothing(generated):
    # The manifest holds paths relative to the output directory (portable test PKIs).
    manifest = json.loads((generated / "manifest.json").read_text())
    assert all(not Path(e["pem"]).is_absolute() for e in manifest["certificates"].values())
