"""ISO 15118-2 contract private key encryption: round trips, bad input, and both directions
against Josev's implementation (``iso15118.shared.security``) running in its own venv."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pnc_bridge.pki import ContractKeyError, decrypt_contract_private_key, encrypt_contract_private_key
from pnc_bridge.pki._certio import cert_der, key_pem

from ._josev import josev_python, run_josev


def _scalar(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


def test_round_trip_and_sizes(pki2):
    oem_key = pki2.key("oem_prov_leaf")
    contract_key = pki2.key("contract_leaf")
    message = encrypt_contract_private_key(contract_key, oem_key.public_key())
    assert len(message.dh_public_key) == 65 and message.dh_public_key[0] == 0x04
    assert len(message.encrypted_private_key) == 48
    recovered = decrypt_contract_private_key(
        message.encrypted_private_key, message.dh_public_key, oem_key,
        expected_public_key=pki2.contract_leaf.public_key(),
    )
    assert _scalar(recovered) == _scalar(contract_key)


def test_fresh_iv_and_ephemeral_key_each_time(pki2):
    oem_public = pki2.key("oem_prov_leaf").public_key()
    a = encrypt_contract_private_key(pki2.key("contract_leaf"), oem_public)
    b = encrypt_contract_private_key(pki2.key("contract_leaf"), oem_public)
    assert a.dh_public_key != b.dh_public_key and a.encrypted_private_key[:16] != b.encrypted_private_key[:16]


def test_wrong_recipient_is_detected(pki2):
    message = encrypt_contract_private_key(pki2.key("contract_leaf"), pki2.key("oem_prov_leaf").public_key())
    with pytest.raises(ContractKeyError):
        decrypt_contract_private_key(
            message.encrypted_private_key, message.dh_public_key, pki2.key("secc_leaf"),
            expected_public_key=pki2.contract_leaf.public_key(),
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda enc, dh: (enc[:47], dh),
        lambda enc, dh: (enc + b"\0", dh),
        lambda enc, dh: (enc, dh[:64]),
        lambda enc, dh: (enc, b"\x02" + dh[1:]),
        lambda enc, dh: (enc, b"\x04" + bytes(64)),  # not on the curve
    ],
)
def test_malformed_input_raises_contract_key_error(pki2, mutate):
    message = encrypt_contract_private_key(pki2.key("contract_leaf"), pki2.key("oem_prov_leaf").public_key())
    enc, dh = mutate(message.encrypted_private_key, message.dh_public_key)
    with pytest.raises(ContractKeyError):
        decrypt_contract_private_key(enc, dh, pki2.key("oem_prov_leaf"))


def test_only_secp256r1(pki2):
    with pytest.raises(ContractKeyError, match="secp256r1"):
        encrypt_contract_private_key(ec.generate_private_key(ec.SECP384R1()), pki2.key("oem_prov_leaf").public_key())


# --------------------------------------------------------------------------- #
# Josev, both directions                                                       #
# --------------------------------------------------------------------------- #

_JOSEV_DECRYPT = """
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.hazmat.primitives.asymmetric import ec
from iso15118.shared.security import decrypt_priv_key
p = json.load(sys.stdin)
oem_key = load_pem_private_key(p["oem_key_pem"].encode(), password=None)
dh = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(p["dh_public_key"]))
scalar = decrypt_priv_key(bytes.fromhex(p["encrypted"]), oem_key, dh)
print(json.dumps({"scalar": scalar.hex()}))
"""

_JOSEV_ENCRYPT = """
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from iso15118.shared.security import encrypt_priv_key
p = json.load(sys.stdin)
contract_key = load_pem_private_key(p["contract_key_pem"].encode(), password=None)
dh, encrypted = encrypt_priv_key(bytes.fromhex(p["oem_cert_der"]), contract_key)
print(json.dumps({"dh_public_key": dh.hex(), "encrypted": encrypted.hex()}))
"""


@pytest.fixture(scope="module")
def josev():
    try:
        return josev_python()
    except RuntimeError as exc:
        if os.environ.get("CI"):  # in CI the peer must be there
            raise
        pytest.skip(f"Josev venv unavailable here: {exc}")


@pytest.mark.josev
def test_josev_decrypts_what_we_encrypt(pki2, josev):
    contract_key = pki2.key("contract_leaf")
    oem_key = pki2.key("oem_prov_leaf")
    message = encrypt_contract_private_key(contract_key, oem_key.public_key())
    out = run_josev(josev, _JOSEV_DECRYPT, {
        "oem_key_pem": key_pem(oem_key).decode(),
        "dh_public_key": message.dh_public_key.hex(),
        "encrypted": message.encrypted_private_key.hex(),
    })
    assert int(out["scalar"], 16) == _scalar(contract_key)


@pytest.mark.josev
def test_we_decrypt_what_josev_encrypts(pki2, josev):
    contract_key = pki2.key("contract_leaf")
    out = run_josev(josev, _JOSEV_ENCRYPT, {
        "contract_key_pem": key_pem(contract_key).decode(),
        "oem_cert_der": cert_der(pki2.cert("oem_prov_leaf")).hex(),
    })
    recovered = decrypt_contract_private_key(
        bytes.fromhex(out["encrypted"]), bytes.fromhex(out["dh_public_key"]), pki2.key("oem_prov_leaf"),
        expected_public_key=pki2.contract_leaf.public_key(),
    )
    assert _scalar(recovered) == _scalar(contract_key)
