"""Josev's EV (PyPI ``iso15118`` 0.31.2, its own venv, its own EXI codec and TLS stack) against
our SECC behind the bridge, wired as ``pnc-bridge run`` wires it (``Service``: SDP on the
EVSE's interface, TCP / TLS servers, SeccAdapter, the bridge, the OCPP client), with the
``hil.csms`` emulator as the CSMS, in two network namespaces joined by a veth.

Each mode must reach the charge loop and stop cleanly (Josev's EVCC exits 0 only after a
successful session), with the expected OCPP frames at the CSMS, all valid for the ``ocpp``
package's schemas. Josev picks Contract whenever it is offered over TLS (PnC with contract
installation through Get15118EVCertificate); EIM sessions are authorized by a remote start."""

from __future__ import annotations

from collections import Counter

import pytest

from pnc_bridge.pki import generate_test_pki
from tests.josev.peers import counting_rig, run_josev_against_bridge, write_josev_pki

pytestmark = [pytest.mark.josev, pytest.mark.netns, pytest.mark.timeout(300)]

#: mode -> (EVSE supply phases, charge-loop request, CSMS behaviour)
MODES = {
    "din-dc": (0, "CurrentDemandReq", {"remote_start_on_plug_in": True}),
    "iso2-ac-eim": (3, "ChargingStatusReq", {"remote_start_on_plug_in": True}),
    "iso2-dc-eim": (0, "CurrentDemandReq", {"remote_start_on_plug_in": True}),
    "iso2-dc-pnc": (0, "CurrentDemandReq", {}),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_josev_ev_against_our_secc(mode, josev, netns_pair, evse_loop, tmp_path):
    phases, loop_request, behaviour = MODES[mode]
    pki = generate_test_pki(tmp_path / "pki")
    josev_pki = write_josev_pki(pki, tmp_path / "josev-pki")
    rig = counting_rig(tmp_path / "bridge", pki, phases=phases, behaviour=behaviour,
                       v2g={"interface": netns_pair.evse_if, "slac": False, "host": "::"})
    ran = run_josev_against_bridge(rig, josev, mode, netns_pair=netns_pair, evse_loop=evse_loop, josev_pki=josev_pki,
                                   log_path=tmp_path / "evcc.log", loops=5, wait=180)
    requests, events, calls, invalid = ran.requests, ran.events, ran.calls, ran.invalid

    assert requests[loop_request] >= 3, dict(requests)  # Josev counts its loop cycles its own way per protocol
    assert requests["SessionStopReq"] == 1
    assert invalid == [], [f"{f.action}: {f.error}" for f in invalid]
    actions = Counter(a for d, a, _ in calls if d == "in")
    assert actions["NotifyEVChargingNeeds"] == 1
    assert any(d == "out" and a == "SetChargingProfile" for d, a, _ in calls)  # the CSMS's TxProfile (K15)
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert events[-1]["transactionInfo"]["stoppedReason"] == "StoppedByEV"
    assert any(e["transactionInfo"].get("chargingState") == "Charging" for e in events)
    if mode.endswith("pnc"):
        assert actions["Get15118EVCertificate"] == 1 and actions["Authorize"] == 1
        assert events[0]["idToken"] == {"idToken": pki.emaid, "type": "eMAID"}
        assert requests["CertificateInstallationReq"] == 1 and requests["PaymentDetailsReq"] == 1
    else:
        assert any(d == "out" and a == "RequestStartTransaction" for d, a, _ in calls)
        assert events[0]["triggerReason"] == "RemoteStart"
