"""The PKI port's contract policy (ISO15118Ctrlr CentralContractValidationAllowed, local
validation on by default): every outcome, its ISO 15118 code and its log line; and the one
table of fulfillers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge.bridge import Bridge, ContractPolicy, EvseContext, PkiPort, TransactionPoints, fulfiller_table
from pnc_bridge.bridge._evse import EvsePort
from pnc_bridge.bridge._ocpp import OcppPort
from pnc_bridge.config import EvseSection
from pnc_bridge.evse import EvseSimulator
from pnc_bridge.pki import generate_test_pki
from pnc_bridge.secc import effects as fx

NOW = dt.datetime.now(dt.timezone.utc)


def der(cert) -> bytes:
    return cert.public_bytes(Encoding.DER)


def context() -> EvseContext:
    return EvseContext(1, EvseSection(id=1), EvseSimulator(1), TransactionPoints.parse("EVConnected", "EVConnected"))


def validate(pki, roots, policy, *, leaf=None, subs=None, emaid=None, at=NOW):
    port = PkiPort(roots, lambda: policy, clock=lambda: at)
    c_leaf, c_subs = pki.chain("contract")
    effect = fx.ValidateContractChain(1, leaf=leaf if leaf is not None else der(c_leaf),
                                      sub_cas=tuple(der(c) for c in (subs if subs is not None else c_subs)),
                                      emaid=emaid if emaid is not None else pki.emaid)
    ctx = context()
    ctx.tracker.ev_connected()
    return asyncio.run(port.validate_contract_chain(effect, ctx)), ctx


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    return generate_test_pki(tmp_path_factory.mktemp("other"))


LOCAL = ContractPolicy()
CENTRAL = ContractPolicy(central_validation_allowed=True)


@pytest.mark.parametrize("case,code,log", [
    ("valid", None, "chain valid"),
    ("expired", "FAILED_CertificateExpired", "refused"),
    ("unknown root", "FAILED_CertChainError", "refused"),
    ("unknown root, central validation", None, "the CSMS validates it"),
    ("local validation off", None, "local validation off"),
    ("another EMAID", "FAILED_CertChainError", "refused"),
    ("not a certificate", "FAILED_CertChainError", "refused"),
    ("sub-CA of another PKI", "FAILED_CertChainError", "refused"),
])
def test_contract_policy_outcomes(test_pki, other_pki, caplog, case, code, log):
    roots = [test_pki.mo_root, test_pki.v2g_root]
    kwargs: dict = {}
    policy = LOCAL
    if case == "expired":
        kwargs["at"] = test_pki.contract_leaf.not_valid_after_utc + dt.timedelta(days=1)
    elif case == "unknown root":
        roots = [test_pki.v2g_root]
    elif case == "unknown root, central validation":
        roots, policy = [test_pki.v2g_root], CENTRAL
    elif case == "local validation off":
        roots, policy = [], ContractPolicy(local_validation=False)
    elif case == "another EMAID":
        kwargs["emaid"] = "DE8AA0099999993"
    elif case == "not a certificate":
        kwargs["leaf"] = b"\x30\x03\x02\x01\x00"
    elif case == "sub-CA of another PKI":
        kwargs["subs"] = other_pki.chain("contract")[1]
    with caplog.at_level(logging.INFO, logger="pnc_bridge.bridge"):
        result, ctx = validate(test_pki, roots, policy, **kwargs)
    assert result.response_code == code and result.id == 1
    emaid = kwargs.get("emaid", test_pki.emaid)
    assert any(log in r.getMessage() and f"EVSE 1: contract {emaid}" in r.getMessage()
               for r in caplog.records if r.name == "pnc_bridge.bridge")
    # a refusal ends a transaction that started before the authorization as DeAuthorized
    assert (ctx.tracker.stop_cause == ("Deauthorized", "DeAuthorized")) == (code is not None)


def test_one_verdict_for_both_effects_of_a_payment_details(test_pki):
    port = PkiPort([test_pki.mo_root], lambda: LOCAL, clock=lambda: NOW)
    leaf, subs = test_pki.chain("contract")
    first = port.verdict(der(leaf), tuple(der(c) for c in subs), test_pki.emaid)
    assert port.verdict(der(leaf), tuple(der(c) for c in subs), test_pki.emaid) is first and first.valid


#: effects the DIN 70121 and ISO 15118-2 cores emit (docs/secc.md, effect table)
SECC_EFFECTS = [
    fx.AuthorizeExternalPayment, fx.ValidateContractChain, fx.AuthorizeWithCsms, fx.VerifyAuthorizationSignature,
    fx.VerifyMeteringReceiptSignature, fx.RequestEvCertificate, fx.GetChargingSchedule, fx.StartCableCheck,
    fx.CloseContactor, fx.OpenContactor, fx.SetDcTarget, fx.ReportEvChargingSchedule, fx.ReportEvStatus,
    fx.ReportChargingState, fx.StartTransaction, fx.StopTransaction,
]


def test_one_table_fulfils_every_effect_of_the_cores(test_pki):
    pki = PkiPort([test_pki.mo_root], lambda: LOCAL)
    table = fulfiller_table(pki, OcppPort(None, pki, lambda: LOCAL), EvsePort("M"))
    assert set(SECC_EFFECTS) <= set(table)

    class FromTheFuture(fx.Request):
        pass

    class NoticeFromTheFuture(fx.Notification):
        pass

    fulfil = Bridge(table).fulfil_for(context())
    result = asyncio.run(fulfil(FromTheFuture(7)))
    assert isinstance(result, fx.EffectFailed) and result.id == 7 and "not supported" in result.reason
    assert asyncio.run(fulfil(NoticeFromTheFuture(8))) is None
