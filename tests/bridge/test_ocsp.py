"""OCPP M06 (Get V2G Charging Station Certificate status): the SECC chain's OCSP responses
from the CSMS, kept in the trust store, stapled in the EV's TLS handshake.

The CSMS is the ``hil.csms`` emulator (the ``ocpp`` package's CSMS side, which checks every
GetCertificateStatusRequest against the official schema) answering as a CSMS in front of the
test PKI's OCSP responders; what the EV receives is read by ``openssl s_client -status``.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess

import pytest

from hil.demo_rig import BridgeRig
from pnc_bridge.bridge._ocsp import OcspRefresher, chain_with_issuers, due
from pnc_bridge.pki import (
    LeafSlot,
    Purpose,
    StoreError,
    TrustStore,
    build_ocsp_response,
    certificate_hash_data,
)
from tests.bridge.conftest import run

DAY = dt.timedelta(days=1)


def responses(pki, now, status="good", next_update=DAY):
    """Good responses for the SECC leaf and its sub-CAs, signed by each issuer."""
    out = {}
    for name, issuer in (("secc_leaf", "cpo_sub_ca2"), ("cpo_sub_ca2", "cpo_sub_ca1"), ("cpo_sub_ca1", "v2g_root")):
        out[pki.cert(name)] = build_ocsp_response(pki.cert(name), pki.cert(issuer), pki.key(issuer), status=status,
                                                  this_update=now - dt.timedelta(minutes=1),
                                                  next_update=now + next_update if next_update else None)
    return out


@pytest.fixture
def store(test_pki, tmp_path):
    from hil.demo_rig import make_trust_store

    return make_trust_store(tmp_path / "trust", test_pki)


# --------------------------------------------------------------------------- what is due


def test_the_whole_secc_chain_but_the_root_is_asked_for(test_pki, store):
    pairs = chain_with_issuers(store.snapshot())
    assert [(c.subject, i.subject) for c, i in pairs] == [
        (test_pki.cert("secc_leaf").subject, test_pki.cert("cpo_sub_ca2").subject),
        (test_pki.cert("cpo_sub_ca2").subject, test_pki.cert("cpo_sub_ca1").subject),
        (test_pki.cert("cpo_sub_ca1").subject, test_pki.cert("v2g_root").subject),
    ]
    now = dt.datetime.now(dt.timezone.utc)
    assert len(due(store.snapshot(), now)) == 3


def test_stored_responses_are_due_again_when_old_or_near_their_next_update(test_pki, store):
    now = dt.datetime.now(dt.timezone.utc)
    store.set_ocsp_responses(LeafSlot.SECC, responses(test_pki, now, next_update=30 * DAY))
    snapshot = store.snapshot()
    assert due(snapshot, now) == []
    assert len(due(snapshot, now + 8 * DAY)) == 3, "older than a week"
    assert due(snapshot, now + 6 * DAY) == []
    assert len(due(snapshot, now + 15 * DAY, max_age=100 * DAY.total_seconds())) == 3, "past half its validity"
    store.set_ocsp_responses(LeafSlot.SECC, responses(test_pki, now, next_update=None))
    assert due(store.snapshot(), now + 6 * DAY) == []


def test_a_damaged_or_foreign_stored_response_is_due(test_pki, store):
    now = dt.datetime.now(dt.timezone.utc)
    good = responses(test_pki, now, next_update=30 * DAY)
    leaf = test_pki.cert("secc_leaf")
    good[leaf] = b"\x30\x03\x0a\x01\x01"  # OCSPResponse: malformedRequest
    store.set_ocsp_responses(LeafSlot.SECC, good)
    assert [c for c, _ in due(store.snapshot(), now)] == [leaf]


def test_a_recent_failure_waits_for_the_retry(test_pki, store):
    from pnc_bridge.pki import fingerprint

    now = dt.datetime.now(dt.timezone.utc)
    leaf = test_pki.cert("secc_leaf")
    failed = {fingerprint(leaf): now - dt.timedelta(minutes=5)}
    assert leaf not in [c for c, _ in due(store.snapshot(), now, failed=failed, retry=3600)]
    assert leaf in [c for c, _ in due(store.snapshot(), now, failed=failed, retry=60)]


def test_the_store_keeps_responses_for_its_chain_only_and_drops_them_with_a_new_chain(test_pki, store):
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(StoreError, match="not in the secc chain"):
        store.set_ocsp_responses(LeafSlot.SECC, {test_pki.cert("contract_leaf"): b"x"})
    store.set_ocsp_responses(LeafSlot.SECC, responses(test_pki, now))
    reopened = TrustStore(store.path).snapshot()  # on disk, seen by another process (the CLI)
    assert reopened.ocsp_response(LeafSlot.SECC, test_pki.cert("secc_leaf")) is not None
    leaf = store.leaf(LeafSlot.SECC)
    store.install_leaf(LeafSlot.SECC, leaf.chain, leaf.key)  # a renewed chain
    assert store.snapshot().ocsp.get(LeafSlot.SECC, {}) == {}


# --------------------------------------------------------------------------- end to end


def s_client_status(host: str, port: int) -> str:
    """What ``openssl s_client -status`` reports about the stapled OCSP response."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    done = subprocess.run(["openssl", "s_client", "-connect", address, "-tls1_2", "-status"],
                          input=b"", capture_output=True, timeout=30)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def test_the_service_asks_the_csms_and_staples_the_leafs_response(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki) as rig:
            await rig.wait_for(lambda r: len(r.service.trust_store.snapshot().ocsp.get(LeafSlot.SECC, {})) == 3)
            asked = rig.calls("GetCertificateStatus")
            port = rig.endpoint.tls_port
            host = rig.v2g["host"]
            return asked, await asyncio_to_thread(s_client_status, host, port)

    asked, seen = run(main())
    expected = {certificate_hash_data(test_pki.cert(n), test_pki.cert(i)).serial_number
                for n, i in (("secc_leaf", "cpo_sub_ca2"), ("cpo_sub_ca2", "cpo_sub_ca1"), ("cpo_sub_ca1", "v2g_root"))}
    assert {a["ocspRequestData"]["serialNumber"] for a in asked} == expected
    assert all(a["ocspRequestData"]["responderURL"].startswith("http://") for a in asked)
    assert "OCSP Response Status: successful" in seen
    assert "Cert Status: good" in seen
    assert format(test_pki.cert("secc_leaf").serial_number, "X") in seen.replace(":", "").upper()


