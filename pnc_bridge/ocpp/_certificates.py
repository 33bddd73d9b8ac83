"""The certificate port of the OCPP client, and a small file-based implementation of it.

Rules of this module:

- ``CertificateStore`` is the narrow interface the OCPP handlers need (install, delete
  and list certificates by OCPP certificate type; CSR creation and CertificateSigned;
  the files TLS needs). It speaks OCPP type names as plain strings and returns plain
  values, so any trust store can sit behind it. The service's real trust store is
  ``pnc_bridge.pki``; an adapter to it implements this Protocol.
- ``FileCertificateStore`` is a minimal implementation for a station without the PKI
  package and for the tests: one directory per certificate type, every write atomic
  (write, fsync, rename), private keys created here and never read back out over OCPP
  (A02.FR.05).
- Times are passed in (``at``, UTC); nothing here reads the clock.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

__all__ = [
    "CertificateHashData",
    "InstalledCertificate",
    "CertificateStore",
    "FileCertificateStore",
    "certificate_hash_data",
    "ROOT_TYPES",
    "SIGNED_TYPES",
]

#: InstallCertificateUseEnumType values (the roots the CSMS can install, M05).
ROOT_TYPES = ("V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "ManufacturerRootCertificate")

#: CertificateSigningUseEnumType values, and the root type their chain must end in.
SIGNED_TYPES = {"ChargingStationCertificate": "CSMSRootCertificate", "V2GCertificate": "V2GRootCertificate"}

_HASHES = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}


@dataclass(frozen=True)
class CertificateHashData:
    """CertificateHashDataType: identifies a certificate by its issuer and serial number."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def same_certificate(self, other: "CertificateHashData") -> bool:
        return (
            self.hash_algorithm == other.hash_algorithm
            and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
            and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
            and self.serial_number.lower().lstrip("0") == other.serial_number.lower().lstrip("0")
        )


@dataclass(frozen=True)
class InstalledCertificate:
    """CertificateHashDataChainType: ``certificate_type`` is a GetCertificateIdUseEnumType value."""

    certificate_type: str
    hash_data: CertificateHashData
    children: tuple[CertificateHashData, ...] = field(default_factory=tuple)


