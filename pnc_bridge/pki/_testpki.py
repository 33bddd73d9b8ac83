"""Test-PKI generator: the full ISO 15118 hierarchy plus the OCPP certificates, on disk.

Rules of this module:

- Issues from the templates in ``_profiles.HIERARCHY``; the validator checks the same
  tables, so a generated chain is valid by construction and tests that mutate one know
  exactly which rule they break.
- Keys are generated fresh on every call (no key material in the repository); EC and
  Ed448 key generation is fast enough to call this per test module.
- ``at`` is the issuance time; certificates are valid from one hour before it, so a chain
  generated "now" validates at "now" on a machine whose clock is a little behind.
- Output: ``certs/NAME.pem`` and ``certs/NAME.der``, ``keys/NAME.key`` (PKCS#8 PEM),
  ``chains/PURPOSE.pem`` (leaf first, without the root) and ``manifest.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from pnc_bridge.pki._certio import atomic_write, cert_der, cert_pem, chain_pem, key_pem
from pnc_bridge.pki._emaid import with_check_digit
from pnc_bridge.pki._profiles import (
    CHAIN_ROOT,
    CHAINS,
    HIERARCHY,
    OCPP_NAMES,
    Purpose,
    RootKind,
    Template,
    Variant,
    new_key,
    signature_hash,
)

#: The test contract's EMAID (country DE, provider 8AA, instance 001234567) with its check digit.
DEFAULT_EMAID = with_check_digit("DE8AA001234567")
#: The test OEM provisioning certificate's PCID (17 characters, VDE-AR-E 2802-100-1 style).
DEFAULT_PCID = "WP0ZZZ00000000001"
#: Clock-skew allowance for freshly issued certificates.
BACKDATE = _dt.timedelta(hours=1)

def issue(
    template: Template,
    *,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    not_before: _dt.datetime,
    not_after: _dt.datetime | None = None,
    serial_number: int | None = None,
    hash_algorithm: hashes.HashAlgorithm | None | str = "auto",
) -> x509.Certificate:
    """Issue one certificate from ``template``; ``issuer=None`` makes it self-signed.

    ``hash_algorithm`` defaults to the one that matches ``issuer_key`` (tests pass another
    one to build a profile violation).
    """
    issuer_name = template.subject() if issuer is None else issuer.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject())
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial_number or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after or not_before + BACKDATE + template.validity)
        .add_extension(
            x509.BasicConstraints(ca=template.ca, path_length=template.path_length),
            critical=template.critical,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature="digital_signature" in template.key_usage,
                content_commitment="content_commitment" in template.key_usage,
                key_encipherment="key_encipherment" in template.key_usage,
                data_encipherment="data_encipherment" in template.key_usage,
                key_agreement="key_agreement" in template.key_usage,
                key_cert_sign="key_cert_sign" in template.key_usage,
                crl_sign="crl_sign" in template.key_usage,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=template.critical,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if template.ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP,
                                        x509.UniformResourceIdentifier(template.ocsp_url))]
            ),
            critical=False,
        )
    if template.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(template.extended_key_usage)), critical=False
        )
    if template.dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in template.dns_names]),
            critical=False,
        )
    algorithm = signature_hash(issuer_key) if hash_algorithm == "auto" else hash_algorithm
    return builder.sign(issuer_key, algorithm)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Issued:
    """One generated certificate with its key and where both were written."""

    name: str
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    pem_path: Path
    der_path: Path
    key_path: Path


@dataclass(frozen=True)
class TestPki:
    """Everything :func:`generate_test_pki` made. Look certificates up by hierarchy name
    (``v2g_root``, ``cpo_sub_ca1``, ``secc_leaf``, ``contract_leaf``, ``csms_root``, ...)."""

    __test__ = False  # not a pytest test class

    out_dir: Path
    variant: Variant
    at: _dt.datetime
    emaid: str
    pcid: str
    issued: dict[str, Issued] = field(repr=False)
    chain_paths: dict[Purpose, Path] = field(repr=False)

    def __getitem__(self, name: str) -> Issued:
        return self.issued[name]

    def cert(self, name: str) -> x509.Certificate:
        return self.issued[name].certificate

    def key(self, name: str) -> CertificateIssuerPrivateKeyTypes:
        return self.issued[name].key

    def chain(self, purpose: Purpose | str) -> tuple[x509.Certificate, list[x509.Certificate]]:
        """``(leaf, sub_cas)`` of a purpose, as an EV or the SECC would send it."""
        names = CHAINS[Purpose(purpose)]
        return self.cert(names[0]), [self.cert(n) for n in names[1:]]

    def root(self, purpose: Purpose | str) -> tuple[x509.Certificate, RootKind]:
        """The root a purpose's chain ends in, and its trust-store kind."""
        name, kind = CHAIN_ROOT[Purpose(purpose)]
        return self.cert(name), kind

    def roots(self) -> dict[RootKind, x509.Certificate]:
        """One root per trust-store kind, ready for ``TrustStore.add_roots``."""
        return {kind: self.cert(name) for name, kind in CHAIN_ROOT.values()}

    # Convenience names used all over the tests and the HIL rig.
    @property
    def v2g_root(self) -> x509.Certificate:
        return self.cert("v2g_root")

    @property
    def mo_root(self) -> x509.Certificate:
        return self.cert("mo_root")

    @property
    def oem_root(self) -> x509.Certificate:
        return self.cert("oem_root")

    @property
    def csms_root(self) -> x509.Certificate:
        return self.cert("csms_root")

    @property
    def secc_leaf(self) -> x509.Certificate:
        return self.cert("secc_leaf")

    @property
    def contract_leaf(self) -> x509.Certificate:
        return self.cert("contract_leaf")


