"""Chain validation: a verdict in ISO 15118 terms for a leaf, up to two sub-CAs and a purpose.

Rules of this module:

- The validation time ``at`` is an argument, always; nothing here reads a clock.
- Every failure is first classified as a :class:`Failure` and then mapped to its ISO 15118
  response code by the one table :data:`RESPONSE_CODE`. Nothing parses an exception's
  message; a library message may be appended to the human reason, nothing more.
- Order of the checks, and why:
    1. shape: at most two sub-CAs (ISO 15118-2/-20), every item a certificate;
    2. validity dates of the certificates the peer sent (``FAILED_CertificateExpired``
       names the one that is out of date, even if something else is wrong too);
    3. the ISO 15118 certificate profile of leaf and sub-CAs (algorithms, basicConstraints,
       keyUsage, path length, EMAID), which the web-PKI verifier cannot express;
    4. path building and signatures by ``cryptography``'s ``PolicyBuilder`` against the
       store's roots for the purpose; a failure there is classified afterwards from facts
       (is there a root with that name? is it in date?), never from the error text;
    5. the profile of the root that was found;
    6. OCSP, when a response is at hand (``FAILED_CertificateRevoked``).
- ``cryptography``'s verifier only knows the web-PKI algorithms (RSA, P-256/384/521 ECDSA).
  Ed448 chains (ISO 15118-20 EdDSA) are therefore chained here with
  ``Certificate.verify_directly_issued_by`` (the library's signature check), with the
  dates and path lengths that the verifier would otherwise check done by hand.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pnc_bridge.pki._certio import common_name
from pnc_bridge.pki._emaid import EmaidError, parse_emaid
from pnc_bridge.pki._ocsp import OcspError, OcspStatus, check_ocsp_response
from pnc_bridge.pki._profiles import (
    ALGORITHM_TEXT,
    ALGORITHMS,
    ISO2_SECC_KEY_USAGE,
    ISO_VARIANTS,
    KEY_USAGE_BITS,
    LEAF_RULES,
    MAX_SUB_CAS,
    Purpose,
    Variant,
    key_algorithm,
    variant_of_key,
)


class VerdictCode(StrEnum):
    """ISO 15118 response codes a chain verdict can carry, spelled as the standard spells
    them, so the SECC maps them to its generated ``ResponseCode`` by name."""

    FAILED_CertChainError = "FAILED_CertChainError"
    FAILED_CertificateExpired = "FAILED_CertificateExpired"
    FAILED_CertificateRevoked = "FAILED_CertificateRevoked"


class Failure(Enum):
    """Why a chain is refused, finer than the response code (for logs, tests, the CLI)."""

    MALFORMED = "malformed certificate"
    CHAIN_TOO_LONG = "chain too long"
    EXPIRED = "certificate expired"
    NOT_YET_VALID = "certificate not yet valid"
    PROFILE = "certificate profile violation"
    EMAID = "invalid EMAID"
    UNKNOWN_ROOT = "unknown root"
    BROKEN_CHAIN = "broken chain"
    REVOKED = "certificate revoked"


#: The one table from failure to ISO 15118 response code.
RESPONSE_CODE: dict[Failure, VerdictCode] = {
    Failure.MALFORMED: VerdictCode.FAILED_CertChainError,
    Failure.CHAIN_TOO_LONG: VerdictCode.FAILED_CertChainError,
    Failure.EXPIRED: VerdictCode.FAILED_CertificateExpired,
    Failure.NOT_YET_VALID: VerdictCode.FAILED_CertificateExpired,
    Failure.PROFILE: VerdictCode.FAILED_CertChainError,
    Failure.EMAID: VerdictCode.FAILED_CertChainError,
    Failure.UNKNOWN_ROOT: VerdictCode.FAILED_CertChainError,
    Failure.BROKEN_CHAIN: VerdictCode.FAILED_CertChainError,
    Failure.REVOKED: VerdictCode.FAILED_CertificateRevoked,
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`validate_chain`: valid, or one ISO 15118 response code.

    ``response_code`` is ``None`` when valid. ``chain`` is the validated path, leaf first and
    root last (empty when invalid). ``emaid`` is the contract's EMAID (contract purpose).
    """

    valid: bool
    response_code: str | None
    reason: str
    failure: Failure | None = None
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    emaid: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"valid": self.valid, "response_code": self.response_code, "reason": self.reason}


def _refuse(failure: Failure, reason: str) -> Verdict:
    return Verdict(False, RESPONSE_CODE[failure].value, reason, failure)