def test_a_revoked_secc_certificate_is_stapled_as_revoked(test_pki, tmp_path, caplog):
    async def main():
        async with BridgeRig(tmp_path, test_pki, behaviour={"ocsp_status": "revoked"}) as rig:
            await rig.wait_for(lambda r: len(r.service.trust_store.snapshot().ocsp.get(LeafSlot.SECC, {})) == 3)
            return await asyncio_to_thread(s_client_status, rig.v2g["host"], rig.endpoint.tls_port)

    seen = run(main())
    assert "Cert Status: revoked" in seen
    assert "REVOKED" in caplog.text


@pytest.mark.parametrize("answer, logged", [
    ({"status": "Failed", "statusInfo": {"reasonCode": "NoResponder"}}, "answered Failed"),
    ({"status": "Accepted", "ocspResult": base64.b64encode(b"not an OCSP response").decode()}, "not used"),
])
def test_a_bad_answer_stores_nothing_and_tls_goes_on_without_a_staple(test_pki, tmp_path, caplog, answer, logged):
    async def main():
        async with BridgeRig(tmp_path, test_pki, behaviour={"certificate_status": answer}) as rig:
            await rig.wait_for(lambda r: len(r.calls("GetCertificateStatus")) == 3)
            await rig.wait_idle()
            stored = rig.service.trust_store.snapshot().ocsp.get(LeafSlot.SECC, {})
            return stored, await asyncio_to_thread(s_client_status, rig.v2g["host"], rig.endpoint.tls_port)

    stored, seen = run(main())
    assert stored == {}
    assert "OCSP response: no response sent" in seen
    assert logged in caplog.text


