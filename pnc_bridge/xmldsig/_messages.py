"""Signing and checking the signed messages of Plug & Charge, for the SECC, the EV
emulator and the CSMS emulator.

All functions take typed messages (``iso2.V2G_Message`` for ISO 15118-2, the message
itself for ISO 15118-20) and look up what the message signs in ``_kinds.KINDS``.
Checks return verdicts (``_verdict``); turn one into a ResponseCode with
:func:`pnc_bridge.xmldsig.response_code`. They raise only on misuse by our own code: a
message of another kind, a missing signer where the message does not carry one, a store
without ``at``.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Sequence

from cryptography import x509

from pnc_bridge.xmldsig._algorithms import STANDARD_OF_SCHEMA, Standard
from pnc_bridge.xmldsig._core import header_of, iter_elements, iter_identified, message_name, sign, verify
from pnc_bridge.xmldsig._kinds import SignedMessage, kind_of, standard_of_message
from pnc_bridge.xmldsig._verdict import CertificateInvalid, ChallengeInvalid, Valid, Verdict

Signer = x509.Certificate | bytes | Sequence[x509.Certificate | bytes]


def _kind(message, *names: str) -> SignedMessage:
    kind = kind_of(message)
    if kind is None or (names and kind.name not in names):
        std = standard_of_message(message).value
        expected = " or ".join(names) if names else "a signed message"
        raise TypeError(f"{std} {message_name(message)} is not {expected}")
    return kind


def _default_schema(message) -> str:
    module = type(message).__module__.rsplit(".", 1)[-1]
    if module in ("iso2", "din"):
        return module
    kind = kind_of(message)
    if kind is not None:
        return kind.schema
    raise ValueError(f"pass schema= for the ISO 15118-20 message {message_name(message)}")


# --------------------------------------------------------------------------- #
# Signing (EV emulator, CSMS/CPS emulator)                                     #
# --------------------------------------------------------------------------- #


def sign_message(message, key):
    """A copy of ``message`` with a Signature over the parts its kind signs (see
    ``_kinds.KINDS``), made with ``key``. Parts without an Id get one (``ID1``, ...)."""
    kind = _kind(message)
    out = copy.deepcopy(message)
    taken = {ident for ident, _, _ in iter_identified(out)}
    ids: list[str] = []
    for element in kind.parts:
        parts = [p for q, p in iter_elements(out) if q[1] == element]
        if len(parts) != 1:
            raise ValueError(f"{kind.name} has {len(parts)} {element} elements; expected one")
        part = parts[0]
        if not part.id:
            n = 1
            while f"ID{n}" in taken:
                n += 1
            part.id = f"ID{n}"
            taken.add(part.id)
        ids.append(part.id)
    header_of(out).signature = sign(out, kind.schema, ids, key)
    return out


def sign_authorization_req(message, contract_key):
    """The EV's signed AuthorizationReq: ISO 15118-2 (``V2G_Message`` with an
    AuthorizationReq body; signs the AuthorizationReq) or -20 (``AuthorizationReq`` with
    ``PnC_AReqAuthorizationMode``; signs that element), with the contract certificate's key."""
    _kind(message, "AuthorizationReq")
    return sign_message(message, contract_key)


def sign_metering_receipt_req(message, contract_key):
    """The EV's signed ISO 15118-2 MeteringReceiptReq (signs the MeteringReceiptReq) or
    ISO 15118-20 MeteringConfirmationReq (signs SignedMeteringData)."""
    _kind(message, "MeteringReceiptReq", "MeteringConfirmationReq")
    return sign_message(message, contract_key)


# --------------------------------------------------------------------------- #
# Checking (SECC, EV emulator)                                                 #
# --------------------------------------------------------------------------- #


