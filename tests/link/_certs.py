"""Test PKI generated at test time with ``cryptography``.

ISO 15118-2 profile: secp256r1 keys, ecdsa-with-SHA256 signatures, V2G root -> CPO Sub-CA 1
-> CPO Sub-CA 2 -> SECC leaf. ISO 15118-20: secp521r1 (ecdsa-with-SHA512) or Ed448, and an EV
(OEM) chain for mutual authentication. Nothing here is production PKI; it only has the shape
the TLS layer cares about (key types, chain order, CA flags).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import NameOID

_NOW = dt.datetime.now(dt.timezone.utc)


def _name(cn: str, o: str = "pnc-bridge test") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)])


def new_key(kind: str):
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(kind)


def _hash_for(key):
    if isinstance(key, ed448.Ed448PrivateKey):
        return None
    return hashes.SHA512() if isinstance(key.curve, ec.SECP521R1) else hashes.SHA256()


def issue(subject_cn: str, key, issuer_cert, issuer_key, *, ca: bool, path_len: int | None = None, days: int = 30):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else _name(subject_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - dt.timedelta(days=1))
        .not_valid_after(_NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=not ca, key_cert_sign=ca, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer_key = issuer_key if issuer_key is not None else key
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    return builder.sign(signer_key, _hash_for(signer_key))


@dataclass
class Chain:
    root: x509.Certificate
    root_key: object
    chain: tuple  # leaf, sub2, sub1
    key: object

    def write(self, directory: Path, stem: str) -> tuple[Path, Path, Path]:
        chain_path = directory / f"{stem}-chain.pem"
        key_path = directory / f"{stem}-key.pem"
        root_path = directory / f"{stem}-root.pem"
        chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain))
        key_path.write_bytes(
            self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        root_path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return chain_path, key_path, root_path


def make_chain(kind: str, prefix: str) -> Chain:
    """Root -> Sub-CA 1 -> Sub-CA 2 -> leaf, all keys of ``kind``."""
    root_key = new_key(kind)
    root = issue(f"{prefix} V2G Root", root_key, None, None, ca=True, path_len=2, days=3650)
    sub1_key = new_key(kind)
    sub1 = issue(f"{prefix} Sub-CA 1", sub1_key, root, root_key, ca=True, path_len=1)
    sub2_key = new_key(kind)
    sub2 = issue(f"{prefix} Sub-CA 2", sub2_key, sub1, sub1_key, ca=True, path_len=0)
    leaf_key = new_key(kind)
    leaf = issue(f"{prefix} leaf", leaf_key, sub2, sub2_key, ca=False)
    return Chain(root, root_key, (leaf, sub2, sub1), leaf_key)