class _Refused(Exception):
    def __init__(self, failure: Failure, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason


# --------------------------------------------------------------------------- #
# Trust anchors                                                                #
# --------------------------------------------------------------------------- #


class Anchors:
    """The roots one purpose trusts, indexed for path building. Immutable once built."""

    def __init__(self, roots: Iterable[x509.Certificate]) -> None:
        self.roots: tuple[x509.Certificate, ...] = tuple(roots)
        self.by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for root in self.roots:
            self.by_subject.setdefault(root.subject, []).append(root)
        self.names: dict[x509.Name, str] = {r.subject: r.subject.rfc4514_string() for r in self.roots}
        # cryptography refuses an empty Store; no roots means every chain has an unknown root.
        self.store: Store | None = Store(list(self.roots)) if self.roots else None

    def anchors_for(self, purpose: Purpose) -> Anchors:
        return self


class AnchorSource(Protocol):
    def anchors_for(self, purpose: Purpose) -> Anchors: ...


# Web-PKI CA rules (basicConstraints CA, keyCertSign, AKI form) hold for ISO 15118 CAs as
# well, so cryptography enforces them. Its end-entity rules do not: ISO 15118 leaves carry
# no subjectAltName and the contract certificate no EKU, so the leaf is checked by the ISO
# profile below instead.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()
_EE_POLICY = ExtensionPolicy.permit_all()


# --------------------------------------------------------------------------- #
# Profile checks                                                               #
# --------------------------------------------------------------------------- #


def _describe(cert: x509.Certificate, role: str) -> str:
    return f"{role} {cert.subject.rfc4514_string() or '(empty subject)'}"


def _extension(cert: x509.Certificate, kind: type) -> x509.Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _key_usage_bits(ku: x509.KeyUsage) -> set[str]:
    return {bit for bit in KEY_USAGE_BITS if getattr(ku, bit)}


def _profile_problem(
    cert: x509.Certificate, role: str, *, variant: Variant, purpose: Purpose
) -> str | None:
    """The first rule of the certificate profile that ``cert`` breaks, or ``None``.

    ``role`` is ``"leaf"``, ``"sub-CA"`` or ``"root"``.
    """
    def who() -> str:  # only on failure: rendering a name costs more than all the checks
        return _describe(cert, role)

    try:
        extensions = cert.extensions
    except ValueError as exc:  # duplicate or undecodable extension
        return f"{who()}: malformed extensions ({exc})"
    if cert.version is not x509.Version.v3:
        return f"{who()}: must be an X.509 v3 certificate"
    for ext in extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            return f"{who()}: unknown critical extension {ext.oid.dotted_string}"

    iso = variant in ISO_VARIANTS
    if iso:
        allowed = ALGORITHMS[variant]
        algorithm = key_algorithm(cert.public_key())
        if algorithm not in allowed:
            return f"{who()}: {algorithm} key; {ALGORITHM_TEXT[variant]}"
        if cert.signature_algorithm_oid not in allowed.values():
            signature = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
            return f"{who()}: signed with {signature}; {ALGORITHM_TEXT[variant]}"

    bc_ext = _extension(cert, x509.BasicConstraints)
    ku_ext = _extension(cert, x509.KeyUsage)
    is_ca_role = role != "leaf"
    if bc_ext is None:
        if iso or is_ca_role:
            return f"{who()}: basicConstraints is missing"
    else:
        bc = bc_ext.value
        if iso and not bc_ext.critical:
            return f"{who()}: basicConstraints must be critical"
        if is_ca_role and not bc.ca:
            return f"{who()}: basicConstraints CA:FALSE, but it is used as a CA"
        if not is_ca_role and bc.ca:
            return f"{who()}: a CA certificate (CA:TRUE) used as the leaf"
        if iso and role == "sub-CA":
            if bc.path_length is None:
                return f"{who()}: sub-CA without a pathLenConstraint (ISO 15118 sub-CAs carry 1 or 0)"
            if bc.path_length > MAX_SUB_CAS - 1:
                return f"{who()}: pathLenConstraint {bc.path_length} allows more than {MAX_SUB_CAS} sub-CAs"

    if ku_ext is None:
        if iso or is_ca_role:
            return f"{who()}: keyUsage is missing"
        bits: set[str] | None = None
    else:
        if iso and not ku_ext.critical:
            return f"{who()}: keyUsage must be critical"
        bits = _key_usage_bits(ku_ext.value)
    if is_ca_role:
        if bits is not None and "key_cert_sign" not in bits:
            return f"{who()}: keyUsage lacks keyCertSign"
        return None

    # Leaf rules.
    rule = LEAF_RULES[purpose]
    required = set(rule.key_usage)
    if variant is Variant.ISO2 and purpose is Purpose.SECC:
        required = set(ISO2_SECC_KEY_USAGE)
    if bits is not None:
        if "key_cert_sign" in bits:
            return f"{who()}: a leaf must not have keyUsage keyCertSign"
        missing = required - bits
        if missing and not (variant is Variant.OCPP and "key_encipherment" in bits):
            return f"{who()}: keyUsage lacks {', '.join(sorted(missing))}"
    if rule.extended_key_usage is not None:
        eku_ext = _extension(cert, x509.ExtendedKeyUsage)
        if eku_ext is not None and rule.extended_key_usage not in eku_ext.value:
            return f"{who()}: extendedKeyUsage lacks {rule.extended_key_usage._name}"
    return None


def _emaid_of(leaf: x509.Certificate, expected: str | None, verify_check_digit: bool) -> str:
    cn = common_name(leaf.subject)
    if cn is None:
        raise _Refused(Failure.EMAID, "contract certificate has no subject CN (the EMAID)")
    try:
        emaid = parse_emaid(cn, verify_check_digit=verify_check_digit)
    except EmaidError as exc:
        raise _Refused(Failure.EMAID, f"contract certificate CN: {exc}") from None
    if expected is not None:
        try:
            claimed = parse_emaid(expected).compact()
        except EmaidError as exc:
            raise _Refused(Failure.EMAID, f"eMAID sent by the EV: {exc}") from None
        if claimed != emaid.compact():
            raise _Refused(
                Failure.EMAID,
                f"eMAID {expected!r} sent by the EV differs from the certificate's {emaid.compact()!r}",
            )
    return emaid.compact()


# --------------------------------------------------------------------------- #
# Path building                                                                #
# --------------------------------------------------------------------------- #


def _in_date(cert: x509.Certificate, at: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issuing_root(cert: x509.Certificate, roots: list[x509.Certificate]) -> x509.Certificate | None:
    """The root among ``roots`` that issued ``cert``: by name, and by signature where two roots
    share a name (an ISO 15118-2 and a -20 V2G root often do)."""
    named = [r for r in roots if r.subject == cert.issuer]
    if len(named) <= 1:
        return named[0] if named else None
    return next((r for r in named if _signed_by(cert, r)), None)


def _classify_path_failure(
    leaf: x509.Certificate, sub_cas: Sequence[x509.Certificate], anchors: Anchors, at: _dt.datetime, detail: str
) -> _Refused:
    """Why no path to a trusted root exists, from facts about the chain and the store."""
    # Follow issuer names through what the peer sent, as far as they go.
    top, used = leaf, 0
    pool = list(sub_cas)
    while True:
        nxt = next((c for c in pool if c.subject == top.issuer and c is not top), None)
        if nxt is None or top.subject == top.issuer:
            break
        pool.remove(nxt)
        top, used = nxt, used + 1
    candidates = anchors.by_subject.get(top.issuer, [])
    suffix = f" ({detail})" if detail else ""
    if not candidates:
        if used < len(sub_cas):
            return _Refused(
                Failure.BROKEN_CHAIN,
                f"broken chain: {_describe(top, 'certificate')} is issued by "
                f"{top.issuer.rfc4514_string()}, which is neither a sent sub-CA nor a trusted root",
            )
        return _Refused(
            Failure.UNKNOWN_ROOT,
            f"unknown root: no trusted root named {top.issuer.rfc4514_string()} in the store",
        )
    if all(not _in_date(root, at) for root in candidates):
        root = candidates[0]
        word = "not yet valid" if at < root.not_valid_before_utc else "expired"
        failure = Failure.NOT_YET_VALID if word == "not yet valid" else Failure.EXPIRED
        return _Refused(failure, f"{_describe(root, 'root')} is {word} at {at.isoformat()}")
    return _Refused(Failure.BROKEN_CHAIN, f"no valid path to a trusted root{suffix}")


def _build_path_manually(
    leaf: x509.Certificate, sub_cas: Sequence[x509.Certificate], anchors: Anchors, at: _dt.datetime
) -> list[x509.Certificate]:
    """Path building for algorithms the web-PKI verifier refuses (Ed448)."""
    chain = [leaf]
    pool = list(sub_cas)
    while True:
        current = chain[-1]
        roots = [r for r in anchors.by_subject.get(current.issuer, []) if _signed_by(current, r)]
        if roots:
            in_date = [r for r in roots if _in_date(r, at)]
            if not in_date:
                raise _classify_path_failure(leaf, sub_cas, anchors, at, "")
            chain.append(in_date[0])
            break
        nxt = next((c for c in pool if c.subject == current.issuer and _signed_by(current, c)), None)
        if nxt is None or len(chain) > MAX_SUB_CAS:
            raise _classify_path_failure(leaf, sub_cas, anchors, at, "signature or name mismatch")
        pool.remove(nxt)
        chain.append(nxt)
    # RFC 5280 4.2.1.9: a CA's pathLenConstraint bounds the CAs below it (the leaf excluded).
    for depth, ca in enumerate(chain[1:], start=1):
        bc = _extension(ca, x509.BasicConstraints)
        if bc is not None and bc.value.path_length is not None and depth - 1 > bc.value.path_length:
            raise _Refused(
                Failure.PROFILE,
                f"{_describe(ca, 'CA')}: pathLenConstraint {bc.value.path_length} "
                f"is exceeded by {depth - 1} sub-CA(s) below it",
            )
    return chain


def _as_certificate(item: object, role: str) -> x509.Certificate:
    if isinstance(item, x509.Certificate):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        try:
            return x509.load_der_x509_certificate(bytes(item))
        except ValueError as exc:
            raise _Refused(Failure.MALFORMED, f"{role} is not a DER certificate ({exc})") from None
    raise TypeError(f"{role} must be a cryptography Certificate or DER bytes, not {type(item).__name__}")


# --------------------------------------------------------------------------- #
# The entry point                                                              #
# --------------------------------------------------------------------------- #


def validate_chain(
    leaf: x509.Certificate | bytes,
    sub_cas: Sequence[x509.Certificate | bytes],
    *,
    purpose: Purpose | str,
    store: AnchorSource | Iterable[x509.Certificate],
    at: _dt.datetime,
    ocsp_responses: Iterable[bytes] | Mapping[object, bytes] | None = None,
    variant: Variant | str | None = None,
    emaid: str | None = None,
    verify_emaid_check_digit: bool = False,
) -> Verdict:
    """Validate ``leaf`` + ``sub_cas`` for ``purpose`` at ``at`` against ``store``'s roots.

    ``store`` is a :class:`~pnc_bridge.pki.TrustStore`, an :class:`Anchors` or any iterable of
    root certificates. ``at`` must be a timezone-aware datetime (it is converted to UTC).
    ``variant`` (``iso2``, ``iso20``, ``iso20-ed448``) pins the ISO 15118 profile; when
    omitted it follows from the leaf's key (secp521r1: -20 ECDSA, Ed448: -20 EdDSA,
    anything else is held to -2). ``emaid``, for the contract purpose, is the eMAID the EV
    claimed, which must equal the certificate's. ``ocsp_responses`` are DER OCSP responses
    (the values are used if a mapping is given); any that cover a certificate of the chain
    and can be trusted are applied.

    Returns a :class:`Verdict`; never raises on anything a peer can send. Raises
    ``ValueError``/``TypeError`` only on misuse (naive ``at``, unknown purpose, wrong types)
    and ``StoreError`` when the trust store itself cannot be read.
    """
    if not isinstance(at, _dt.datetime) or at.tzinfo is None:
        raise ValueError("at must be a timezone-aware datetime (UTC)")
    at = at.astimezone(_dt.timezone.utc)
    purpose = Purpose(purpose)
    if variant is None:
        variant_v = None
    else:
        variant_v = Variant(variant)
    if isinstance(store, Anchors):
        anchors = store
    elif hasattr(store, "anchors_for"):
        anchors = store.anchors_for(purpose)  # type: ignore[union-attr]
    else:
        anchors = Anchors(store)  # type: ignore[arg-type]
    if isinstance(ocsp_responses, Mapping):
        ocsp_responses = list(ocsp_responses.values())
    try:
        return _validate(
            leaf, sub_cas, purpose, anchors, at, ocsp_responses, variant_v, emaid, verify_emaid_check_digit
        )
    except _Refused as refused:
        return _refuse(refused.failure, refused.reason)


def _validate(
    leaf_in: x509.Certificate | bytes,
    sub_cas_in: Sequence[x509.Certificate | bytes],
    purpose: Purpose,
    anchors: Anchors,
    at: _dt.datetime,
    ocsp_responses: Iterable[bytes] | None,
    variant: Variant | None,
    expected_emaid: str | None,
    verify_check_digit: bool,
) -> Verdict:
    # 1. Shape.
    leaf = _as_certificate(leaf_in, "leaf")
    is_ocpp = purpose in (Purpose.CSMS, Purpose.CHARGING_STATION)
    max_sub_cas = 4 if is_ocpp else MAX_SUB_CAS
    # The XSDs bound SubCertificates to 4 (-2) and 3 (-20); anything longer is refused
    # before any parsing work.
    if len(sub_cas_in) > max_sub_cas + 1:
        raise _Refused(
            Failure.CHAIN_TOO_LONG,
            f"chain too long: {len(sub_cas_in)} sub-CAs, at most {max_sub_cas} allowed",
        )
    sub_cas = [_as_certificate(c, f"sub-CA #{i + 1} (as sent)") for i, c in enumerate(sub_cas_in)]
    # A self-signed certificate at the end is the peer's copy of its root: it is not a
    # sub-CA and is never trusted because it was sent; only the store's roots anchor.
    if sub_cas and sub_cas[-1].subject == sub_cas[-1].issuer:
        sub_cas = sub_cas[:-1]
    if len(sub_cas) > max_sub_cas:
        raise _Refused(
            Failure.CHAIN_TOO_LONG,
            f"chain too long: {len(sub_cas)} sub-CAs, at most {max_sub_cas} allowed",
        )
    if is_ocpp:
        variant = Variant.OCPP
    elif variant is None:
        variant = variant_of_key(leaf.public_key()) or Variant.ISO2
    elif variant is Variant.OCPP:
        raise ValueError(f"variant ocpp does not apply to purpose {purpose.value}")

    # 2. Dates of what the peer sent.
    for cert, role in [(leaf, "leaf")] + [(c, "sub-CA") for c in sub_cas]:
        if at < cert.not_valid_before_utc:
            raise _Refused(
                Failure.NOT_YET_VALID,
                f"{_describe(cert, role)} is not yet valid (notBefore {cert.not_valid_before_utc.isoformat()})",
            )
        if at > cert.not_valid_after_utc:
            raise _Refused(
                Failure.EXPIRED,
                f"{_describe(cert, role)} expired (notAfter {cert.not_valid_after_utc.isoformat()})",
            )

    # 3. Certificate profile of leaf and sub-CAs.
    problem = _profile_problem(leaf, "leaf", variant=variant, purpose=purpose)
    for cert in sub_cas:
        if problem:
            break
        problem = _profile_problem(cert, "sub-CA", variant=variant, purpose=purpose)
    if problem:
        raise _Refused(Failure.PROFILE, problem)
    emaid = None
    if LEAF_RULES[purpose].emaid_in_cn:
        emaid = _emaid_of(leaf, expected_emaid, verify_check_digit)

    # 4. Path building and signatures.
    if anchors.store is None:
        raise _classify_path_failure(leaf, sub_cas, anchors, at, "the store holds no root for this purpose")
    if variant is Variant.ISO20_ED448:
        chain = _build_path_manually(leaf, sub_cas, anchors, at)
    else:
        verifier = (
            PolicyBuilder()
            .store(anchors.store)
            .time(at)
            .max_chain_depth(max_sub_cas)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(leaf, sub_cas).chain
        except VerificationError as exc:
            raise _classify_path_failure(leaf, sub_cas, anchors, at, str(exc)) from None

    # 5. Profile of the root that anchors the path.
    root = chain[-1]
    problem = _profile_problem(root, "root", variant=variant, purpose=purpose)
    if problem:
        raise _Refused(Failure.PROFILE, problem)

    # 6. Revocation, when a response is at hand.
    notes = []
    if ocsp_responses:
        responses = list(ocsp_responses)
        for cert, issuer in zip(chain, chain[1:]):
            for response in responses:
                try:
                    result = check_ocsp_response(response, cert, issuer, at=at)
                except OcspError as exc:
                    notes.append(f"OCSP response for {cert.subject.rfc4514_string()} ignored: {exc}")
                    continue
                if result is None:
                    continue
                if result.status is OcspStatus.REVOKED:
                    when = result.revocation_time.isoformat() if result.revocation_time else "unknown time"
                    raise _Refused(
                        Failure.REVOKED,
                        f"{_describe(cert, 'certificate')} is revoked (OCSP, since {when}"
                        + (f", reason {result.revocation_reason}" if result.revocation_reason else "")
                        + ")",
                    )
                notes.append(f"OCSP {result.status.value} for {cert.subject.rfc4514_string()}")

    root_name = anchors.names.get(root.subject) or root.subject.rfc4514_string()
    reason = f"valid {purpose.value} chain ({variant.value}) to {root_name}"
    if notes:
        reason += "; " + "; ".join(notes)
    return Verdict(True, None, reason, None, tuple(chain), emaid)


__all__ = [
    "Anchors",
    "issuing_root",
    "Failure",
    "RESPONSE_CODE",
    "Verdict",
    "VerdictCode",
    "validate_chain",
]
