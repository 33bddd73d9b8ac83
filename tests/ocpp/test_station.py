"""The station against the hil CSMS emulator (ocpp package) over real WebSockets on
loopback: boot handling and every message of the issue in both directions. Each test
ends by checking that the CSMS found no frame of ours invalid under the official schemas."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timezone
from typing import Any

import pytest

from hil.csms import CsmsCallError, CsmsEmulator
from pnc_bridge.ocpp import CallFailed, OCPPCommCtrlr, OutgoingInvalid, events
from tests.ocpp.conftest import IDENTITY, PASSWORD, Pki, issue, run

#: Every test here runs on OCPP 2.0.1 and on OCPP 2.1 (the emulator accepts one of them).
pytestmark = pytest.mark.usefixtures("each_ocpp_version")

CSMS_AUTH = {IDENTITY: PASSWORD}


def answered(csms: CsmsEmulator, action: str) -> bool:
    """The CSMS has sent its CALLRESULT to a CALL of ``action``."""
    ids = {r.message_id for r in csms.received(action)}
    return any(r.direction == "out" and r.message_type == 3 and r.message_id in ids for r in csms.record)


def no_invalid_frames(csms: CsmsEmulator) -> None:
    assert csms.invalid_frames() == [], [f.error for f in csms.invalid_frames()]


async def online(h, csms: CsmsEmulator, **kwargs: Any):
    station = await h.start(**kwargs)
    assert await station.wait_online(10)
    await csms.wait_connected(IDENTITY)
    return station


def test_boot_accepted_then_status_notifications_then_heartbeats(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH, boot={"status": "Accepted", "interval": 1}) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            await csms.wait_for(lambda e: len(e.received("Heartbeat")) >= 1, 5)  # B01.FR.04: interval 1 s applied
            calls = [r.action for r in csms.received()]
            assert calls[0] == "BootNotification"  # B01.FR.08
            assert calls[1] == "StatusNotification"  # B01.FR.05
            boot = csms.received("BootNotification")[0].payload
            assert boot == {"chargingStation": {"model": "test", "vendorName": "pnc-bridge", "serialNumber": "SN-TEST-1",
                                                "firmwareVersion": "0.1"}, "reason": "PowerUp"}
            assert station.device_model.get_int(OCPPCommCtrlr.HeartbeatInterval) == 1
            no_invalid_frames(csms)
            await h.stop()

    run(body())


def test_boot_pending_allows_only_csms_requests_and_triggered_messages(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH, boot={"status": "Pending", "interval": 1}) as csms:
            h = harness(csms.url)
            station = await h.start()
            await csms.wait_for(lambda e: answered(e, "BootNotification"), 5)
            await asyncio.sleep(0.1)  # the station has processed the answer
            await station.security_event("SettingSystemTime")  # queued, must wait for Accepted
            with pytest.raises(CallFailed) as failed:
                await station.authorize({"idToken": "X", "type": "eMAID"})
            assert failed.value.reason == "NotAccepted"
            # B02.FR.01: the CSMS may read the device model while Pending
            answer = await csms.call_json(IDENTITY, "GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]})
            assert answer["getVariableResult"][0]["attributeValue"] == IDENTITY
            # B02.FR.05: no remote start while Pending
            answer = await csms.call_json(IDENTITY, "RequestStartTransaction", {"idToken": {"idToken": "A", "type": "Central"}, "remoteStartId": 1})
            assert answer["status"] == "Rejected"
            await csms.wait_for(lambda e: len(e.received("BootNotification")) >= 2, 5)  # B02.FR.08: retry after interval
            assert {r.action for r in csms.received()} == {"BootNotification"}
            csms.boot = {"status": "Accepted", "interval": 300}
            await csms.wait_for(lambda e: e.received("SecurityEventNotification"), 5)
            no_invalid_frames(csms)
            await h.stop()

    run(body())


def test_boot_rejected_refuses_csms_requests_with_security_error(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH, boot={"status": "Rejected", "interval": 30}) as csms:
            h = harness(csms.url)
            await h.start()
            await csms.wait_for(lambda e: answered(e, "BootNotification"), 5)
            with pytest.raises(CsmsCallError) as refused:
                await csms.call_json(IDENTITY, "GetVariables", {"getVariableData": [
                    {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]})
            assert refused.value.code == "SecurityError"  # B03.FR.08
            await asyncio.sleep(0.5)
            assert len(csms.received("BootNotification")) == 1  # B03.FR.02: nothing before the interval
            await h.stop()

    run(body())


def test_plug_and_charge_calls_and_durable_messages(harness, each_ocpp_version: str) -> None:
    long_exi = base64.b64encode(b"\x80" * 7000).decode()  # 9336 characters: over the schema's 7500

    async def body() -> None:
        responses = {
            "Get15118EVCertificate": {"status": "Accepted", "exiResponse": long_exi},
            "Authorize": lambda p, _: {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"},
        }
        async with CsmsEmulator(basic_auth=CSMS_AUTH, responses=responses, unchecked_responses={"Get15118EVCertificate"}) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            hash_data = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa" * 32, "issuerKeyHash": "bb" * 32,
                         "serialNumber": "1f", "responderURL": "http://ocsp.example"}
            auth = await station.authorize({"idToken": "DEAAA1234567890", "type": "eMAID"},
                                           iso15118_certificate_hash_data=[hash_data])
            assert auth.certificate_status.value == "Accepted"
            chain = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
            with pytest.raises(ValueError):  # C07.FR.06: not while central validation is not allowed
                await station.authorize({"idToken": "DEAAA1234567890", "type": "eMAID"}, certificate=chain)
            await csms.call_json(IDENTITY, "SetVariables", {"setVariableData": [{"component": {"name": "ISO15118Ctrlr"},
                                 "variable": {"name": "CentralContractValidationAllowed"}, "attributeValue": "true"}]})
            auth = await station.authorize({"idToken": "DEAAA1234567890", "type": "eMAID"}, certificate=chain)
            cert = await station.get_15118_ev_certificate(iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                                                          action="Install", exi_request="gAAA")
            assert cert.exi_response == long_exi  # accepted thanks to OCPPCommCtrlr.FieldLength
            status = await station.get_certificate_status(hash_data)
            assert status.status.value == "Accepted"
            needs = await station.notify_ev_charging_needs(1, {"requestedEnergyTransfer": "DC",
                                                               "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 800}})
            assert needs.status.value == "Accepted"
            await station.notify_ev_charging_schedule(1, datetime.now(timezone.utc), {
                "id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 50000}]})
            await station.meter_values(1, [{"timestamp": datetime.now(timezone.utc), "sampledValue": [{"value": 12.5}]}])
            await station.security_event("TamperDetectionActivated", "door opened")
            await station.security_event("InvalidMessages", "only logged")  # not critical: A04.FR.04
            await csms.wait_for(lambda e: e.received("NotifyEVChargingSchedule") and e.received("MeterValues")
                                and len(e.received("SecurityEventNotification")) >= 2, 5)
            types = [r.payload["type"] for r in csms.received("SecurityEventNotification")]
            assert "TamperDetectionActivated" in types and "InvalidMessages" not in types
            assert csms.received("Authorize")[1].payload["certificate"].startswith("-----BEGIN")
            longest = 5600 if each_ocpp_version == "ocpp2.0.1" else 11000  # exiRequest maxLength of the version
            with pytest.raises(OutgoingInvalid):
                await station.get_15118_ev_certificate(iso15118_schema_version="x", action="Install",
                                                       exi_request="A" * (longest + 1))
            no_invalid_frames(csms)
            await h.stop()
            with pytest.raises(CallFailed) as offline:  # time-critical calls are not queued offline
                await station.authorize({"idToken": "X", "type": "eMAID"})
            assert offline.value.reason == "Offline"

    run(body())


def test_transactions_seqno_and_remote_start_stop(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            queue = station.subscribe()
            answer = await csms.call_json(IDENTITY, "RequestStartTransaction", {
                "evseId": 1, "remoteStartId": 77, "idToken": {"idToken": "APP1", "type": "Central"}})
            assert answer["status"] == "Accepted"
            event = await asyncio.wait_for(queue.get(), 5)
            while not isinstance(event, events.RemoteStartRequested):
                event = await asyncio.wait_for(queue.get(), 5)
            assert (event.evse_id, event.remote_start_id) == (1, 77)
            tid = await station.start_transaction(1, 1, trigger_reason="RemoteStart", id_token=event.id_token,
                                                  remote_start_id=77, charging_state="Charging")
            await station.update_transaction(tid, trigger_reason="MeterValuePeriodic",
                                             meter_value=[{"timestamp": datetime.now(timezone.utc), "sampledValue": [{"value": 3.0}]}])
            status = await csms.call_json(IDENTITY, "GetTransactionStatus", {"transactionId": tid})
            assert status["ongoingIndicator"] is True
            answer = await csms.call_json(IDENTITY, "RequestStopTransaction", {"transactionId": "nope"})
            assert answer["status"] == "Rejected"  # F03.FR.08
            answer = await csms.call_json(IDENTITY, "RequestStopTransaction", {"transactionId": tid})
            assert answer["status"] == "Accepted"  # F03.FR.07
            await station.end_transaction(tid, trigger_reason="RemoteStop", stopped_reason="Remote")
            await csms.wait_for(lambda e: len(e.received("TransactionEvent")) >= 3, 5)
            sent = [r.payload for r in csms.received("TransactionEvent")]
            assert [p["seqNo"] for p in sent] == [0, 1, 2]
            assert [p["eventType"] for p in sent] == ["Started", "Updated", "Ended"]
            assert sent[0]["transactionInfo"]["remoteStartId"] == 77 and sent[0]["evse"] == {"id": 1, "connectorId": 1}
            for _ in range(100):  # the station deletes the row once it has the CALLRESULT
                if await station.store.run(station.outbox.pending) == 0:
                    break
                await asyncio.sleep(0.02)
            status = await csms.call_json(IDENTITY, "GetTransactionStatus", {"transactionId": tid})
            assert status == {"messagesInQueue": False, "ongoingIndicator": False}
            no_invalid_frames(csms)
            one_call_at_a_time(csms)
            await h.stop()

    run(body())


def test_device_model_requests(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            get = await csms.call_json(IDENTITY, "GetVariables", {"getVariableData": [
                {"component": {"name": "ISO15118Ctrlr"}, "variable": {"name": "PnCEnabled"}},
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
                {"component": {"name": "Nope"}, "variable": {"name": "X"}},
                {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}},
            ]})
            statuses = [r["attributeStatus"] for r in get["getVariableResult"]]
            assert statuses == ["Accepted", "Rejected", "UnknownComponent", "Accepted"]
            assert "attributeValue" not in get["getVariableResult"][1]
            put = await csms.call_json(IDENTITY, "SetVariables", {"setVariableData": [
                {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}, "attributeValue": "EVConnected"},
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "MessageTimeout", "instance": "Default"}, "attributeValue": "9"},
            ]})
            assert [r["attributeStatus"] for r in put["setVariableResult"]] == ["Accepted", "Rejected"]
            assert station.device_model.get_list(__import__("pnc_bridge.ocpp", fromlist=["TxCtrlr"]).TxCtrlr.TxStartPoint) == ["EVConnected"]
            base = await csms.call_json(IDENTITY, "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"})
            assert base["status"] == "Accepted"
            await csms.wait_for(lambda e: any(not r.payload.get("tbc") for r in e.received("NotifyReport")), 5)
            parts = [r.payload for r in csms.received("NotifyReport")]
            assert [p["seqNo"] for p in parts] == list(range(len(parts)))  # B07.FR.10
            assert all(p["requestId"] == 5 for p in parts) and all(p.get("tbc") for p in parts[:-1])
            names = {(d["component"]["name"], d["variable"]["name"]) for p in parts for d in p["reportData"]}
            assert ("ISO15118Ctrlr", "SeccId") in names and ("TxCtrlr", "TxStopPoint") in names
            report = await csms.call_json(IDENTITY, "GetReport", {"requestId": 6, "componentVariable": [
                {"component": {"name": "ISO15118Ctrlr"}}]})
            assert report["status"] == "Accepted"
            empty = await csms.call_json(IDENTITY, "GetReport", {"requestId": 7, "componentVariable": [
                {"component": {"name": "NoSuchCtrlr"}}]})
            assert empty["status"] == "EmptyResultSet"  # B08.FR.15
            await csms.wait_for(lambda e: any(r.payload["requestId"] == 6 for r in e.received("NotifyReport")), 5)
            six = [d for r in csms.received("NotifyReport") if r.payload["requestId"] == 6 for d in r.payload["reportData"]]
            assert {d["component"]["name"] for d in six} == {"ISO15118Ctrlr"} and len(six) >= 8
            no_invalid_frames(csms)
            one_call_at_a_time(csms)
            await h.stop()

    run(body())


def test_smart_charging_requests(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            queue = station.subscribe()
            now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            profile = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
                       "chargingSchedule": [{"id": 1, "startSchedule": now, "chargingRateUnit": "W",
                                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}]}]}
            answer = await csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
            assert answer["status"] == "Accepted"
            event = await asyncio.wait_for(queue.get(), 5)
            while not isinstance(event, events.ChargingProfilesChanged):
                event = await asyncio.wait_for(queue.get(), 5)
            assert event.evse_ids == (1,)
            bad = dict(profile, id=2, chargingProfilePurpose="TxProfile", transactionId="none")
            answer = await csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 1, "chargingProfile": bad})
            assert answer["status"] == "Rejected"  # K01.FR.09
            composite = await csms.call_json(IDENTITY, "GetCompositeSchedule", {"evseId": 1, "duration": 600, "chargingRateUnit": "W"})
            assert composite["status"] == "Accepted"
            assert composite["schedule"]["chargingSchedulePeriod"][0]["limit"] == 11000
            listed = await csms.call_json(IDENTITY, "GetChargingProfiles", {"requestId": 9, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})
            assert listed["status"] == "Accepted"
            await csms.wait_for(lambda e: e.received("ReportChargingProfiles"), 5)
            report = csms.received("ReportChargingProfiles")[0].payload
            assert report["requestId"] == 9 and report["chargingProfile"][0]["id"] == 1
            cleared = await csms.call_json(IDENTITY, "ClearChargingProfile", {"chargingProfileId": 1})
            assert cleared["status"] == "Accepted"
            cleared = await csms.call_json(IDENTITY, "ClearChargingProfile", {"chargingProfileId": 1})
            assert cleared["status"] == "Unknown"  # K10.FR.01
            assert (await csms.call_json(IDENTITY, "GetChargingProfiles", {"requestId": 10, "chargingProfile": {}}))["status"] == "NoProfiles"
            assert (await csms.call_json(IDENTITY, "GetCompositeSchedule", {"evseId": 5, "duration": 60}))["status"] == "Rejected"
            no_invalid_frames(csms)
            await h.stop()

    run(body())


def test_profiles_survive_a_restart(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            await online(h, csms)
            profile = {"id": 3, "stackLevel": 1, "chargingProfilePurpose": "ChargingStationMaxProfile",
                       "chargingProfileKind": "Relative",
                       "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32}]}]}
            assert (await csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 0, "chargingProfile": profile}))["status"] == "Rejected"  # K01.FR.38
            profile["chargingProfileKind"] = "Absolute"
            profile["chargingSchedule"][0]["startSchedule"] = "2024-01-01T00:00:00Z"
            assert (await csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 0, "chargingProfile": profile}))["status"] == "Accepted"
            await h.stop()
            station = await online(h, csms)
            assert [p.id for p in station.charging_profiles()] == [3]  # K01.FR.27
            await h.stop()

    run(body())


def test_availability_reset_trigger_and_data_transfer(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            queue = station.subscribe()
            await csms.wait_for(lambda e: e.received("StatusNotification"), 5)
            answer = await csms.call_json(IDENTITY, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}})
            assert answer["status"] == "Accepted"
            await csms.wait_for(lambda e: any(r.payload["connectorStatus"] == "Unavailable" for r in e.received("StatusNotification")), 5)  # G03.FR.04
            again = await csms.call_json(IDENTITY, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}})
            assert again["status"] == "Accepted"  # G03.FR.03
            assert (await csms.call_json(IDENTITY, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 9}}))["status"] == "Rejected"
            await csms.call_json(IDENTITY, "ChangeAvailability", {"operationalStatus": "Operative"})
            for requested, status in [("BootNotification", "Rejected"), ("Heartbeat", "Accepted"), ("FirmwareStatusNotification", "Accepted"),
                                      ("LogStatusNotification", "Accepted"), ("SignCombinedCertificate", "NotImplemented"),
                                      ("TransactionEvent", "Rejected"), ("MeterValues", "NotImplemented")]:
                answer = await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": requested})
                assert answer["status"] == status, requested  # F06.FR.17, F06.FR.08
            answer = await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}})
            assert answer["status"] == "Accepted"
            assert (await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": "StatusNotification"}))["status"] == "Rejected"  # F06.FR.12
            await csms.wait_for(lambda e: e.received("FirmwareStatusNotification") and e.received("LogStatusNotification"), 5)
            assert csms.received("FirmwareStatusNotification")[0].payload == {"status": "Idle"}  # F06.FR.16
            assert (await csms.call_json(IDENTITY, "DataTransfer", {"vendorId": "com.example"}))["status"] == "UnknownVendorId"
            tid = await station.start_transaction(1, 1, trigger_reason="CablePluggedIn", charging_state="EVConnected")
            assert (await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": {"id": 1}}))["status"] == "Accepted"
            await csms.wait_for(lambda e: any(r.payload["triggerReason"] == "Trigger" for r in e.received("TransactionEvent")), 5)  # F06.FR.07
            assert (await csms.call_json(IDENTITY, "Reset", {"type": "OnIdle"}))["status"] == "Scheduled"  # B12.FR.01
            assert (await csms.call_json(IDENTITY, "Reset", {"type": "Immediate", "evseId": 1}))["status"] == "Rejected"  # B11.FR.09
            assert (await csms.call_json(IDENTITY, "Reset", {"type": "Immediate"}))["status"] == "Accepted"  # B12.FR.02
            seen = []
            while len([e for e in seen if isinstance(e, events.ResetRequested)]) < 2:
                seen.append(await asyncio.wait_for(queue.get(), 5))
            resets = [e for e in seen if isinstance(e, events.ResetRequested)]
            assert [(r.reset_type, r.scheduled) for r in resets] == [("OnIdle", True), ("Immediate", False)]
            await station.end_transaction(tid, trigger_reason="ResetCommand", stopped_reason="ImmediateReset")
            no_invalid_frames(csms)
            await h.stop()

    run(body())


def test_certificate_management(harness, pki: Pki) -> None:
    async def body() -> None:
        async def sign(payload: dict, station_id: str) -> dict:
            from cryptography import x509

            csr = x509.load_pem_x509_csr(payload["csr"].encode())
            signed = issue(pki.root, csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value, public_key=csr.public_key())

            async def deliver() -> None:
                await asyncio.sleep(0.05)
                results.append(await csms.call_json(station_id, "CertificateSigned", {
                    "certificateChain": signed.pem.decode(), "certificateType": payload.get("certificateType", "ChargingStationCertificate")}))

            asyncio.get_running_loop().create_task(deliver())
            return {"status": "Accepted"}

        results: list[dict] = []
        async with CsmsEmulator(basic_auth=CSMS_AUTH, responses={"SignCertificate": sign}) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            installed = await csms.call_json(IDENTITY, "InstallCertificate", {"certificateType": "CSMSRootCertificate", "certificate": pki.root.pem.decode()})
            assert installed["status"] == "Accepted"
            v2g_root = await csms.call_json(IDENTITY, "InstallCertificate", {"certificateType": "V2GRootCertificate", "certificate": pki.root.pem.decode()})
            assert v2g_root["status"] == "Accepted"
            leaf = await csms.call_json(IDENTITY, "InstallCertificate", {"certificateType": "MORootCertificate", "certificate": pki.server.pem.decode()})
            assert leaf["status"] == "Rejected"  # not a CA: M05.FR.07
            listed = await csms.call_json(IDENTITY, "GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]})
            assert listed["status"] == "Accepted" and len(listed["certificateHashDataChain"]) == 1
            assert (await csms.call_json(IDENTITY, "GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]}))["status"] == "NotFound"
            for kind, use in (("SignChargingStationCertificate", "ChargingStationCertificate"), ("SignV2GCertificate", "V2GCertificate")):
                answer = await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": kind})
                assert answer["status"] == "Accepted"
                wanted = 1 if use == "ChargingStationCertificate" else 2
                await csms.wait_for(lambda e, wanted=wanted: len(results) >= wanted, 10)
            assert [r["status"] for r in results] == ["Accepted", "Accepted"]
            csrs = [r.payload for r in csms.received("SignCertificate")]
            assert [c["certificateType"] for c in csrs] == ["ChargingStationCertificate", "V2GCertificate"]
            assert station.certificates.tls_client_files() is not None
            chain = await csms.call_json(IDENTITY, "GetInstalledCertificateIds", {"certificateType": ["V2GCertificateChain"]})
            assert chain["status"] == "Accepted" and chain["certificateHashDataChain"][0]["certificateType"] == "V2GCertificateChain"
            # a chain that does not end in an installed root of its kind is refused (A02.FR.06)
            stranger = issue(pki.rogue_root, "SECC1", public_key=issue(pki.rogue_root, "x").key.public_key())
            refused = await csms.call_json(IDENTITY, "CertificateSigned", {"certificateChain": stranger.pem.decode(), "certificateType": "V2GCertificate"})
            assert refused["status"] == "Rejected"
            bogus = await csms.call_json(IDENTITY, "CertificateSigned", {"certificateChain": "garbage", "certificateType": "ChargingStationCertificate"})
            assert bogus["status"] == "Rejected"
            await csms.wait_for(lambda e: any(r.payload["type"] == "InvalidChargingStationCertificate" for r in e.received("SecurityEventNotification")), 5)  # A02.FR.07
            hash_data = listed["certificateHashDataChain"][0]["certificateHashData"]
            # the same root is installed as CSMS and as V2G root: two deletions, then NotFound (M04.FR.04)
            statuses = [(await csms.call_json(IDENTITY, "DeleteCertificate", {"certificateHashData": hash_data}))["status"] for _ in range(3)]
            assert statuses == ["Accepted", "Accepted", "NotFound"]
            no_invalid_frames(csms)
            await h.stop()

    run(body())


def one_call_at_a_time(csms: CsmsEmulator) -> None:
    """Part 4, 4.1.1 on the CSMS's record: every CALL of the station was answered before
    the station sent its next one (no faults, so no CALL timed out)."""
    open_call = None
    for record in csms.record:
        if record.direction == "in" and record.message_type == 2:
            assert open_call is None, f"{record.action} sent while {open_call} was unanswered"
            open_call = record.message_id
        elif record.direction == "out" and record.message_type in (3, 4) and record.message_id == open_call:
            open_call = None


def test_a_live_session_is_not_stuck_behind_a_backlog(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            station = await online(h, csms)
            await h.stop()
            # a long outage: 300 TransactionEvents wait in the outbox
            from pnc_bridge.ocpp import Outbox, Store

            store = Store(h.directory / "ocpp.sqlite")
            outbox = Outbox(store)
            for n in range(300):
                outbox.put_transaction_event(1, lambda seq: {
                    "eventType": "Updated", "timestamp": "2024-01-01T00:00:00Z", "triggerReason": "MeterValuePeriodic",
                    "seqNo": seq, "transactionInfo": {"transactionId": "backlog"}}, offline=True, restart_sequence=n == 0)
            store.close()
            station = await h.start()
            assert await station.wait_online(5)
            await csms.wait_for(lambda e: e.received("TransactionEvent"), 5)  # the backlog is draining
            arrived = len(csms.record)  # the EV arrives now
            response = await station.authorize({"idToken": "LIVE-EV", "type": "eMAID"})
            assert response.id_token_info.status.value == "Accepted"
            authorize_at = next(i for i, r in enumerate(csms.record) if r.action == "Authorize" and r.direction == "in")
            between = [r for r in csms.record[arrived:authorize_at] if r.direction == "in" and r.action == "TransactionEvent"]
            assert len(between) <= 1  # only the CALL in flight when the EV arrived, not the backlog
            assert len(csms.received("TransactionEvent")) < 250
            await csms.wait_for(lambda e: len(e.received("TransactionEvent")) >= 300, 30)
            one_call_at_a_time(csms)
            await h.stop()

    run(body(), timeout=90)


def test_availability_survives_a_restart(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth=CSMS_AUTH) as csms:
            h = harness(csms.url)
            await online(h, csms)
            answer = await csms.call_json(IDENTITY, "ChangeAvailability", {"operationalStatus": "Inoperative"})
            assert answer["status"] == "Accepted"
            await h.stop()
            count = len(csms.received("StatusNotification"))
            await online(h, csms)
            await csms.wait_for(lambda e: len(e.received("StatusNotification")) > count, 5)
            after_boot = csms.received("StatusNotification")[count].payload
            assert after_boot["connectorStatus"] == "Unavailable"  # G04.FR.09, B11.FR.02
            await h.stop()

    run(body())
