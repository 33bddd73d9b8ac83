"""What a Plug & Charge CSMS does, as behaviour for the ``hil.csms`` emulator: the demo's
and the bridge tests' CSMS.

- Get15118EVCertificate is answered with the signed CertificateInstallationRes /
  CertificateUpdateRes of a CPS (``hil.cps``, from the test PKI; ISO 15118-20 requests by
  ``hil.cps20`` from ``pki20``), as a CSMS forwards the EV's request to its CPS and
  returns the CPS's answer.
- NotifyEVChargingNeeds is answered Accepted; then the CSMS sends a SetChargingProfile with
  a TxProfile for the EV's transaction (K15): by default two chargingSchedules, the first
  with four periods and a SalesTariff, the second flat.
- Authorize is answered by ``authorize`` (default: Accepted, certificate Accepted).
- With ``remote_start_on_plug_in`` the CSMS answers a connector going Occupied with a
  RequestStartTransaction (an app user starting an EIM session).
- GetCertificateStatus (M06) is answered as a CSMS that forwards it to the certificate's
  OCSP responder: a signed OCSP response from the test PKI's issuing CA (``good``, valid
  for a day; ``ocsp_status`` sets another status, ``certificate_status`` a whole answer).

``PncCsms(csms, pki).install()`` sets the emulator's responses; ``profile_sent`` is set
when a SetChargingProfile was accepted; ``send_profile(...)`` sends another one (a new
limit during the charge loop).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from typing import Any, Callable

from hil.cps import answer_certificate_request

__all__ = ["DEMO_SCHEDULES", "PncCsms"]

log = logging.getLogger("hil.demo")

#: The TxProfile's chargingSchedules (camelCase, as on the wire).
DEMO_SCHEDULES: list[dict[str, Any]] = [
    {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 50000.0},
            {"startPeriod": 900, "limit": 22000.0},
            {"startPeriod": 2700, "limit": 11000.0},
            {"startPeriod": 5400, "limit": 50000.0},
        ],
        "salesTariff": {
            "id": 1,
            "salesTariffDescription": "day/night",
            "numEPriceLevels": 2,
            "salesTariffEntry": [
                {"relativeTimeInterval": {"start": 0}, "ePriceLevel": 2},
                {"relativeTimeInterval": {"start": 2700}, "ePriceLevel": 1},
            ],
        },
    },
    {
        "id": 2,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 30000.0}],
    },
]


class PncCsms:
    """Plug & Charge behaviour for a ``hil.csms.CsmsEmulator`` (see the module docstring)."""

    def __init__(
        self,
        csms: Any,
        pki: Any,
        *,
        schedules: list[dict[str, Any]] | None = None,
        send_profile_on_needs: bool = True,
        remote_start_on_plug_in: bool = False,
        authorize: Callable[[dict, str], dict] | dict | None = None,
        certificate: Callable[[dict, str], dict] | dict | None = None,
        pki20: Any = None,
        certificate_status: Callable[[dict, str], dict] | dict | None = None,
        ocsp_status: str = "good",
    ) -> None:
        self.csms = csms
        self.pki = pki
        self.pki20 = pki20
        self.schedules = DEMO_SCHEDULES if schedules is None else schedules
        self.send_profile_on_needs = send_profile_on_needs
        self.remote_start_on_plug_in = remote_start_on_plug_in
        self.authorize = authorize
        self.certificate = certificate
        self.certificate_status = certificate_status
        self.ocsp_status = ocsp_status
        self.profile_sent = asyncio.Event()
        self.profile_answers: list[dict[str, Any]] = []
        self._ids = itertools.count(101)
        self._tasks: set[asyncio.Task] = set()

    @staticmethod
    def warm_up() -> None:
        """Load the CPS's EXI codec now: a CPS in service is warm, and its first answer should
        not carry the half second a codec takes to load on a small machine."""
        from pnc_bridge import exi

        try:
            exi.decode("iso2", b"\x80")
        except exi.ExiDecodeError:
            pass

    def install(self) -> "PncCsms":
        self.csms.responses["Get15118EVCertificate"] = self.certificate or self._certificate
        self.csms.responses["NotifyEVChargingNeeds"] = self._needs
        self.csms.responses["GetCertificateStatus"] = self.certificate_status or self._ocsp
        if self.authorize is not None:
            self.csms.responses["Authorize"] = self.authorize
        if self.remote_start_on_plug_in:
            self.csms.responses["StatusNotification"] = self._status
        return self

    def _status(self, payload: dict, station: str) -> dict:
        if payload.get("connectorStatus") == "Occupied":
            self._spawn(self._remote_start(station, payload["evseId"]))
        return {}

    async def _remote_start(self, station: str, evse_id: int) -> None:
        try:
            answer = await self.csms.call_json(station, "RequestStartTransaction", {
                "evseId": evse_id, "remoteStartId": next(self._ids),
                "idToken": {"idToken": "DEMO-APP-USER", "type": "Central"}})
            if answer.get("status") != "Accepted":
                log.warning("RequestStartTransaction refused: %s", answer)
        except Exception as exc:  # noqa: BLE001 - an emulator: log, the test sees no authorization
            log.warning("RequestStartTransaction failed: %s", exc)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ answers
    def _certificate(self, payload: dict, station: str) -> dict:
        try:
            exi = base64.b64decode(payload["exiRequest"], validate=True)
        except (KeyError, ValueError):
            return {"status": "Failed"}
        if str(payload.get("iso15118SchemaVersion", "")).startswith("urn:iso:std:iso:15118:-20") and self.pki20 is not None:
            from hil.cps20 import answer_certificate_installation_20

            response = answer_certificate_installation_20(exi, self.pki20)
        else:
            response = answer_certificate_request(exi, self.pki)
        return {"status": "Accepted", "exiResponse": base64.b64encode(response).decode()}

    def _ocsp(self, payload: dict, station: str) -> dict:
        """The OCSP responder behind the CSMS: finds the certificate by its CertID in the
        test PKI and answers with a response signed by its issuer."""
        import datetime as dt

        from pnc_bridge.pki import build_ocsp_response, certificate_hash_data

        wanted = payload["ocspRequestData"]
        for pki in (self.pki, self.pki20):  # the -2 and the -20 test PKI: the same names, other keys
            if pki is None:
                continue
            certs = [issued.certificate for issued in pki.issued.values()]
            keys = {issued.certificate.subject: issued.key for issued in pki.issued.values()}
            for cert in certs:
                issuer = next((c for c in certs if c.subject == cert.issuer), None)
                if issuer is None or cert.subject == cert.issuer:
                    continue
                data = certificate_hash_data(cert, issuer)
                if (data.serial_number, data.issuer_name_hash, data.issuer_key_hash) == (
                        wanted["serialNumber"].lower().lstrip("0") or "0", wanted["issuerNameHash"].lower(),
                        wanted["issuerKeyHash"].lower()):
                    now = dt.datetime.now(dt.timezone.utc)
                    der = build_ocsp_response(cert, issuer, keys[issuer.subject], status=self.ocsp_status,
                                              this_update=now - dt.timedelta(minutes=1),
                                              next_update=now + dt.timedelta(days=1),
                                              revocation_time=now - dt.timedelta(days=1) if self.ocsp_status == "revoked" else None)
                    return {"status": "Accepted", "ocspResult": base64.b64encode(der).decode()}
        return {"status": "Failed", "statusInfo": {"reasonCode": "UnknownCertificate"}}

    def _needs(self, payload: dict, station: str) -> dict:
        if self.send_profile_on_needs:
            self._spawn(self._profile_after_needs(station, payload["evseId"]))
        return {"status": "Accepted"}

    async def _profile_after_needs(self, station: str, evse_id: int) -> None:
        try:
            await self.send_profile(station, evse_id)
        except Exception as exc:  # noqa: BLE001 - an emulator: log, the test sees no profile
            log.warning("SetChargingProfile after NotifyEVChargingNeeds failed: %s", exc)

    # ------------------------------------------------------------------ CSMS -> station
    def transaction_of(self, station: str, evse_id: int) -> str | None:
        """The transaction the CSMS knows open on ``evse_id`` (from TransactionEvents)."""
        open_ids: dict[str, bool] = {}
        evse_of: dict[str, int] = {}
        for record in self.csms.received("TransactionEvent", station=station):
            p = record.payload
            tid = p["transactionInfo"]["transactionId"]
            if "evse" in p:
                evse_of[tid] = p["evse"]["id"]
            open_ids[tid] = p["eventType"] != "Ended"
        return next((t for t, is_open in reversed(list(open_ids.items())) if is_open and evse_of.get(t) == evse_id), None)

    async def send_profile(self, station: str, evse_id: int, schedules: list[dict[str, Any]] | None = None,
                           *, profile_id: int | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """SetChargingProfile with a TxProfile for the open transaction on ``evse_id`` (waits
        for its TransactionEvent Started); returns the station's answer."""
        transaction_id = await self.csms.wait_for(lambda e: self.transaction_of(station, evse_id), timeout)
        profile = {
            "id": profile_id if profile_id is not None else next(self._ids),
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": transaction_id,
            "chargingSchedule": schedules if schedules is not None else self.schedules,
        }
        answer = await self.csms.call_json(station, "SetChargingProfile", {"evseId": evse_id, "chargingProfile": profile})
        self.profile_answers.append(answer)
        if answer.get("status") == "Accepted":
            self.profile_sent.set()
        else:
            log.warning("SetChargingProfile refused: %s", answer)
        return answer