def verify_message(
    message,
    signer: Signer | None = None,
    *,
    schema: str | None = None,
    store=None,
    at: _dt.datetime | None = None,
    gen_challenge: bytes | None = None,
) -> Verdict:
    """Check any signed message.

    ``signer``: the signer's certificate (or DER, or chain leaf first); when omitted, the
    chain the message itself carries (CertificateInstallationReq/Res, CertificateUpdateReq,
    -20 AuthorizationReq). ``store`` (a ``TrustStore``, ``Anchors`` or roots) with ``at``
    (timezone-aware UTC) also validates that chain for the signer's purpose with
    :func:`pnc_bridge.pki.validate_chain` first; a failure is ``CertificateInvalid``.
    ``gen_challenge``: the GenChallenge the SECC sent (AuthorizationReq).
    """
    kind = kind_of(message)
    schema = schema or _default_schema(message)
    if schema not in STANDARD_OF_SCHEMA:
        raise ValueError(f"schema {schema!r} carries no message signatures")
    if header_of(message).signature is None:
        return verify(message, schema, signer or [])  # NoSignature, before anything else
    if signer is None:
        if kind is None or kind.in_message is None:
            raise ValueError(f"{message_name(message)} does not carry its signer's certificate: pass signer=")
        try:
            signer = [bytes(c) for c in kind.in_message(message) if c is not None]
        except (AttributeError, TypeError):
            signer = []
        if not signer:
            return CertificateInvalid(f"{message_name(message)} carries no signer certificate")
    if store is not None:
        if kind is None:
            raise ValueError(f"no certificate purpose is known for {message_name(message)}; validate the chain yourself")
        if not isinstance(at, _dt.datetime) or at.tzinfo is None:
            raise ValueError("at (timezone-aware UTC) is required to validate the signer's chain")
        chain = list(signer) if isinstance(signer, (list, tuple)) else [signer]
        from pnc_bridge.pki import validate_chain  # the trust store stays in pki

        chain_verdict = validate_chain(chain[0], chain[1:], purpose=kind.signer, store=store, at=at)
        if not chain_verdict.valid:
            return CertificateInvalid(chain_verdict.reason, chain_verdict.response_code)
    verdict = verify(message, schema, signer, required=kind.parts if kind else ())
    if isinstance(verdict, Valid) and gen_challenge is not None and kind is not None and kind.challenge_of:
        if kind.challenge_of(message) != bytes(gen_challenge):
            return ChallengeInvalid()
    return verdict


def verify_authorization_req(
    message, contract_cert: Signer | None = None, *, gen_challenge: bytes | None = None
) -> Verdict:
    """The SECC's check of an AuthorizationReq: the signature over the AuthorizationReq
    (-2) or PnC_AReqAuthorizationMode (-20) with the contract certificate, then, when
    ``gen_challenge`` is given, that the signed GenChallenge is the one the SECC sent.

    -2: ``contract_cert`` is the leaf of PaymentDetailsReq's ContractSignatureCertChain
    (required). -20: defaults to the chain inside PnC_AReqAuthorizationMode. Validating
    the contract chain itself is :func:`pnc_bridge.pki.validate_chain`'s job.
    """
    kind = _kind(message, "AuthorizationReq")
    if contract_cert is None and kind.standard is Standard.ISO15118_2:
        raise ValueError("ISO 15118-2 AuthorizationReq: pass the contract certificate from PaymentDetailsReq")
    return verify_message(message, contract_cert, gen_challenge=gen_challenge)


def verify_metering_receipt_req(message, contract_cert: Signer) -> Verdict:
    """The SECC's check of a MeteringReceiptReq (-2) or MeteringConfirmationReq (-20)
    with the certificate the EV signs it with (the contract certificate in PnC)."""
    _kind(message, "MeteringReceiptReq", "MeteringConfirmationReq")
    return verify_message(message, contract_cert)


def verify_certificate_installation_res(
    message, cps_chain: Signer | None = None, *, store=None, at: _dt.datetime | None = None
) -> Verdict:
    """The EV's check of an ISO 15118-2 CertificateInstallationRes / CertificateUpdateRes or
    an ISO 15118-20 CertificateInstallationRes: the CPS chain (by default the one in the
    message) validated for purpose ``cps`` against ``store`` at ``at``, then the signature
    over every contract part. Without ``store`` only the signature is checked."""
    _kind(message, "CertificateInstallationRes", "CertificateUpdateRes")
    return verify_message(message, cps_chain, store=store, at=at)


def verify_certificate_update_res(message, cps_chain: Signer | None = None, *, store=None, at=None) -> Verdict:
    """ISO 15118-2 CertificateUpdateRes: as :func:`verify_certificate_installation_res`."""
    _kind(message, "CertificateUpdateRes")
    return verify_message(message, cps_chain, store=store, at=at)
