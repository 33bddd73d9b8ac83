"""XML-DSig over EXI: the signatures of ISO 15118-2 and ISO 15118-20 Plug & Charge.

    from pnc_bridge import xmldsig

    # SECC: the EV's AuthorizationReq, against the contract certificate of PaymentDetailsReq
    verdict = xmldsig.verify_authorization_req(msg, contract_leaf, gen_challenge=sent)
    if not verdict.valid:
        code = xmldsig.response_code(verdict, msg)      # "FAILED_SignatureError", ...

    # EV emulator: sign one
    signed = xmldsig.sign_authorization_req(msg, contract_key)

    # anything signed, any schema
    verdict = xmldsig.verify(msg, "iso2", signer_cert, required=("AuthorizationReq",))

Every check returns a verdict value (``Valid``, ``DigestMismatch``, ``BadSignature``,
``UnknownAlgorithm``, ``MissingReference``, ``NoSignature``, ``MalformedSignature``,
``UnsignedPart``, ``CertificateInvalid``, ``ChallengeInvalid``); nothing a peer sends
raises. ``response_code`` maps a verdict to the ResponseCode the standard names for that
message (one table: ``_kinds.KINDS``). Algorithms and grammars per standard:
``_algorithms``. See docs/xmldsig.md.
"""

from pnc_bridge.xmldsig._algorithms import (
    CANONICAL_EXI,
    ECDSA_SHA256,
    ECDSA_SHA512,
    EDDSA_ED448,
    SHA256,
    SHA512,
    SUITES,
    Standard,
    Suite,
    suite_for,
)
from pnc_bridge.xmldsig._core import digest, iter_identified, message_name, sign, signed_info_bytes, verify, with_signature
from pnc_bridge.xmldsig._kinds import KINDS, SignedMessage, kind_of, response_code
from pnc_bridge.xmldsig._messages import (
    sign_authorization_req,
    sign_message,
    sign_metering_receipt_req,
    verify_authorization_req,
    verify_certificate_installation_res,
    verify_certificate_update_res,
    verify_message,
    verify_metering_receipt_req,
)
from pnc_bridge.xmldsig._verdict import (
    BadSignature,
    CertificateInvalid,
    ChallengeInvalid,
    DigestMismatch,
    MalformedSignature,
    MissingReference,
    NoSignature,
    UnknownAlgorithm,
    UnsignedPart,
    Valid,
    Verdict,
)

__all__ = [
    "CANONICAL_EXI",
    "ECDSA_SHA256",
    "ECDSA_SHA512",
    "EDDSA_ED448",
    "KINDS",
    "SHA256",
    "SHA512",
    "SUITES",
    "BadSignature",
    "CertificateInvalid",
    "ChallengeInvalid",
    "DigestMismatch",
    "MalformedSignature",
    "MissingReference",
    "NoSignature",
    "SignedMessage",
    "Standard",
    "Suite",
    "UnknownAlgorithm",
    "UnsignedPart",
    "Valid",
    "Verdict",
    "digest",
    "iter_identified",
    "kind_of",
    "message_name",
    "response_code",
    "sign",
    "sign_authorization_req",
    "sign_message",
    "sign_metering_receipt_req",
    "signed_info_bytes",
    "suite_for",
    "verify",
    "verify_authorization_req",
    "verify_certificate_installation_res",
    "verify_certificate_update_res",
    "verify_message",
    "verify_metering_receipt_req",
    "with_signature",
]
