"""ISO 15118-2 contract private key encryption (CertificateInstallationRes, CertificateUpdateRes).

What ISO 15118-2 specifies, and what this module does step by step:

1. ECDH on secp256r1 between an ephemeral key pair made for this one message (its public
   half travels as ``DHpublickey``, 65 bytes: the uncompressed point ``04 || X || Y``) and
   the EV's key: the OEM provisioning certificate's key for CertificateInstallation, the
   old contract certificate's key for CertificateUpdate. The shared secret Z is the
   X coordinate (32 bytes).
2. Key derivation: the concatenation KDF of NIST SP 800-56A (section 5.8.1) with SHA-256,
   keydatalen 128 bits, and OtherInfo = AlgorithmID ``0x01`` || PartyUInfo ``0x55`` ('U')
   || PartyVInfo ``0x56`` ('V'). ``cryptography``'s ``ConcatKDFHash`` is that KDF.
3. AES-128-CBC over the contract private key's scalar as 32 big-endian bytes (two
   blocks, so no padding), with a random 16-byte IV that is prepended:
   ``ContractSignatureEncryptedPrivateKey`` = IV (16) || ciphertext (32) = 48 bytes, the
   ``maxLength`` of ``privateKeyType`` in the -2 XSD.

The test suite checks both directions against Josev (``iso15118`` on PyPI), run in its own
virtual environment.

ISO 15118-20 (SECP521 / X448 with AES-GCM, ``SECP521_EncryptedPrivateKey`` 94 bytes,
``X448_EncryptedPrivateKey`` 84 bytes) is not implemented: its KDF inputs and the
authenticated data are not available from public material we could check, and a guess
would interoperate with nobody.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_OTHER_INFO = bytes([0x01, 0x55, 0x56])  # AlgorithmID, PartyUInfo 'U', PartyVInfo 'V'
_KEY_BYTES = 16  # AES-128
_IV_BYTES = 16
_SCALAR_BYTES = 32  # secp256r1 private scalar
ENCRYPTED_KEY_BYTES = _IV_BYTES + _SCALAR_BYTES  # 48
DH_PUBLIC_KEY_BYTES = 65


class ContractKeyError(ValueError):
    """The encrypted contract key, the DH public key or a key given is unusable."""


@dataclass(frozen=True)
class EncryptedContractKey:
    dh_public_key: bytes  # DHpublickey: 65-byte uncompressed secp256r1 point
    encrypted_private_key: bytes  # ContractSignatureEncryptedPrivateKey: IV || ciphertext, 48 bytes


def _require_p256(key: object, what: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise ContractKeyError(f"{what} must be a secp256r1 key (ISO 15118-2)")


def _session_key(private_key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    shared_secret = private_key.exchange(ec.ECDH(), peer)
    return ConcatKDFHash(hashes.SHA256(), _KEY_BYTES, _OTHER_INFO).derive(shared_secret)


def encrypt_contract_private_key(
    contract_key: ec.EllipticCurvePrivateKey,
    recipient_public_key: ec.EllipticCurvePublicKey,
    *,
    ephemeral_key: ec.EllipticCurvePrivateKey | None = None,
    iv: bytes | None = None,
) -> EncryptedContractKey:
    """Encrypt ``contract_key`` for the EV holding the private half of
    ``recipient_public_key`` (OEM provisioning key, or the old contract key).

    ``ephemeral_key`` and ``iv`` are for reproducible tests only; leave them out.
    """
    _require_p256(contract_key, "the contract key")
    _require_p256(recipient_public_key, "the recipient's key")
    ephemeral = ephemeral_key or ec.generate_private_key(ec.SECP256R1())
    _require_p256(ephemeral, "the ephemeral key")
    iv = os.urandom(_IV_BYTES) if iv is None else iv
    if len(iv) != _IV_BYTES:
        raise ContractKeyError(f"IV must be {_IV_BYTES} bytes")
    scalar = contract_key.private_numbers().private_value.to_bytes(_SCALAR_BYTES, "big")
    encryptor = Cipher(algorithms.AES(_session_key(ephemeral, recipient_public_key)), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(scalar) + encryptor.finalize()
    dh_public = ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return EncryptedContractKey(dh_public, iv + ciphertext)


def decrypt_contract_private_key(
    encrypted_private_key: bytes,
    dh_public_key: bytes,
    recipient_private_key: ec.EllipticCurvePrivateKey,
    *,
    expected_public_key: ec.EllipticCurvePublicKey | None = None,
) -> ec.EllipticCurvePrivateKey:
    """Recover the contract private key (what the EV does with CertificateInstallationRes).

    ``expected_public_key`` (the new contract certificate's key), when given, must match;
    a wrong recipient key or a corrupted message then fails here rather than later.
    Raises :class:`ContractKeyError`.
    """
    _require_p256(recipient_private_key, "the recipient's key")
    if len(encrypted_private_key) != ENCRYPTED_KEY_BYTES:
        raise ContractKeyError(
            f"encrypted private key must be {ENCRYPTED_KEY_BYTES} bytes (IV || ciphertext), "
            f"got {len(encrypted_private_key)}"
        )
    if len(dh_public_key) != DH_PUBLIC_KEY_BYTES or dh_public_key[0] != 0x04:
        raise ContractKeyError("DHpublickey must be a 65-byte uncompressed secp256r1 point")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public_key)
    except ValueError:
        raise ContractKeyError("DHpublickey is not a point on secp256r1") from None
    iv, ciphertext = encrypted_private_key[:_IV_BYTES], encrypted_private_key[_IV_BYTES:]
    decryptor = Cipher(algorithms.AES(_session_key(recipient_private_key, peer)), modes.CBC(iv)).decryptor()
    scalar = int.from_bytes(decryptor.update(ciphertext) + decryptor.finalize(), "big")
    try:
        key = ec.derive_private_key(scalar, ec.SECP256R1())
    except ValueError:
        raise ContractKeyError("decryption gave no valid secp256r1 private key (wrong key or corrupted data)") from None
    if expected_public_key is not None:
        fmt = (Encoding.X962, PublicFormat.UncompressedPoint)
        if key.public_key().public_bytes(*fmt) != expected_public_key.public_bytes(*fmt):
            raise ContractKeyError("the decrypted key does not match the contract certificate")
    return key
