"""Security profiles 1-3 over real TLS on loopback with a test PKI made at test time;
wrong certificates and passwords refused; password change (A01), profile upgrade (A05)
and certificate renewal (A02) without losing queued messages."""

from __future__ import annotations

import pytest

import asyncio
from datetime import datetime, timezone

from cryptography import x509

from hil.csms import CsmsEmulator
from pnc_bridge.ocpp import SecurityCtrlr
from tests.ocpp.conftest import IDENTITY, PASSWORD, Pki, issue, run

#: Every test here runs on OCPP 2.0.1 and on OCPP 2.1 (the emulator accepts one of them).
pytestmark = pytest.mark.usefixtures("each_ocpp_version")


def wss(csms: CsmsEmulator) -> str:
    return f"wss://localhost:{csms.port}/ocpp"


def install_root(h, pki: Pki) -> None:
    status, _ = h.certificates.install_root("CSMSRootCertificate", pki.root.pem.decode(), datetime.now(timezone.utc))
    assert status == "Accepted"


def test_profile_1_basic_auth_and_a_wrong_password(harness) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: "Another-Password-987"}) as csms:
            h = harness(csms.url)
            station = await h.start()
            await csms.wait_for(lambda e: len(e.refused) >= 2, 5)
            assert all(status == 401 for _, status in csms.refused)
            assert not station.online
            # A00.FR.203: the password is sent with every connection request
            csms.basic_auth = {IDENTITY: PASSWORD}
            assert await station.wait_online(5)
            logged = station.store.query("SELECT type FROM security_log")
            assert ("FailedToAuthenticateAtCsms",) in logged  # logged, not sent: not critical
            await h.stop()

    run(body())


def test_profile_2_tls_with_basic_auth(harness, pki: Pki) -> None:
    async def body() -> None:
        async with CsmsEmulator(ssl_context=pki.server_context(), basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(wss(csms), security_profile=2)
            install_root(h, pki)
            station = await h.start()
            assert await station.wait_online(10)
            assert csms.peer_certificates == [None]
            assert csms.invalid_frames() == []
            await h.stop()

    run(body())


def test_profile_2_refuses_a_csms_certificate_from_another_root(harness, pki: Pki) -> None:
    async def body() -> None:
        rogue = CsmsEmulator(ssl_context=pki.server_context(server=pki.rogue_server), basic_auth={IDENTITY: PASSWORD})
        await rogue.start()
        h = harness(wss(rogue), security_profile=2)
        install_root(h, pki)
        station = await h.start()
        await asyncio.sleep(1.0)
        assert not station.online and rogue.connections == 0  # A00.FR.311: terminated
        port = rogue.port
        await rogue.stop()
        async with CsmsEmulator(port=port, ssl_context=pki.server_context(), basic_auth={IDENTITY: PASSWORD}) as good:
            await good.wait_for(lambda e: any(r.payload["type"] == "InvalidCsmsCertificate"
                                              for r in e.received("SecurityEventNotification")), 10)
            await asyncio.sleep(0.3)
            events = [r.payload for r in good.received("SecurityEventNotification")]
            # A00.FR.310: the event is queued and sent once connected, once per run of failures
            assert [e["type"] for e in events].count("InvalidCsmsCertificate") == 1
            await h.stop()

    run(body())


def test_profile_3_mutual_tls_and_a_wrong_client_certificate(harness, pki: Pki, tmp_path) -> None:
    async def body() -> None:
        async with CsmsEmulator(ssl_context=pki.server_context(require_client_cert=True)) as csms:
            h = harness(wss(csms), security_profile=3, password=None)
            install_root(h, pki)
            h.certificates.provision_charging_station_certificate(pki.station.pem, pki.station.key_pem)
            station = await h.start()
            assert await station.wait_online(10)
            peer = x509.load_der_x509_certificate(csms.peer_certificates[0])
            assert peer.serial_number == pki.station.cert.serial_number
            await h.stop()

            wrong = issue(pki.rogue_root, "SN-TEST-1")
            other = harness(wss(csms), security_profile=3, password=None)
            other.directory = tmp_path / "other"
            other.certificates = type(h.certificates)(other.directory / "trust")
            install_root(other, pki)
            other.certificates.provision_charging_station_certificate(wrong.pem, wrong.key_pem)
            refused = await other.start()
            await asyncio.sleep(1.0)
            assert not refused.online and csms.connections == 1  # the CSMS refused the handshake
            await other.stop()

    run(body())


def test_password_change_reconnects_and_keeps_queued_messages(harness) -> None:
    new_password = "Brand-New-Password-42"

    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(csms.url)
            station = await h.start()
            assert await station.wait_online(5)
            tid = await station.start_transaction(1, 1, trigger_reason="CablePluggedIn", charging_state="EVConnected")

            async def change() -> dict:
                answer = await csms.call_json(IDENTITY, "SetVariables", {"setVariableData": [
                    {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}, "attributeValue": new_password}]})
                csms.basic_auth = {IDENTITY: new_password}  # A01.FR.03: the old one is no longer accepted
                return answer

            answer = await change()
            assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
            for _ in range(5):
                await station.update_transaction(tid, trigger_reason="MeterValuePeriodic")
            await csms.wait_for(lambda e: e.connections >= 2 and len(e.received("TransactionEvent")) >= 6, 10)
            seqs = [p["seqNo"] for p in (r.payload for r in csms.received("TransactionEvent"))]
            assert sorted(set(seqs)) == list(range(6))
            assert station.device_model.get(SecurityCtrlr.BasicAuthPassword) == new_password
            await h.stop()
            # the new password is persisted (A01.FR.01) and used after a restart
            station = await h.start()
            assert await station.wait_online(5)
            await h.stop()

    run(body())