def certificate_hash_data(cert: x509.Certificate, issuer: x509.Certificate, algorithm: str = "SHA256") -> CertificateHashData:
    """The OCSP CertID fields of ``cert`` (RFC 6960 4.1.1), as OCPP's CertificateHashDataType."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, _HASHES[algorithm]()).build()
    return CertificateHashData(
        algorithm, request.issuer_name_hash.hex(), request.issuer_key_hash.hex(), format(request.serial_number, "x")
    )


class CertificateStore(Protocol):
    """What the OCPP client needs from the station's trust store."""

    def install_root(self, certificate_type: str, pem: str, at: datetime) -> tuple[str, str | None]:
        """InstallCertificate (M05): ``(InstallCertificateStatusEnumType value, reason code)``."""

    def delete(self, hash_data: CertificateHashData) -> str:
        """DeleteCertificate (M04): ``Accepted``, ``Failed`` or ``NotFound``."""

    def installed(self, certificate_types: Sequence[str] | None = None) -> list[InstalledCertificate]:
        """GetInstalledCertificateIds (M03); ``None`` means every type."""

    def count(self) -> int:
        """SecurityCtrlr.CertificateEntries: the number of installed certificates."""

    def create_csr(self, use: str, *, common_name: str, organization: str, country: str | None = None) -> str:
        """A02/A03: a new key pair for ``use`` and the PEM CSR for it; the key stays here."""

    def install_signed(self, use: str, chain_pem: str, at: datetime) -> tuple[str, str | None]:
        """CertificateSigned: ``(CertificateSignedStatusEnumType value, reason code)``."""

    def tls_client_files(self) -> tuple[Path, Path] | None:
        """(certificate chain PEM, private key PEM) for security profile 3, if installed."""

    def csms_root_pem(self) -> str | None:
        """The CSMSRootCertificate bundle the CSMS's server certificate is verified with."""

    def charging_station_certificate_valid(self, at: datetime) -> bool:
        """True if a ChargingStationCertificate valid at ``at`` is installed (A05.FR.03)."""


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_pems(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class FileCertificateStore:
    """``CertificateStore`` on a directory tree (see the module rules)."""

    def __init__(self, root: Path | str, *, max_entries: int = 50) -> None:
        self.root = Path(root)
        self.max_entries = max_entries
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ paths
    def _type_dir(self, certificate_type: str) -> Path:
        return self.root / certificate_type

    def _leaf_paths(self, use: str) -> tuple[Path, Path]:
        return self._type_dir(use) / "cert.pem", self._type_dir(use) / "key.pem"

    def _pending_key(self, use: str) -> Path:
        return self.root / "pending" / f"{use}.key.pem"

    def _roots(self, certificate_type: str) -> list[tuple[Path, x509.Certificate]]:
        folder = self._type_dir(certificate_type)
        found = []
        if folder.is_dir():
            for path in sorted(folder.glob("*.pem")):
                try:
                    certs = _load_pems(path.read_bytes())
                except ValueError:
                    continue
                if certs:
                    found.append((path, certs[0]))
        return found

    # ------------------------------------------------------------------ M05 install roots
    def install_root(self, certificate_type: str, pem: str, at: datetime) -> tuple[str, str | None]:
        if certificate_type not in ROOT_TYPES:
            return "Rejected", "UnsupportedParam"
        try:
            certs = _load_pems(pem.encode())
        except ValueError:
            return "Rejected", "InvalidCertificate"
        if len(certs) != 1:
            return "Rejected", "InvalidCertificate"
        cert = certs[0]
        at = _utc(at)
        if not (cert.not_valid_before_utc <= at < cert.not_valid_after_utc) or not _is_ca(cert):
            return "Rejected", "InvalidCertificate"  # M05.FR.07
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature):  # not self-signed: a root must be
            return "Rejected", "InvalidCertificate"
        name = cert.fingerprint(hashes.SHA256()).hex()[:32] + ".pem"
        target = self._type_dir(certificate_type) / name
        if not target.exists() and self.count() >= self.max_entries:
            return "Rejected", "OutOfStorage"  # M05.FR.06
        try:
            _atomic_write(target, cert.public_bytes(serialization.Encoding.PEM))  # M05.FR.17: replace
        except OSError:
            return "Failed", "OutOfStorage"
        return "Accepted", None

    # ------------------------------------------------------------------ M04 delete
    def delete(self, hash_data: CertificateHashData) -> str:
        if hash_data.hash_algorithm not in _HASHES:
            return "NotFound"
        cs_leaf = self._leaf_with_issuer("ChargingStationCertificate")
        if cs_leaf and certificate_hash_data(*cs_leaf, hash_data.hash_algorithm).same_certificate(hash_data):
            return "Failed"  # M04.FR.06
        for certificate_type in ROOT_TYPES:
            for path, cert in self._roots(certificate_type):
                if certificate_hash_data(cert, cert, hash_data.hash_algorithm).same_certificate(hash_data):
                    try:
                        path.unlink()
                    except OSError:
                        return "Failed"
                    return "Accepted"
        v2g = self._leaf_with_issuer("V2GCertificate")
        if v2g and certificate_hash_data(*v2g, hash_data.hash_algorithm).same_certificate(hash_data):
            for path in self._leaf_paths("V2GCertificate"):
                path.unlink(missing_ok=True)
            return "Accepted"
        return "NotFound"

    # ------------------------------------------------------------------ M03 list
    def installed(self, certificate_types: Sequence[str] | None = None) -> list[InstalledCertificate]:
        wanted = set(certificate_types or (*ROOT_TYPES, "V2GCertificateChain"))
        result: list[InstalledCertificate] = []
        for certificate_type in ROOT_TYPES:
            if certificate_type in wanted:
                for _, cert in self._roots(certificate_type):
                    result.append(InstalledCertificate(certificate_type, certificate_hash_data(cert, cert)))
        if "V2GCertificateChain" in wanted:
            chain = self._chain("V2GCertificate")
            if chain:
                hashes_ = [certificate_hash_data(c, i) for c, i in chain]
                # M03.FR.05: sub-CA certificates are children of the V2G certificate.
                result.append(InstalledCertificate("V2GCertificateChain", hashes_[0], tuple(hashes_[1:])))
        return result

    def count(self) -> int:
        total = sum(len(self._roots(t)) for t in ROOT_TYPES)
        total += sum(1 for use in SIGNED_TYPES if self._leaf_paths(use)[0].exists())
        return total

    def _chain(self, use: str) -> list[tuple[x509.Certificate, x509.Certificate]]:
        """[(certificate, its issuer)] for the installed chain of ``use``, leaf first."""
        cert_path, _ = self._leaf_paths(use)
        if not cert_path.exists():
            return []
        try:
            certs = _load_pems(cert_path.read_bytes())
        except ValueError:
            return []
        roots = [c for _, c in self._roots(SIGNED_TYPES[use])]
        pairs = []
        for index, cert in enumerate(certs):
            issuer = certs[index + 1] if index + 1 < len(certs) else None
            if issuer is None:
                issuer = next((r for r in roots if r.subject == cert.issuer), cert)
            pairs.append((cert, issuer))
        return pairs

    def _leaf_with_issuer(self, use: str) -> tuple[x509.Certificate, x509.Certificate] | None:
        chain = self._chain(use)
        return chain[0] if chain else None

    # ------------------------------------------------------------------ A02/A03 CSR and CertificateSigned
    def create_csr(self, use: str, *, common_name: str, organization: str, country: str | None = None) -> str:
        if use not in SIGNED_TYPES:
            raise ValueError(f"cannot create a CSR for {use}")
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        if country:
            attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
        if use == "V2GCertificate":
            # ISO 15118-2 SECC certificate: DomainComponent "CPO".
            attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "CPO"))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(attributes))
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _atomic_write(self._pending_key(use), key_pem, mode=0o600)
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def install_signed(self, use: str, chain_pem: str, at: datetime) -> tuple[str, str | None]:
        if use not in SIGNED_TYPES:
            return "Rejected", "UnsupportedParam"
        try:
            certs = _load_pems(chain_pem.encode())
        except ValueError:
            return "Rejected", "InvalidCertificate"
        if not certs:
            return "Rejected", "InvalidCertificate"
        leaf = certs[0]
        at = _utc(at)
        if at >= leaf.not_valid_after_utc:
            return "Rejected", "InvalidCertificate"  # A02.FR.06: validity period
        pending = self._pending_key(use)
        if not pending.exists():
            return "Rejected", "InvalidCertificate"  # no CSR of ours is waiting for it
        key = serialization.load_pem_private_key(pending.read_bytes(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != public:
            return "Rejected", "InvalidCertificate"
        roots = [c for _, c in self._roots(SIGNED_TYPES[use])]
        if not roots:
            return "Rejected", "InvalidCertificate"
        # Check the chain at a time inside the leaf's validity (A02.FR.08 allows a
        # notBefore in the future: the station switches to it later).
        verify_at = max(at, leaf.not_valid_before_utc)
        try:
            verifier = (
                PolicyBuilder()
                .store(Store(roots))
                .time(verify_at)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier()
            )
            verifier.verify(leaf, certs[1:])
        except VerificationError:
            return "Rejected", "InvalidCertificate"
        cert_path, key_path = self._leaf_paths(use)
        chain_bytes = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        key_bytes = pending.read_bytes()
        _atomic_write(key_path, key_bytes, mode=0o600)
        _atomic_write(cert_path, chain_bytes)
        pending.unlink(missing_ok=True)
        return "Accepted", None

    # ------------------------------------------------------------------ TLS
    def tls_client_files(self) -> tuple[Path, Path] | None:
        cert_path, key_path = self._leaf_paths("ChargingStationCertificate")
        if cert_path.exists() and key_path.exists():
            return cert_path, key_path
        return None

    def csms_root_pem(self) -> str | None:
        roots = self._roots("CSMSRootCertificate")
        if not roots:
            return None
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for _, c in roots)

    def charging_station_certificate_valid(self, at: datetime) -> bool:
        leaf = self._leaf_with_issuer("ChargingStationCertificate")
        if leaf is None:
            return False
        at = _utc(at)
        return leaf[0].not_valid_before_utc <= at < leaf[0].not_valid_after_utc

    # ------------------------------------------------------------------ provisioning (local, not OCPP)
    def provision_charging_station_certificate(self, chain_pem: bytes, key_pem: bytes) -> None:
        """Install the factory ChargingStationCertificate and key (the installer's step, A00.FR.801)."""
        _load_pems(chain_pem)
        serialization.load_pem_private_key(key_pem, password=None)
        cert_path, key_path = self._leaf_paths("ChargingStationCertificate")
        _atomic_write(key_path, key_pem, mode=0o600)
        _atomic_write(cert_path, chain_pem)
