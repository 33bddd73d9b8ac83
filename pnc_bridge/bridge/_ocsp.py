"""OCPP M06, Get V2G Charging Station Certificate status: OCSP responses for the SECC chains
(the ISO 15118-2 ``secc`` and the ISO 15118-20 ``secc20`` slot), from the CSMS, kept in the
trust store and stapled in the EV's TLS handshake (TLS 1.2 and 1.3).

Rules of this module:

- What is due is decided by a pure function (:func:`due`) of the trust-store snapshot, the
  time and the recent failures: a certificate of the SECC chain (leaf and sub-CAs, not the
  root) without a stored response, or with one that is unusable, older than
  ``BRIDGE_OCSP_MAX_AGE`` or past half its validity (thisUpdate to nextUpdate). A new
  SECC chain starts without responses (``TrustStore.install_leaf`` drops them), so it is
  asked for at once.
- :class:`OcspRefresher` asks the CSMS (GetCertificateStatusRequest with the certificate's
  OCSPRequestDataType; responderURL from its authorityInfoAccess, required by the schema),
  checks every answer against the certificate and its issuer (signature, responder,
  currency: ``pnc_bridge.pki.check_ocsp_response``) and stores the good ones in one
  trust-store change. A response is never stored unchecked; a failure (Failed, CALLERROR,
  offline, a response that does not verify) is logged and retried after
  ``BRIDGE_OCSP_RETRY``; the last good response stays in use meanwhile.
- Never in an EV's way: while a session is live no request is started (OCPP allows one
  outstanding CALL, and the EV's Authorize must not wait behind ours); the rest is asked
  for ``BRIDGE_OCSP_BUSY_RETRY`` later.
- A certificate the responder says is revoked is stored too (the EV is owed the truth) and
  logged as an error: the SECC certificate needs replacing.
- :func:`current_response` is what TLS staples: the leaf's response while it is current.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable

from cryptography import x509

from pnc_bridge import timing
from pnc_bridge.pki import (
    LeafSlot,
    OcspError,
    OcspStatus,
    RootKind,
    StoreError,
    TrustStore,
    certificate_hash_data,
    check_ocsp_response,
    fingerprint,
    issuing_root,
)

__all__ = ["SECC_SLOTS", "OcspRefresher", "due", "current_response", "chain_with_issuers"]

log = logging.getLogger("pnc_bridge.bridge")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


#: The trust-store slots whose chains the EV sees in TLS: ISO 15118-2 and ISO 15118-20.
SECC_SLOTS = (LeafSlot.SECC, LeafSlot.SECC20)


def chain_with_issuers(snapshot: Any, slot: LeafSlot = LeafSlot.SECC) -> list[tuple[x509.Certificate, x509.Certificate]]:
    """``(certificate, issuer)`` for a SECC leaf and its sub-CAs; the last issuer is the V2G
    root the chain ends in (empty when the root is not in the store or there is no leaf)."""
    leaf = snapshot.leaves.get(slot)
    if leaf is None:
        return []
    chain = list(leaf.chain)
    pairs = [(chain[i], chain[i + 1]) for i in range(len(chain) - 1) if chain[i].issuer == chain[i + 1].subject]
    top = chain[-1]
    if top.issuer != top.subject:
        root = issuing_root(top, snapshot.roots_of(RootKind.V2G))
        if root is not None:
            pairs.append((top, root))
    return pairs


def _age_ok(result: Any, now: dt.datetime, max_age: float) -> bool:
    if (now - result.this_update).total_seconds() > max_age:
        return False
    if result.next_update is not None and now >= result.this_update + (result.next_update - result.this_update) / 2:
        return False  # past half its validity: renewed well before it runs stale
    return True


def due(
    snapshot: Any,
    now: dt.datetime,
    *,
    failed: dict[str, dt.datetime] | None = None,
    slot: LeafSlot = LeafSlot.SECC,
    max_age: float = timing.BRIDGE_OCSP_MAX_AGE,
    retry: float = timing.BRIDGE_OCSP_RETRY,
) -> list[tuple[x509.Certificate, x509.Certificate]]:
    """The ``(certificate, issuer)`` pairs of ``slot``'s chain whose OCSP response should be
    asked for now (see the module rules); ``failed`` maps fingerprints to the last failure."""
    failed = failed or {}
    wanted = []
    for cert, issuer in chain_with_issuers(snapshot, slot):
        last_failure = failed.get(fingerprint(cert))
        if last_failure is not None and (now - last_failure).total_seconds() < retry:
            continue
        der = snapshot.ocsp_response(slot, cert)
        if der is not None:
            try:
                result = check_ocsp_response(der, cert, issuer, at=now)
            except OcspError:
                result = None
            if result is not None and _age_ok(result, now, max_age):
                continue
        wanted.append((cert, issuer))
    return wanted


def current_response(snapshot: Any, cert: x509.Certificate, issuer: x509.Certificate | None,
                     now: dt.datetime | None = None, slot: LeafSlot = LeafSlot.SECC) -> tuple[bytes, dt.datetime | None] | None:
    """The stored response about ``cert`` (of ``slot``'s chain) if it verifies and is current,
    with its nextUpdate."""
    der = snapshot.ocsp_response(slot, cert)
    if der is None or issuer is None:
        return None
    try:
        result = check_ocsp_response(der, cert, issuer, at=now or _now())
    except OcspError as exc:
        log.warning("the stored OCSP response for the SECC certificate is not used: %s", exc)
        return None
    return (der, result.next_update) if result is not None else None


@dataclass
class RefreshReport:
    asked: int = 0
    stored: int = 0
    failed: int = 0


class OcspRefresher:
    """Keeps the SECC chain's OCSP responses fresh through the CSMS (see the module rules)."""

    def __init__(
        self,
        station: Any,
        trust_store: TrustStore,
        *,
        clock: Callable[[], dt.datetime] = _now,
        check_interval: float = timing.BRIDGE_OCSP_CHECK_INTERVAL,
        timeout: float | None = timing.BRIDGE_OCSP_TIMEOUT,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.station = station
        self.trust_store = trust_store
        self.clock = clock
        self.check_interval = check_interval
        self.timeout = timeout
        self.busy = busy
        self.deferred = False
        self.failed: dict[str, dt.datetime] = {}
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Forever: when online, ask for what is due; then sleep until the next check (or a
        ``wake``, e.g. a new SECC certificate)."""
        while True:
            await self.station.wait_online()
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - keep the service running; try again later
                log.exception("OCSP refresh failed")
            self.wake.clear()
            pause = min(self.check_interval, timing.BRIDGE_OCSP_BUSY_RETRY) if self.deferred else self.check_interval
            try:
                await asyncio.wait_for(self.wake.wait(), pause)
            except asyncio.TimeoutError:
                pass

    async def refresh(self) -> RefreshReport:
        """Ask the CSMS for every response that is due; store each slot's good ones in one change."""
        report = RefreshReport()
        try:
            snapshot = self.trust_store.snapshot()
        except StoreError as exc:
            log.error("OCSP: the trust store cannot be read: %s", exc)
            return report
        now = self.clock()
        self.deferred = False
        for slot in SECC_SLOTS:
            if not await self._refresh_slot(snapshot, slot, now, report) or self.deferred:
                break
        return report

    async def _refresh_slot(self, snapshot: Any, slot: LeafSlot, now: dt.datetime, report: RefreshReport) -> bool:
        """One slot's due responses; False when the CSMS is offline (no use asking on)."""
        from pnc_bridge.ocpp import CallFailed

        good: dict[x509.Certificate, bytes] = {}
        online = True
        for cert, issuer in due(snapshot, now, failed=self.failed, slot=slot):
            if self.busy():
                # an EV session is live: its Authorize / Get15118EVCertificate must not wait
                # behind our CALL (one outstanding CALL per connection); ask again later
                self.deferred = True
                break
            name = cert.subject.rfc4514_string()
            hash_data = certificate_hash_data(cert, issuer)
            if hash_data.responder_url is None:
                log.warning("OCSP: %s names no OCSP responder (authorityInfoAccess); its status cannot be asked for", name)
                self.failed[fingerprint(cert)] = now
                continue
            report.asked += 1
            try:
                response = await self.station.get_certificate_status(hash_data.as_ocpp(), timeout=self.timeout)
            except CallFailed as exc:
                log.warning("OCSP: GetCertificateStatus for %s failed: %s", name, exc)
                self._failed(cert, now, report)
                if exc.reason == "Offline":
                    online = False
                    break
                continue
            der = self._check(response, cert, issuer, name)
            if der is None:
                self._failed(cert, now, report)
                continue
            good[cert] = der
            self.failed.pop(fingerprint(cert), None)
        if good:
            try:
                self.trust_store.set_ocsp_responses(slot, good)
            except StoreError as exc:  # the chain changed meanwhile: asked for again next time
                log.warning("OCSP: responses not stored: %s", exc)
                return online
            report.stored += len(good)
            log.info("OCSP: %d response(s) for the %s chain stored", len(good), slot.value)
        return online

    def _failed(self, cert: x509.Certificate, now: dt.datetime, report: RefreshReport) -> None:
        self.failed[fingerprint(cert)] = now
        report.failed += 1

    def _check(self, response: Any, cert: x509.Certificate, issuer: x509.Certificate, name: str) -> bytes | None:
        status = getattr(response.status, "value", response.status)
        if status != "Accepted" or not response.ocsp_result:
            reason = getattr(response, "status_info", None)
            log.warning("OCSP: the CSMS answered %s for %s%s", status, name,
                        f" ({reason.reason_code})" if reason is not None else "")
            return None
        try:
            der = base64.b64decode(response.ocsp_result, validate=True)
        except (binascii.Error, ValueError):
            log.warning("OCSP: the CSMS's ocspResult for %s is not base64", name)
            return None
        try:
            result = check_ocsp_response(der, cert, issuer, at=self.clock())
        except OcspError as exc:
            log.warning("OCSP: the response for %s is not used: %s", name, exc)
            return None
        if result is None:
            log.warning("OCSP: the CSMS's response is about other certificates than %s", name)
            return None
        if result.status is OcspStatus.REVOKED:
            log.error("OCSP: %s is REVOKED (%s): replace the SECC certificate", name, result.revocation_reason or "no reason")
        elif result.status is OcspStatus.UNKNOWN:
            log.warning("OCSP: the responder does not know %s", name)
        return der
