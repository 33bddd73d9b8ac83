"""The PKI trust store behind the OCPP client's ``CertificateStore`` port.

Rules of this module:

- :class:`TrustStoreCertificates` implements ``pnc_bridge.ocpp.CertificateStore`` on a
  ``pnc_bridge.pki.TrustStore``: OCPP certificate types map to the store's root kinds and
  leaf slots, every change is one atomic snapshot of the store, and the CLI
  (``pnc-bridge pki store ...``) and the OCPP side see the same certificates.
- Checks are the PKI's: a root must be a self-signed CA certificate valid at ``at``
  (M05.FR.07 as the OCPP client's own store applies it); a signed chain is installed only
  when its leaf carries the key of the last CSR (or the key in use) and it validates for
  its purpose (``pnc_bridge.pki.install_signed``).
- The answers are OCPP's values (status, reason code); the reasons are logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge.pki import issuing_root
from pnc_bridge.ocpp import CertificateHashData, InstalledCertificate, certificate_hash_data
from pnc_bridge.pki import CsrError, LeafSlot, RootKind, StoreError, TrustStore, create_csr, fingerprint, install_signed

__all__ = ["OCPP_ROOT_KINDS", "TrustStoreCertificates"]

log = logging.getLogger("pnc_bridge.bridge")

#: OCPP InstallCertificateUseEnumType / GetCertificateIdUseEnumType -> trust-store root kind.
#: ManufacturerRootCertificate (firmware signing) has no place in the ISO 15118 trust store.
OCPP_ROOT_KINDS: dict[str, RootKind] = {
    "V2GRootCertificate": RootKind.V2G,
    "MORootCertificate": RootKind.MO,
    "CSMSRootCertificate": RootKind.CSMS,
    "OEMRootCertificate": RootKind.OEM,  # OCPP 2.1
}
#: CertificateSigningUseEnumType -> trust-store slot (V2G20Certificate: OCPP 2.1, the
#: ISO 15118-20 SECC certificate, secp521r1).
_SLOTS = {"ChargingStationCertificate": LeafSlot.CHARGING_STATION, "V2GCertificate": LeafSlot.SECC,
          "V2G20Certificate": LeafSlot.SECC20}


def _utc(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


class TrustStoreCertificates:
    """``CertificateStore`` (OCPP) over a :class:`pnc_bridge.pki.TrustStore`."""

    def __init__(self, store: TrustStore, *, max_entries: int = 50) -> None:
        self.store = store
        self.max_entries = max_entries

    # ------------------------------------------------------------------ M05 install roots
    def install_root(self, certificate_type: str, pem: str, at: dt.datetime) -> tuple[str, str | None]:
        kind = OCPP_ROOT_KINDS.get(certificate_type)
        if kind is None:
            return "Rejected", "UnsupportedParam"
        try:
            certs = x509.load_pem_x509_certificates(pem.encode())
        except ValueError:
            return "Rejected", "InvalidCertificate"
        if len(certs) != 1:
            return "Rejected", "InvalidCertificate"
        cert, at = certs[0], _utc(at)
        if not (cert.not_valid_before_utc <= at < cert.not_valid_after_utc) or not _is_ca(cert):
            log.warning("InstallCertificate %s refused: not a CA certificate valid now", certificate_type)
            return "Rejected", "InvalidCertificate"
        present = {r.fingerprint for r in self.store.roots(kind)}
        if fingerprint(cert) not in present and self.count() >= self.max_entries:
            return "Rejected", "OutOfStorage"
        try:
            self.store.add_roots(kind, [cert])
        except StoreError as exc:
            log.warning("InstallCertificate %s refused: %s", certificate_type, exc)
            return "Rejected", "InvalidCertificate"
        except OSError as exc:
            log.error("InstallCertificate %s: cannot write the trust store: %s", certificate_type, exc)
            return "Failed", "OutOfStorage"
        log.info("installed %s %s", certificate_type, cert.subject.rfc4514_string())
        return "Accepted", None

    # ------------------------------------------------------------------ M04 delete
    def delete(self, hash_data: CertificateHashData) -> str:
        try:
            snapshot = self.store.snapshot()
        except StoreError:
            return "Failed"
        cs = snapshot.leaves.get(LeafSlot.CHARGING_STATION)
        if cs is not None and self._matches(cs.chain, hash_data):
            return "Failed"  # M04.FR.06: not the certificate the station connects with
        for root in snapshot.roots:
            if self._same(root.certificate, root.certificate, hash_data):
                try:
                    self.store.remove_roots(root.fingerprint, root.kind)
                except (StoreError, OSError):
                    return "Failed"
                log.info("deleted %s root %s", root.kind.value, root.certificate.subject.rfc4514_string())
                return "Accepted"
        secc = snapshot.leaves.get(LeafSlot.SECC)
        if secc is not None and self._matches(secc.chain, hash_data):
            try:
                self.store.mutate(lambda draft: (draft.remove("secc/chain.pem"), draft.remove("secc/key.pem")))
            except (StoreError, OSError):
                return "Failed"
            log.info("deleted the V2G (SECC) certificate")
            return "Accepted"
        return "NotFound"

    def _same(self, cert: x509.Certificate, issuer: x509.Certificate, hash_data: CertificateHashData) -> bool:
        try:
            return certificate_hash_data(cert, issuer, hash_data.hash_algorithm).same_certificate(hash_data)
        except (KeyError, ValueError):
            return False

    def _matches(self, chain: Sequence[x509.Certificate], hash_data: CertificateHashData) -> bool:
        leaf = chain[0]
        issuer = chain[1] if len(chain) > 1 else self._issuer(leaf)
        return issuer is not None and self._same(leaf, issuer, hash_data)

    def _issuer(self, cert: x509.Certificate) -> x509.Certificate | None:
        return issuing_root(cert, [r.certificate for r in self.store.roots()])

    # ------------------------------------------------------------------ M03 list
    def installed(self, certificate_types: Sequence[str] | None = None) -> list[InstalledCertificate]:
        wanted = set(certificate_types or (*OCPP_ROOT_KINDS, "V2GCertificateChain"))
        out: list[InstalledCertificate] = []
        snapshot = self.store.snapshot()
        for ocpp_type, kind in OCPP_ROOT_KINDS.items():
            if ocpp_type in wanted:
                for root in snapshot.roots:
                    if root.kind is kind:
                        out.append(InstalledCertificate(ocpp_type, certificate_hash_data(root.certificate, root.certificate)))
        secc = snapshot.leaves.get(LeafSlot.SECC)
        if "V2GCertificateChain" in wanted and secc is not None:
            chain = list(secc.chain)
            pairs = []
            for i, cert in enumerate(chain):
                issuer = chain[i + 1] if i + 1 < len(chain) else (self._issuer(cert) or cert)
                pairs.append(certificate_hash_data(cert, issuer))
            # M03.FR.05: the sub-CA certificates are children of the V2G certificate
            out.append(InstalledCertificate("V2GCertificateChain", pairs[0], tuple(pairs[1:])))
        return out

    def count(self) -> int:
        snapshot = self.store.snapshot()
        return len(snapshot.roots) + len(snapshot.leaves)

    # ------------------------------------------------------------------ A02/A03
    def create_csr(self, use: str, *, common_name: str, organization: str, country: str | None = None) -> str:
        if use not in _SLOTS:
            raise ValueError(f"cannot create a CSR for {use}")
        try:
            return create_csr(self.store, use, common_name=common_name, organization=organization, country=country,
                              variant="iso20" if use == "V2G20Certificate" else "iso2")
        except CsrError as exc:
            raise ValueError(f"{use} CSR: {exc}") from None

    def install_signed(self, use: str, chain_pem: str, at: dt.datetime) -> tuple[str, str | None]:
        if use not in _SLOTS:
            return "Rejected", "UnsupportedParam"
        result = install_signed(self.store, use, chain_pem, at=_utc(at))
        if result.accepted:
            log.info("installed the signed %s", use)
            return "Accepted", None
        log.warning("CertificateSigned %s refused: %s", use, result.reason)
        return "Rejected", "InvalidCertificate"

    # ------------------------------------------------------------------ TLS towards the CSMS
    def tls_client_files(self) -> tuple[Path, Path] | None:
        leaf = self.store.leaf(LeafSlot.CHARGING_STATION)
        return (leaf.chain_path, leaf.key_path) if leaf is not None else None

    def csms_root_pem(self) -> str | None:
        roots = self.store.roots(RootKind.CSMS)
        if not roots:
            return None
        return "".join(r.certificate.public_bytes(Encoding.PEM).decode() for r in roots)

    def charging_station_certificate_valid(self, at: dt.datetime) -> bool:
        leaf = self.store.leaf(LeafSlot.CHARGING_STATION)
        if leaf is None:
            return False
        at = _utc(at)
        return leaf.certificate.not_valid_before_utc <= at < leaf.certificate.not_valid_after_utc
