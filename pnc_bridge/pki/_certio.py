"""Reading and writing certificates and keys: PEM or DER, single or bundles; atomic files.

Rules of this module:

- Every function that parses input from outside (a file, the CLI, the CSMS) raises
  :class:`PkiInputError` with a one-line reason on bad input; never a library traceback.
- :func:`atomic_write` is the only way this package writes a file: write to a temporary
  file in the same directory, fsync it, rename it over the target, fsync the directory.
  A reader sees the old file or the new one, never a part of either, and a crash at any
  point leaves one of the two.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_PEM_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


class PkiInputError(ValueError):
    """A certificate, key or chain given to the PKI cannot be used; the message says why."""


def load_certificates(data: bytes, *, source: str = "input") -> list[x509.Certificate]:
    """All certificates in ``data``: one DER certificate, or one or more PEM certificates.

    Raises :class:`PkiInputError` when there is none or one is malformed.
    """
    if not data.strip():
        raise PkiInputError(f"{source}: empty, expected a PEM or DER certificate")
    if _PEM_CERT_MARKER in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise PkiInputError(f"{source}: malformed PEM certificate ({exc})") from None
        return certs
    if data.lstrip().startswith(b"-----BEGIN"):
        label = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace")
        raise PkiInputError(f"{source}: expected a certificate, found {label}")
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise PkiInputError(f"{source}: neither PEM nor a DER certificate ({exc})") from None


def load_certificate_file(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PkiInputError(f"{path}: {exc.strerror or exc}") from None
    return load_certificates(data, source=str(path))


def load_private_key(data: bytes, *, source: str = "input") -> PrivateKeyTypes:
    """A private key from PEM (PKCS#8 or traditional) or DER; unencrypted."""
    if b"-----BEGIN" in data:
        loader = serialization.load_pem_private_key
    else:
        loader = serialization.load_der_private_key
    try:
        return loader(data, password=None)
    except TypeError:
        raise PkiInputError(f"{source}: the private key is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiInputError(f"{source}: not a usable private key ({exc})") from None


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key: PrivateKeyTypes) -> bytes:
    """PKCS#8 PEM, unencrypted (the store protects keys by file mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_der(public_key: object) -> bytes:
    """SubjectPublicKeyInfo DER: the form in which two keys are compared."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def chain_pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(cert_pem(c) for c in certs)


def subject_text(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably (write, fsync, rename, fsync dir)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target.parent)