def test_security_profile_upgrade_1_to_2(harness, pki: Pki) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as plain, \
                CsmsEmulator(ssl_context=pki.server_context(), basic_auth={IDENTITY: PASSWORD}) as tls:
            h = harness(plain.url)
            station = await h.start()
            assert await station.wait_online(5)
            profile = {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": wss(tls), "messageTimeout": 5,
                       "securityProfile": 2, "ocppInterface": "Wired0"}
            # A05.FR.02: no CSMSRootCertificate yet -> Rejected
            assert (await plain.call_json(IDENTITY, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": profile}))["status"] == "Accepted"
            refused = await plain.call_json(IDENTITY, "SetVariables", {"setVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"}, "attributeValue": "1,0"}]})
            assert refused["setVariableResult"][0]["attributeStatus"] == "Rejected"
            assert (await plain.call_json(IDENTITY, "InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                                                           "certificate": pki.root.pem.decode()}))["status"] == "Accepted"
            accepted = await plain.call_json(IDENTITY, "SetVariables", {"setVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"}, "attributeValue": "1,0"}]})
            assert accepted["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
            await station.security_event("SettingSystemTime", "queued before the reboot")
            await h.stop()  # the Reset / reboot (A05 step 3-4)
            station = await h.start()
            assert await station.wait_online(10)
            assert tls.connections == 1
            assert station.device_model.get_int(SecurityCtrlr.SecurityProfile) == 2  # A05.FR.06
            assert 0 not in station.network_profiles
            await tls.wait_for(lambda e: any(r.payload["type"] == "SettingSystemTime" for r in e.received("SecurityEventNotification")), 5)
            lower = dict(profile, ocppCsmsUrl=plain.url, securityProfile=1)
            answer = await tls.call_json(IDENTITY, "SetNetworkProfile", {"configurationSlot": 2, "connectionData": lower})
            assert answer["status"] == "Rejected"  # B09.FR.04, A05.FR.07
            await h.stop()

    run(body())


def test_charging_station_certificate_renewal_on_profile_3(harness, pki: Pki) -> None:
    async def body() -> None:
        renewed: list[x509.Certificate] = []

        async def sign(payload: dict, station_id: str) -> dict:
            csr = x509.load_pem_x509_csr(payload["csr"].encode())
            cert = issue(pki.root, "SN-TEST-1", public_key=csr.public_key())
            renewed.append(cert.cert)

            async def deliver() -> None:
                await asyncio.sleep(0.05)
                await csms.call_json(station_id, "CertificateSigned", {"certificateChain": cert.pem.decode(),
                                                                         "certificateType": "ChargingStationCertificate"})

            asyncio.get_running_loop().create_task(deliver())
            return {"status": "Accepted"}

        async with CsmsEmulator(ssl_context=pki.server_context(require_client_cert=True), responses={"SignCertificate": sign}) as csms:
            h = harness(wss(csms), security_profile=3, password=None)
            install_root(h, pki)
            h.certificates.provision_charging_station_certificate(pki.station.pem, pki.station.key_pem)
            station = await h.start()
            assert await station.wait_online(10)
            assert (await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}))["status"] == "Accepted"
            await csms.wait_for(lambda e: len(e.peer_certificates) >= 2, 10)  # A02.FR.08: reconnected
            second = x509.load_der_x509_certificate(csms.peer_certificates[1])
            assert second.serial_number == renewed[0].serial_number
            await h.stop()

    run(body())
