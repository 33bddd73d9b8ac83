"""The PKI port: contract chain validation per the ISO15118Ctrlr policy, and the XML
signatures of AuthorizationReq and MeteringReceiptReq.

Rules of this module:

- The policy is a value (:class:`ContractPolicy`) read from the OCPP device model for every
  session (the CSMS may change it at run time):

  * ``local_validation`` (configuration, on by default): the contract chain is validated
    against the trust store's MO and V2G roots at PaymentDetailsReq; a chain that is
    expired, broken, not of the ISO profile or not for the claimed EMAID is refused there
    with the ISO 15118 code of the PKI's verdict;
  * ``CentralContractValidationAllowed``: a chain whose root is not in the trust store is
    left to the CSMS, which gets the chain itself in Authorize (C07.FR.06 as libocpp quotes
    it); without it such a chain is refused (FAILED_CertChainError);
  * ``ContractValidationOffline``: used by the OCPP port when the CSMS cannot be reached
    (C07.FR.07/08 as libocpp quotes them): a locally valid contract is then accepted.

- The chain is validated once per PaymentDetailsReq: ValidateContractChain and
  AuthorizeWithCsms (which needs the verdict for its hash data and the offline policy) run
  in parallel and share :meth:`PkiPort.verdict`'s short-lived cache.
- Validation time is the UTC clock read once per check (``at`` is never defaulted).
- Every outcome is logged with the EVSE and the EMAID; tests check each one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Callable

from pnc_bridge import xmldsig
from pnc_bridge.pki import Failure, Verdict, validate_chain
from pnc_bridge.secc.effects import (
    ValidateContractChain,
    ValidateContractChainResult,
    VerifyAuthorizationSignature,
    VerifyAuthorizationSignatureResult,
    VerifyMeteringReceiptSignature,
    VerifyMeteringReceiptSignatureResult,
)

__all__ = ["ContractPolicy", "PkiPort"]

log = logging.getLogger("pnc_bridge.bridge")

#: how long a verdict is reused (both effects of one PaymentDetailsReq arrive within ms)
_CACHE_SECONDS = 30.0
_CACHE_SIZE = 16


@dataclass(frozen=True)
class ContractPolicy:
    """How contract certificates are checked (see the module rules)."""

    local_validation: bool = True
    central_validation_allowed: bool = False
    validation_offline: bool = True


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class PkiPort:
    """Fulfils ValidateContractChain, VerifyAuthorizationSignature and
    VerifyMeteringReceiptSignature. ``anchors`` is a ``pnc_bridge.pki.TrustStore`` (or
    anything ``validate_chain`` takes as ``store``); ``policy()`` gives the present policy."""

    def __init__(
        self,
        anchors: object,
        policy: Callable[[], ContractPolicy],
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.anchors = anchors
        self.policy = policy
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[tuple, tuple[float, Verdict]] = {}

    def verdict(self, leaf: bytes, sub_cas: tuple[bytes, ...], emaid: str | None) -> Verdict:
        """The local verdict for a contract chain (cached briefly, see the module rules)."""
        key = (leaf, tuple(sub_cas), emaid)
        now = self._monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        verdict = validate_chain(leaf, list(sub_cas), purpose="contract", store=self.anchors, at=self._clock(),
                                 emaid=emaid or None)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (now, verdict)
        return verdict

    async def validate_contract_chain(self, effect: ValidateContractChain, ctx) -> ValidateContractChainResult:
        policy = self.policy()
        where = f"EVSE {ctx.evse_id}: contract {effect.emaid or '(no EMAID)'}"
        if not policy.local_validation:
            log.info("%s: local validation off by configuration; the CSMS decides", where)
            return ValidateContractChainResult(effect.id, None, "local validation off; left to the CSMS")
        verdict = self.verdict(effect.leaf, effect.sub_cas, effect.emaid)
        if verdict.valid:
            log.info("%s: chain valid (%s)", where, verdict.reason)
            return ValidateContractChainResult(effect.id, None, verdict.reason)
        if verdict.failure is Failure.UNKNOWN_ROOT and policy.central_validation_allowed:
            # C07.FR.06 (as libocpp quotes it): no contract root here -> the CSMS validates the chain
            log.info("%s: no local MO root (%s); CentralContractValidationAllowed: the CSMS validates it",
                     where, verdict.reason)
            return ValidateContractChainResult(effect.id, None, "no local root: left to the CSMS")
        log.warning("%s: refused, %s (%s)", where, verdict.response_code, verdict.reason)
        ctx.tracker.authorization_refused()
        return ValidateContractChainResult(effect.id, verdict.response_code, verdict.reason)

    async def verify_authorization_signature(self, effect: VerifyAuthorizationSignature, ctx) -> VerifyAuthorizationSignatureResult:
        verdict = xmldsig.verify_authorization_req(effect.message, effect.certificate)
        if not verdict.valid:
            log.warning("EVSE %d: AuthorizationReq signature refused: %s", ctx.evse_id, verdict.name)
            ctx.tracker.authorization_refused()
        return VerifyAuthorizationSignatureResult(effect.id, verdict.valid, verdict.name)

    async def verify_metering_receipt_signature(self, effect: VerifyMeteringReceiptSignature, ctx) -> VerifyMeteringReceiptSignatureResult:
        verdict = xmldsig.verify_metering_receipt_req(effect.message, effect.certificate)
        if not verdict.valid:
            log.warning("EVSE %d: MeteringReceiptReq signature refused: %s", ctx.evse_id, verdict.name)
        return VerifyMeteringReceiptSignatureResult(effect.id, verdict.valid, verdict.name)
