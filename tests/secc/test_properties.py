"""Hypothesis: for any sequence of requests (any type, any order, right or wrong SessionID),
effect results (in time, late, failed, never) and passing time, the session core answers every
request with the response type that belongs to it and a code the standard allows for that
response, never raises, sends nothing after its end, and always ends cleanly: contactors it
may have closed are told to open, and a transaction it started is stopped exactly once (or
left open for a pause)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.secc_rig import RigBehaviour
from pnc_bridge import exi
from pnc_bridge.messages import din, iso2
from pnc_bridge.secc import din as din_core
from pnc_bridge.secc import iso2 as iso2_core
from pnc_bridge.secc._connection import SeccConnection
from pnc_bridge.secc.effects import (
    CloseContactor,
    EffectFailed,
    Isolation,
    StartTransaction,
    StopTransaction,
)
from tests.secc.harness import Core, config, din_requests, iso2_requests

ISO2 = iso2_requests()
ISO2["ServiceDetailReq:charge"] = iso2.ServiceDetailReq(service_id=1)
ISO2["AuthorizationReq:pnc"] = iso2.AuthorizationReq(id="ID1", gen_challenge=bytes(16))
ISO2["PowerDeliveryReq:stop"] = iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Stop, sa_schedule_tuple_id=1)
ISO2["PowerDeliveryReq:renegotiate"] = iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Renegotiate, sa_schedule_tuple_id=1)
ISO2["SessionStopReq:pause"] = iso2.SessionStopReq(charging_session=iso2.ChargingSession.Pause)
ISO2["PaymentServiceSelectionReq:contract"] = iso2.PaymentServiceSelectionReq(
    selected_payment_option=iso2.PaymentOption.Contract,
    selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=1)]))
DIN = din_requests()
DIN["PowerDeliveryReq:stop"] = din.PowerDeliveryReq(ready_to_charge_state=False)

behaviours = st.builds(
    RigBehaviour,
    eim_accept=st.sampled_from([True] * 4 + [False]),
    csms_status=st.sampled_from(["Accepted"] * 4 + ["Blocked"]),
    isolation=st.sampled_from([Isolation.Valid] * 4 + [Isolation.Fault]),
    contactor_ok=st.sampled_from([True] * 4 + [False]),
)


def _by_type(table: dict) -> dict[type, list]:
    out: dict[type, list] = {}
    for body in table.values():
        out.setdefault(type(body), []).append(body)
    return out


def _pnc_table(pki) -> dict:
    """Plug & Charge requests built from the session's own exchanges (a real contract chain,
    the GenChallenge the core handed out, signed with the contract key)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from pnc_bridge import xmldsig

    leaf, subs = pki.chain("contract")
    chain = iso2.CertificateChain(certificate=leaf.public_bytes(Encoding.DER), sub_certificates=iso2.SubCertificates(
        certificate=[c.public_bytes(Encoding.DER) for c in subs]))

    def signed(core, body):
        message = xmldsig.sign_message(core.message(body), pki.key("contract_leaf"))
        return message.body.body_element, message.header.signature

    def authorization(core):
        return signed(core, iso2.AuthorizationReq(id="ID1", gen_challenge=core.session._ctx.gen_challenge or bytes(16)))

    def receipt(core):
        return signed(core, iso2.MeteringReceiptReq(id="ID1", session_id=core.session.session_id or bytes(1),
                                                    sa_schedule_tuple_id=1, meter_info=iso2.MeterInfo(meter_id="M", meter_reading=1)))

    return {
        iso2.PaymentDetailsReq: lambda core: (iso2.PaymentDetailsReq(e_maid=pki.emaid, contract_signature_cert_chain=chain), None),
        iso2.AuthorizationReq: authorization,
        iso2.MeteringReceiptReq: receipt,
    }