def generate_test_pki(
    out_dir: str | os.PathLike[str],
    *,
    variant: Variant | str = Variant.ISO2,
    at: _dt.datetime | None = None,
    emaid: str = DEFAULT_EMAID,
    pcid: str = DEFAULT_PCID,
    ocsp_base_url: str | None = "http://127.0.0.1:8080/ocsp",
    progress: Callable[[str], None] | None = None,
) -> TestPki:
    """Generate the whole test PKI of ``variant`` into ``out_dir`` and return it.

    ``variant`` is ``"iso2"`` (secp256r1), ``"iso20"`` (secp521r1) or ``"iso20-ed448"``; the
    OCPP certificates (CSMS root, CSMS server, charging station) are always P-256.
    ``at`` (UTC) is the issuance time, now when omitted. ``ocsp_base_url`` goes into the
    authorityInfoAccess of every non-root certificate as ``<base>/<issuer name>``
    (``None``: no AIA). ``progress`` is called with each certificate's name as it is made.
    """
    variant = Variant(variant)
    if variant is Variant.OCPP:
        raise ValueError("variant must be one of iso2, iso20, iso20-ed448")
    issued_at = (at or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    not_before = issued_at - BACKDATE
    out = Path(out_dir)
    for sub in ("certs", "keys", "chains"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    issued: dict[str, Issued] = {}
    for name, (template, issuer_name) in HIERARCHY.items():
        if name == "contract_leaf":
            template = template.replace(common_name=emaid)
        elif name == "oem_prov_leaf":
            template = template.replace(common_name=pcid)
        if issuer_name is not None and ocsp_base_url:
            template = template.replace(ocsp_url=f"{ocsp_base_url}/{issuer_name}")
        key = new_key(Variant.OCPP if name in OCPP_NAMES else variant)
        issuer = issued[issuer_name] if issuer_name else None
        cert = issue(
            template,
            public_key=key.public_key(),
            issuer=issuer.certificate if issuer else None,
            issuer_key=issuer.key if issuer else key,
            not_before=not_before,
        )
        entry = Issued(
            name,
            cert,
            key,
            out / "certs" / f"{name}.pem",
            out / "certs" / f"{name}.der",
            out / "keys" / f"{name}.key",
        )
        atomic_write(entry.pem_path, cert_pem(cert))
        atomic_write(entry.der_path, cert_der(cert))
        atomic_write(entry.key_path, key_pem(key), mode=0o600)
        issued[name] = entry
        if progress:
            progress(name)

    chain_paths: dict[Purpose, Path] = {}
    for purpose, names in CHAINS.items():
        path = out / "chains" / f"{purpose.value}.pem"
        atomic_write(path, chain_pem([issued[n].certificate for n in names]))
        chain_paths[purpose] = path

    manifest = {
        "variant": variant.value,
        "issued_at": issued_at.isoformat(),
        "emaid": emaid,
        "pcid": pcid,
        "certificates": {
            name: {
                "subject": e.certificate.subject.rfc4514_string(),
                "issuer": e.certificate.issuer.rfc4514_string(),
                "not_after": e.certificate.not_valid_after_utc.isoformat(),
                "pem": str(e.pem_path.relative_to(out)),
                "der": str(e.der_path.relative_to(out)),
                "key": str(e.key_path.relative_to(out)),
            }
            for name, e in issued.items()
        },
        "chains": {p.value: str(path.relative_to(out)) for p, path in chain_paths.items()},
        "roots": {p.value: {"root": CHAIN_ROOT[p][0], "kind": CHAIN_ROOT[p][1].value} for p in CHAINS},
    }
    atomic_write(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return TestPki(out, variant, issued_at, emaid, pcid, issued, chain_paths)


__all__ = ["DEFAULT_EMAID", "Issued", "TestPki", "generate_test_pki", "issue", "new_key"]