def test_nothing_is_asked_while_an_ev_session_is_live(test_pki, tmp_path):
    """One outstanding CALL per connection: the EV's Authorize must not wait behind ours."""
    async def main():
        async with BridgeRig(tmp_path, test_pki, behaviour={"certificate_status": {"status": "Failed"}}) as rig:
            await rig.wait_for(lambda r: len(r.calls("GetCertificateStatus")) == 3)
            before = len(rig.calls("GetCertificateStatus"))
            refresher = OcspRefresher(rig.station, rig.service.trust_store, busy=lambda: True)
            report = await refresher.refresh()
            idle = OcspRefresher(rig.station, rig.service.trust_store)
            asked = await idle.refresh()
            return before, report, refresher.deferred, asked, len(rig.calls("GetCertificateStatus"))

    before, report, deferred, asked, after = run(main())
    assert report.asked == 0 and deferred
    assert asked.asked == 3 and asked.failed == 3 and after == before + 3


async def asyncio_to_thread(fn, *args):
    import asyncio

    return await asyncio.to_thread(fn, *args)



def test_store_list_shows_the_ocsp_status_and_warns_about_a_revoked_one(test_pki, store, capsys):
    """What a PKI admin sees: ``pnc-bridge pki store list`` with the responses M06 stored."""
    from pnc_bridge.cli import main

    now = dt.datetime.now(dt.timezone.utc)
    good = responses(test_pki, now)
    revoked = responses(test_pki, now, status="revoked")
    good[test_pki.cert("cpo_sub_ca1")] = revoked[test_pki.cert("cpo_sub_ca1")]
    store.set_ocsp_responses(LeafSlot.SECC, good)
    assert main(["pki", "store", "list", "--store", str(store.path), "--json"]) == 0
    out, err = capsys.readouterr()
    import json

    listed = {c["subject"]: c.get("ocsp", {}).get("status") for c in json.loads(out)["certificates"]}
    assert listed[test_pki.cert("secc_leaf").subject.rfc4514_string()] == "good"
    assert listed[test_pki.cert("cpo_sub_ca1").subject.rfc4514_string()] == "revoked"
    assert listed[test_pki.cert("v2g_root").subject.rfc4514_string()] is None
    assert "OCSP revoked" in err
    # two days on, the one-day responses are stale: unusable, said so
    later = (now + 2 * DAY).isoformat()
    assert main(["pki", "store", "list", "--store", str(store.path), "--at", later]) == 0
    out, err = capsys.readouterr()
    assert "OCSP: unusable" in out and "stale" in err


def test_the_iso15118_20_chain_is_asked_for_and_stapled_in_tls13(test_pki, tmp_path, tmp_path_factory):
    """The -20 SECC certificate (trust-store slot secc20, P-521) gets its own responses and the
    EV's TLS 1.3 handshake (mutual authentication with the OEM chain) carries the leaf's."""
    from pnc_bridge.pki import generate_test_pki

    pki20 = generate_test_pki(tmp_path_factory.mktemp("pki20"), variant="iso20")

    async def main():
        async with BridgeRig(tmp_path, test_pki, pki20=pki20, v2g={"protocols": ["iso20-dc", "iso2"]}) as rig:
            await rig.wait_for(lambda r: len(r.service.trust_store.snapshot().ocsp.get(LeafSlot.SECC20, {})) == 3
                               and len(r.service.trust_store.snapshot().ocsp.get(LeafSlot.SECC, {})) == 3)
            host, port = rig.v2g["host"], rig.endpoint.tls_port
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            cmd = ["openssl", "s_client", "-connect", address, "-tls1_3", "-status",
                   "-cert", str(pki20.out_dir / "certs" / "oem_prov_leaf.pem"),
                   "-key", str(pki20.out_dir / "keys" / "oem_prov_leaf.key"),
                   "-cert_chain", str(pki20.chain_paths[Purpose.OEM])]

            def s_client() -> str:
                done = subprocess.run(cmd, input=b"", capture_output=True, timeout=30)
                return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")

            return await asyncio_to_thread(s_client)

    seen = run(main())
    assert "TLSv1.3" in seen
    assert "OCSP Response Status: successful" in seen and "Cert Status: good" in seen
    leaf20 = format(pki20.cert("secc_leaf").serial_number, "X")
    assert leaf20 in seen.replace(":", "").upper()
