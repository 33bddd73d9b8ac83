"""OCPP certificate hash data, checked against ``openssl ocsp`` (CertID computed by OpenSSL)
and against the official OCPP 2.0.1 JSON schemas shipped in the ``ocpp`` package."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import ocpp
import pytest

from pnc_bridge.pki import certificate_hash_data, chain_hash_data
from pnc_bridge.pki._certio import chain_pem
from pnc_bridge.pki._profiles import CHAINS
from pnc_bridge.pki._testpki import issue, new_key

from .conftest import OPENSSL, Mint, needs_openssl

SCHEMAS = Path(ocpp.__file__).parent / "v201" / "schemas"


def _openssl_cert_id(tmp: Path, cert, issuer) -> dict[str, str]:
    (tmp / "c.pem").write_bytes(chain_pem([cert]))
    (tmp / "i.pem").write_bytes(chain_pem([issuer]))
    out = subprocess.run(
        [OPENSSL, "ocsp", "-sha256", "-issuer", str(tmp / "i.pem"), "-cert", str(tmp / "c.pem"),
         "-no_nonce", "-reqout", str(tmp / "req.der"), "-req_text"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    fields = dict(re.findall(r"^\s*(Issuer Name Hash|Issuer Key Hash|Serial Number): (\S+)", out, re.M))
    return fields


@needs_openssl
def test_hash_data_matches_openssl_for_every_certificate(any_pki, tmp_path):
    for names in CHAINS.values():
        for i, name in enumerate(names):
            cert = any_pki.cert(name)
            issuer_name = names[i + 1] if i + 1 < len(names) else None
            issuer = any_pki.cert(issuer_name) if issuer_name else next(
                c for c in (any_pki.cert(n) for n in any_pki.issued) if c.subject == cert.issuer
            )
            ours = certificate_hash_data(cert, issuer)
            theirs = _openssl_cert_id(tmp_path, cert, issuer)
            assert ours.hash_algorithm == "SHA256"
            assert ours.issuer_name_hash == theirs["Issuer Name Hash"].lower()
            assert ours.issuer_key_hash == theirs["Issuer Key Hash"].lower()
            assert int(ours.serial_number, 16) == int(theirs["Serial Number"], 16)


def test_serial_number_is_lower_hex_without_leading_zeroes(pki2):
    mint = Mint(pki2)
    template = mint.template("contract_leaf")
    key = new_key("iso2")
    cert = issue(template, public_key=key.public_key(), issuer=pki2.cert("mo_sub_ca2"),
                 issuer_key=pki2.key("mo_sub_ca2"), not_before=pki2.at, serial_number=0x0ABCDEF)
    data = certificate_hash_data(cert, pki2.cert("mo_sub_ca2"))
    assert data.serial_number == "abcdef"


def test_root_is_its_own_issuer_and_wrong_issuer_is_refused(pki2):
    data = certificate_hash_data(pki2.v2g_root, pki2.v2g_root)
    assert data.responder_url is None
    with pytest.raises(ValueError, match="not the issuer"):
        certificate_hash_data(pki2.contract_leaf, pki2.v2g_root)


def test_responder_url_from_aia_or_given(pki2):
    leaf = pki2.contract_leaf
    assert certificate_hash_data(leaf, pki2.cert("mo_sub_ca2")).responder_url.endswith("/mo_sub_ca2")
    assert certificate_hash_data(leaf, pki2.cert("mo_sub_ca2"), "http://ocsp.example/").responder_url == "http://ocsp.example/"


def _definition(schema_file: str, name: str) -> dict:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    return {**schema["definitions"][name], "definitions": schema["definitions"]}


def test_as_ocpp_matches_the_official_schemas(pki2):
    chain = [pki2.contract_leaf, pki2.cert("mo_sub_ca2"), pki2.cert("mo_sub_ca1"), pki2.mo_root]
    hash_schema = _definition("GetInstalledCertificateIdsResponse.json", "CertificateHashDataType")
    ocsp_schema = _definition("AuthorizeRequest.json", "OCSPRequestDataType")
    items = chain_hash_data(chain)
    assert len(items) == 4
    for item in items:
        data = item.as_ocpp()
        if item.responder_url is None:
            jsonschema.validate(data, hash_schema)
        else:
            jsonschema.validate(data, ocsp_schema)
            jsonschema.validate({k: v for k, v in data.items() if k != "responderURL"}, hash_schema)
