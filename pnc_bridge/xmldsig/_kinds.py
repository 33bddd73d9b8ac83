"""What each signed ISO 15118 message signs, who signs it, and the ResponseCode a failed
check becomes: the one table for all of it (:data:`KINDS`).

- ``parts``: the elements the Signature must cover (by their element local names). For
  -2 these are the Ids every captured signature in ../shared/exi-vectors references
  (the request element itself; the four contract parts of a CertificateInstallation/
  UpdateRes). For -20 they are the schema's only Id-carrying element of the message
  (``PnC_AReqAuthorizationMode``, ``SignedMeteringData``, ``OEMProvisioningCertificateChain``,
  ``SignedInstallationData``: each the element whose Id the XSD makes required).
- ``signer``: the certificate purpose (``pnc_bridge.pki.Purpose``) of the signer.
- ``in_message``: where the signer's chain travels inside the message, when it does.
- ``failure``: the ResponseCode for any failed signature check; ``challenge``: for a
  valid signature over the wrong GenChallenge. Responses (CertificateInstallationRes,
  CertificateUpdateRes) are checked by the EV, which sends no code; the SECC that checks
  one before forwarding it can only answer the EV with the generic ``FAILED``.
- The names are spelled as the generated ``ResponseCode`` enums spell them;
  tests/xmldsig/test_kinds.py checks that each exists in its standard's enum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pnc_bridge.xmldsig._algorithms import Standard
from pnc_bridge.xmldsig._core import header_of, message_name
from pnc_bridge.xmldsig._verdict import CertificateInvalid, ChallengeInvalid, Valid, Verdict


def _chain(chain) -> list[bytes]:
    """[leaf, sub-CAs...] DER of a CertificateChain-like element (any of the standards)."""
    if chain is None:
        return []
    subs = chain.sub_certificates.certificate if chain.sub_certificates is not None else []
    return [chain.certificate, *subs]


@dataclass(frozen=True)
class SignedMessage:
    standard: Standard
    name: str
    schema: str
    parts: tuple[str, ...]
    signer: str
    failure: str
    challenge: str | None = None
    in_message: Callable[[object], list[bytes]] | None = None
    #: the signed element that carries GenChallenge, for the challenge check
    challenge_of: Callable[[object], bytes | None] | None = None


_CPS_PARTS_2 = ("ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID")

_TABLE = (
    # ---- ISO 15118-2 (message = V2G_Message; m.body.body_element is the request) ----
    SignedMessage(
        Standard.ISO15118_2, "AuthorizationReq", "iso2", ("AuthorizationReq",), "contract",
        "FAILED_SignatureError", challenge="FAILED_ChallengeInvalid",
        challenge_of=lambda m: m.body.body_element.gen_challenge,
    ),
    SignedMessage(
        Standard.ISO15118_2, "MeteringReceiptReq", "iso2", ("MeteringReceiptReq",), "contract",
        "FAILED_MeteringSignatureNotValid",
    ),
    SignedMessage(
        Standard.ISO15118_2, "CertificateInstallationReq", "iso2", ("CertificateInstallationReq",), "oem",
        "FAILED_SignatureError", in_message=lambda m: [m.body.body_element.oem_provisioning_cert],
    ),
    SignedMessage(
        Standard.ISO15118_2, "CertificateUpdateReq", "iso2", ("CertificateUpdateReq",), "contract",
        "FAILED_SignatureError", in_message=lambda m: _chain(m.body.body_element.contract_signature_cert_chain),
    ),
    SignedMessage(
        Standard.ISO15118_2, "CertificateInstallationRes", "iso2", _CPS_PARTS_2, "cps",
        "FAILED", in_message=lambda m: _chain(m.body.body_element.sa_provisioning_certificate_chain),
    ),
    SignedMessage(
        Standard.ISO15118_2, "CertificateUpdateRes", "iso2", _CPS_PARTS_2, "cps",
        "FAILED", in_message=lambda m: _chain(m.body.body_element.sa_provisioning_certificate_chain),
    ),
    # ---- ISO 15118-20 (the message is the request itself) ----
    SignedMessage(
        Standard.ISO15118_20, "AuthorizationReq", "iso20-common", ("PnC_AReqAuthorizationMode",), "contract",
        "FAILED_SignatureError", challenge="WARNING_ChallengeInvalid",
        in_message=lambda m: _chain(
            m.pnc_areq_authorization_mode.contract_certificate_chain if m.pnc_areq_authorization_mode else None
        ),
        challenge_of=lambda m: m.pnc_areq_authorization_mode.gen_challenge if m.pnc_areq_authorization_mode else None,
    ),
    SignedMessage(
        Standard.ISO15118_20, "MeteringConfirmationReq", "iso20-common", ("SignedMeteringData",), "contract",
        "FAILED_MeteringSignatureNotValid",
    ),
    SignedMessage(
        Standard.ISO15118_20, "CertificateInstallationReq", "iso20-common", ("OEMProvisioningCertificateChain",), "oem",
        "FAILED_SignatureError", in_message=lambda m: _chain(m.oem_provisioning_certificate_chain),
    ),
    SignedMessage(
        Standard.ISO15118_20, "CertificateInstallationRes", "iso20-common", ("SignedInstallationData",), "cps",
        "FAILED", in_message=lambda m: _chain(m.cps_certificate_chain),
    ),
)

#: (standard, message name) -> what it signs and how a failure is answered
KINDS: dict[tuple[Standard, str], SignedMessage] = {(k.standard, k.name): k for k in _TABLE}

#: the code for a failed check on a message not in :data:`KINDS` (a signature where the
#: standard expects none is still checked; both standards name this code)
DEFAULT_FAILURE = "FAILED_SignatureError"


def standard_of_message(message) -> Standard:
    """The standard of a typed message, from the module its class was generated into."""
    module = type(message).__module__.rsplit(".", 1)[-1]
    if module in ("iso2", "din"):
        return Standard.ISO15118_2
    if module == "iso20":
        return Standard.ISO15118_20
    raise TypeError(f"{type(message).__name__} is not an ISO 15118-2/-20 or DIN 70121 message")


def kind_of(message) -> SignedMessage | None:
    header_of(message)
    return KINDS.get((standard_of_message(message), message_name(message)))


def response_code(verdict: Verdict, message) -> str | None:
    """The ResponseCode name (as in the standard's enum) a verdict about ``message``
    becomes; ``None`` for ``Valid``."""
    if isinstance(verdict, Valid):
        return None
    kind = kind_of(message)
    if kind is None:
        return DEFAULT_FAILURE
    if isinstance(verdict, ChallengeInvalid) and kind.challenge:
        return kind.challenge
    if (
        isinstance(verdict, CertificateInvalid)
        and verdict.chain_code
        and kind.standard is Standard.ISO15118_2
        and not kind.name.endswith("Res")
    ):
        # the PKI's own code for the chain (FAILED_CertChainError, ..._CertificateExpired, ...)
        return verdict.chain_code
    return kind.failure