def _drive(core: Core, data, allowed, response_of, expected, table: dict, builders: dict) -> None:
    """A random walk that mostly takes a request the present state expects (so it gets deep
    into the session), and sometimes any request, a foreign SessionID, an effect result
    (in time, failed or never), or a pause of up to 70 s."""
    by_type = _by_type(table)
    ended = False
    for _ in range(80):
        roll = data.draw(st.integers(0, 63))
        action = {0: "any", 1: "foreign", 2: "fail", 3: "drop", 4: "wait"}.get(roll, "expected")
        if action == "expected" and core.pending:
            step = core.settle()  # the ports answer before the EV asks again
            if step is not None and step.response is not None:
                res = step.response.body.body_element
                assert res.response_code in allowed[type(res)]
            ended = ended or core.session.closed
        if action in ("expected", "any", "foreign"):
            if action == "expected" and not ended:
                types = sorted((t for t in expected[core.session.state] if t in by_type), key=lambda t: t.__name__)
                if not types:
                    break
                # the way forward more often than SessionStop, which every state allows
                weighted = [t for t in types for _ in range(1 if "SessionStop" in t.__name__ else 12)]
                kind = data.draw(st.sampled_from(weighted))
            else:
                kind = data.draw(st.sampled_from(sorted(by_type, key=lambda t: t.__name__)))
            if kind in builders and data.draw(st.booleans()):
                body, signature = builders[kind](core)
            else:
                body, signature = data.draw(st.sampled_from(by_type[kind])), None
            session_id = (core.session.session_id or bytes(1)) if action != "foreign" else b"\xee" * 8
            step = core.send(body, session_id=session_id, signature=signature)
            if ended:
                assert step.response is None and step.close
                continue
            if step.response is not None:
                res = step.response.body.body_element
                assert type(res) is response_of[type(body)]
                assert res.response_code in allowed[type(res)], (type(body).__name__, res.response_code)
        elif action in ("fail", "drop") and core.pending:
            effect = core.pending.pop(0)
            if action == "drop":
                continue  # this port never answers
            step = core._take(core.session.resolve(EffectFailed(effect.id, "port down"), core.now))
            if step.response is not None:
                res = step.response.body.body_element
                assert res.response_code in allowed[type(res)]
        elif action == "wait":
            core.now += data.draw(st.sampled_from([0.01, 1.0, 10.0, 70.0]))
            deadline = core.session.deadline()
            if deadline is not None and core.now >= deadline:
                core._take(core.session.tick(core.now))
        ended = ended or core.session.closed
    if not core.session.closed:
        core._take(core.session.connection_lost(core.now))
    _assert_clean(core)


def _assert_clean(core: Core) -> None:
    effects = core.effects()
    names = [type(e).__name__ for e in effects]
    if CloseContactor.__name__ in names:
        last_close = max(i for i, n in enumerate(names) if n == "CloseContactor")
        assert "OpenContactor" in names[last_close:], names
    starts = [e for e in effects if isinstance(e, StartTransaction)]
    stops = [e for e in effects if isinstance(e, StopTransaction)]
    assert len(stops) <= 1
    paused = any(s.resume is not None for s in core.steps)
    if stops:
        assert starts and names.index("StartTransaction") < names.index("StopTransaction")
    elif starts and not paused:
        raise AssertionError(f"transaction started but never stopped: {names}")
    assert core.session.deadline() is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), behaviour=behaviours, tls=st.booleans())
def test_iso2_any_request_sequence(test_pki, data, behaviour, tls):
    core = Core.iso2(behaviour=behaviour, tls=tls, pki=test_pki)
    _drive(core, data, iso2_core.ALLOWED_CODES, iso2_core.RESPONSE_OF, iso2_core.EXPECTED, ISO2, _pnc_table(test_pki))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), behaviour=behaviours)
def test_din_any_request_sequence(data, behaviour):
    core = Core.din(behaviour=behaviour)
    _drive(core, data, din_core.ALLOWED_CODES, din_core.RESPONSE_OF, din_core.EXPECTED, DIN, {})


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.binary(max_size=64), max_size=6), first_valid=st.booleans())
def test_any_bytes_end_in_a_clean_close(payloads, first_valid):
    """Arbitrary payloads at the connection level: a response or a clean close, never an exception."""
    conn = SeccConnection(config(), now=0.0, unix_time=1.7e9)
    now = 0.0
    if first_valid:
        from pnc_bridge.messages import apphand

        req = apphand.SupportedAppProtocolReq(app_protocol=[apphand.AppProtocol(
            protocol_namespace="urn:iso:15118:2:2013:MsgDef", version_number_major=2, version_number_minor=0, schema_id=1,
            priority=1)])
        step = conn.receive_payload(0x8001, exi.encode("apphand", req), now)
        assert step.send is not None and not step.close
    for payload in payloads:
        now += 0.1
        step = conn.receive_payload(0x8001, payload, now)
        if step.close:
            break
    assert conn.closed or conn.deadline() is not None
