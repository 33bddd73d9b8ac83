"""Verdicts of a signature check: values, never exceptions.

Every verdict is a small frozen dataclass with ``valid`` and ``as_dict()`` (the JSON form
the CLI prints). Which ISO 15118 ResponseCode each one becomes for which message is
decided in one table, :data:`pnc_bridge.xmldsig._kinds.KINDS` (see :func:`response_code`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class _Verdict:
    valid = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def as_dict(self) -> dict[str, object]:
        return {"verdict": self.name, "valid": self.valid, **asdict(self)}


@dataclass(frozen=True)
class Valid(_Verdict):
    """Every reference resolves and digests correctly and the signature over SignedInfo
    verifies with the signer's key."""

    references: tuple[str, ...]
    signature_method: str
    valid = True


@dataclass(frozen=True)
class NoSignature(_Verdict):
    """The message header carries no Signature."""


@dataclass(frozen=True)
class UnknownAlgorithm(_Verdict):
    """A CanonicalizationMethod, SignatureMethod, Transform or DigestMethod that the
    standard of the message does not name."""

    uri: str


@dataclass(frozen=True)
class MalformedSignature(_Verdict):
    """The Signature cannot be processed as the standard describes it (a reference that
    is not ``#Id``, no Transform, a SignatureValue of the wrong length, an Id used twice,
    a part that cannot be canonicalized)."""

    reason: str


@dataclass(frozen=True)
class BadSignature(_Verdict):
    """The signature over SignedInfo does not verify with the signer's key (or the key
    cannot make that kind of signature)."""

    reason: str = "the signature over SignedInfo does not verify with the signer's key"


@dataclass(frozen=True)
class MissingReference(_Verdict):
    """A Reference names an Id that no element of the message carries."""

    uri: str


@dataclass(frozen=True)
class DigestMismatch(_Verdict):
    """The referenced element's digest differs from the DigestValue in SignedInfo: the
    element was changed after signing."""

    ref: str


@dataclass(frozen=True)
class UnsignedPart(_Verdict):
    """The signature is valid but does not cover an element the message must have signed
    (e.g. the AuthorizationReq itself)."""

    element: str


@dataclass(frozen=True)
class CertificateInvalid(_Verdict):
    """The signer's certificate is unusable (not X.509 DER) or its chain failed
    validation; ``chain_code`` is the PKI's response code for the chain failure, if any."""

    reason: str
    chain_code: str | None = None


@dataclass(frozen=True)
class ChallengeInvalid(_Verdict):
    """A valid signature over a GenChallenge other than the one the SECC sent."""


Verdict = (
    Valid
    | NoSignature
    | UnknownAlgorithm
    | MalformedSignature
    | BadSignature
    | MissingReference
    | DigestMismatch
    | UnsignedPart
    | CertificateInvalid
    | ChallengeInvalid
)
