"""Hypothesis for the ISO 15118-20 core, as for the others: for any sequence of requests (any
-20 type, any order, right or wrong SessionID, both control modes and every service), effect
results (in time, failed, never), setpoints pushed at any time and passing time, every
request gets the response type that belongs to it with a code the core may send for it
(Core20 checks each one, and its EXI round trip), nothing raises, nothing is sent after the
end, and the end is clean: contactors told to open, the transaction stopped once (or left
open for a pause), no DC current left flowing."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.secc_rig import RigBehaviour, v2g_schedule
from pnc_bridge import exi, xmldsig
from pnc_bridge.messages import apphand
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc import PowerSetpoint, SeccConnection
from pnc_bridge.secc.effects import CloseContactor, EffectFailed, EnergyService, Isolation, SetDcTarget, StartTransaction, StopTransaction
from pnc_bridge.secc.iso20 import EXPECTED
from pnc_bridge.secc.iso20._state import allowed
from tests.secc.harness20 import DYNAMIC, SCHEDULED, Core20, config20, header, one_of_each, power_delivery, session_stop

behaviours = st.builds(
    RigBehaviour,
    eim_accept=st.sampled_from([True] * 4 + [False]),
    csms_status=st.sampled_from(["Accepted"] * 4 + ["Blocked"]),
    isolation=st.sampled_from([Isolation.Valid] * 4 + [Isolation.Fault]),
    contactor_ok=st.sampled_from([True] * 4 + [False]),
    schedules=st.sampled_from([None, (v2g_schedule(period_s=5),), (v2g_schedule(period_s=5, setpoints=True),)]),
)


def _table(dc: bool) -> dict[type, list]:
    out: dict[type, list] = {}
    for bpt in (False, True):
        for mode in (SCHEDULED, DYNAMIC):
            for request in one_of_each(dc, bpt, mode).values():
                out.setdefault(type(request), []).append(request)
    services = (EnergyService.DC, EnergyService.DC_BPT) if dc else (EnergyService.AC, EnergyService.AC_BPT)
    out[m.ServiceDetailReq] = [m.ServiceDetailReq(header=header(), service_id=s.service_id) for s in services]
    out[m.ServiceSelectionReq] = [m.ServiceSelectionReq(header=header(), selected_energy_transfer_service=m.SelectedService(
        service_id=s.service_id, parameter_set_id=i)) for s in services for i in (1, 2, 3)]
    out[m.PowerDeliveryReq] = [power_delivery(p) for p in m.ChargeProgress] + [power_delivery(tuple_id=1, entries=[(60, 5000), (60, -3000)])]
    out[m.SessionStopReq] = [session_stop(kind) for kind in m.ChargingSession]
    return out


TABLES = {True: _table(True), False: _table(False)}


def _pnc_authorization(core: Core20, pki):
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf, subs = pki.chain("contract")
    req = m.AuthorizationReq(header=header(core.session.session_id or bytes(8)), selected_authorization_service=m.Authorization.PnC,
                             pnc_areq_authorization_mode=m.PnC_AReqAuthorizationMode(
                                 id="ID1", gen_challenge=core.ctx.gen_challenge or bytes(16),
                                 contract_certificate_chain=m.ContractCertificateChain(
                                     certificate=leaf.public_bytes(Encoding.DER),
                                     sub_certificates=m.SubCertificates(certificate=[c.public_bytes(Encoding.DER) for c in subs]))))
    return xmldsig.sign_authorization_req(req, pki.key("contract_leaf"))


def _fits(core: Core20, request) -> bool:
    """Whether ``request`` suits the session's service and control mode (so that a walk
    that mostly goes forward gets into the charge loop)."""
    ctx = core.ctx
    bpt = ctx.service is not None and ctx.service.is_bpt
    dynamic = ctx.parameter_set is not None and ctx.parameter_set.control_mode is DYNAMIC
    mode = (getattr(request, "dc_cpd_req_energy_transfer_mode", None) or getattr(request, "ac_cpd_req_energy_transfer_mode", None)
            or getattr(request, "cl_req_control_mode", None))
    if mode is not None:
        name = type(mode).__name__
        if name.startswith("BPT_") != bpt:
            return False
        return "CLReq" not in name or ("Dynamic" in name) == dynamic
    if isinstance(request, m.ScheduleExchangeReq):
        return (request.dynamic_se_req_control_mode is not None) == dynamic
    return True


def _drive(core: Core20, data, table: dict[type, list], pki) -> None:
    ended = False
    for _ in range(80):
        roll = data.draw(st.integers(0, 63))
        action = {0: "any", 1: "foreign", 2: "fail", 3: "drop", 4: "wait", 5: "setpoint"}.get(roll, "expected")
        if action == "expected" and core.pending:
            core.settle()
            ended = ended or core.session.closed
        if action in ("expected", "any", "foreign"):
            if action == "expected" and not ended:
                state = core.session.state
                types = sorted((t for t in EXPECTED[state] if t in table and allowed(state, t, core.ctx.dc)), key=lambda t: t.__name__)
                if not types:
                    break
                rare = (m.SessionStopReq, m.CertificateInstallationReq)
                weighted = [t for t in types for _ in range(1 if t in rare else 12)]
                kind = data.draw(st.sampled_from(weighted))
            else:
                kind = data.draw(st.sampled_from(sorted(table, key=lambda t: t.__name__)))
            if kind is m.AuthorizationReq and data.draw(st.booleans()):
                request = _pnc_authorization(core, pki)
            else:
                choices = table[kind]
                if action == "expected" and data.draw(st.integers(0, 3)):
                    choices = [r for r in choices if _fits(core, r)] or choices
                request = data.draw(st.sampled_from(choices))
            session_id = b"\xee" * 8 if action == "foreign" else None
            if isinstance(request, m.SessionSetupReq) and session_id is None:
                step = core.send(request)
            else:
                step = core.send(request, session_id=session_id)
            if ended:
                assert step.response is None and step.close
        elif action in ("fail", "drop") and core.pending:
            effect = core.pending.pop(0)
            if action == "fail":
                core._take(core.session.resolve(EffectFailed(effect.id, "port down"), core.now))
        elif action == "wait":
            core.now += data.draw(st.sampled_from([0.01, 1.0, 10.0, 70.0]))
            deadline = core.session.deadline()
            if deadline is not None and core.now >= deadline:
                core._take(core.session.tick(core.now))
        elif action == "setpoint":
            core.push_setpoint(data.draw(st.sampled_from([None, PowerSetpoint(-60000), PowerSetpoint(-3000), PowerSetpoint(7000)])))
        ended = ended or core.session.closed
    if not core.session.closed:
        core._take(core.session.connection_lost(core.now))
    _assert_clean(core)


def _assert_clean(core: Core20) -> None:
    effects = core.effects()
    names = [type(e).__name__ for e in effects]
    if CloseContactor.__name__ in names:
        last_close = max(i for i, n in enumerate(names) if n == "CloseContactor")
        assert "OpenContactor" in names[last_close:], names
    targets = [e for e in effects if isinstance(e, SetDcTarget)]
    if targets:
        assert (targets[-1].voltage_v, targets[-1].current_a) == (0.0, 0.0) or targets[-1].current_a == 2.0, targets[-1]
    starts = [e for e in effects if isinstance(e, StartTransaction)]
    stops = [e for e in effects if isinstance(e, StopTransaction)]
    assert len(stops) <= 1 and len(starts) <= 1
    paused = any(s.resume is not None for s in core.steps)
    if stops:
        assert starts and names.index("StartTransaction") < names.index("StopTransaction")
    elif starts and not paused:
        raise AssertionError(f"transaction started but never stopped: {names}")
    assert core.session.deadline() is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), behaviour=behaviours, tls=st.booleans(), dc=st.booleans())
def test_iso20_any_request_sequence(test_pki20, data, behaviour, tls, dc):
    core = Core20.make(dc=dc, behaviour=behaviour, tls=tls, pki=test_pki20)
    _drive(core, data, TABLES[dc], test_pki20)


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.tuples(st.sampled_from([0x8001, 0x8002, 0x8003, 0x8004, 0x8101, 0x8102, 0x9000]),
                                 st.binary(max_size=64)), max_size=6))
def test_any_bytes_after_a_minus_20_handshake_end_in_a_clean_close(frames):
    conn = SeccConnection(config20(), now=0.0, unix_time=1.7e9, tls=True)
    req = apphand.SupportedAppProtocolReq(app_protocol=[apphand.AppProtocol(
        protocol_namespace="urn:iso:std:iso:15118:-20:DC", version_number_major=1, version_number_minor=0, schema_id=1, priority=1)])
    step = conn.receive_payload(0x8001, exi.encode("apphand", req), 0.0)
    assert step.send is not None and not step.close
    now = 0.0
    for payload_type, payload in frames:
        now += 0.1
        step = conn.receive_payload(payload_type, payload, now)
        if step.send is not None:
            assert step.payload_type in (0x8002, 0x8003, 0x8004)
        if step.close:
            break
    assert conn.closed or conn.deadline() is not None


def test_a_real_session_start_over_the_connection_uses_the_minus_20_payload_types():
    conn = SeccConnection(config20(), now=0.0, unix_time=1.7e9, tls=True)
    req = apphand.SupportedAppProtocolReq(app_protocol=[apphand.AppProtocol(
        protocol_namespace="urn:iso:std:iso:15118:-20:DC", version_number_major=1, version_number_minor=0, schema_id=7, priority=1)])
    step = conn.receive_payload(0x8001, exi.encode("apphand", req), 0.0)
    assert step.response.schema_id == 7 and step.payload_type == 0x8001
    setup = one_of_each()["SessionSetupReq"]
    step = conn.receive_payload(0x8002, exi.encode("iso20-common", setup), 0.1)
    assert step.payload_type == 0x8002 and type(step.response).__name__ == "SessionSetupRes"
    # a DC message on the common stream is not decodable as one: a clean close
    dc = dataclasses.replace(one_of_each()["DC_CableCheckReq"], header=header(step.response.header.session_id))
    step = conn.receive_payload(0x8002, exi.encode("iso20-dc", dc), 0.2)
    assert step.close
