"""Every DIN 70121 handler and rule of the session core, request by request."""

from __future__ import annotations

import pytest

from hil.secc_rig import RigBehaviour
from pnc_bridge import exi
from pnc_bridge.messages import din
from pnc_bridge.secc.din import ALLOWED_CODES, EXPECTED, RESPONSE_OF, State
from pnc_bridge.secc.din._responses import NEGATIVE
from pnc_bridge.secc.din._state import diagram
from pnc_bridge.secc.effects import (
    CloseContactor,
    EnergyTransferMode,
    OpenContactor,
    PaymentOption,
    StartTransaction,
    StopReason,
    StopTransaction,
)
from tests.secc.harness import Core, code, din_requests, res

R = din_requests()
DIN_DC = ("SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq", "ContractAuthenticationReq",
          "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
          "WeldingDetectionReq", "SessionStopReq")


def test_tables():
    assert set(NEGATIVE) == {type(b) for b in R.values()} == set(RESPONSE_OF)
    assert set().union(*EXPECTED.values()) == {type(R[n]) for n in DIN_DC}
    assert "SessionStopReq" in diagram() and len(diagram().splitlines()) == len(State)


@pytest.mark.parametrize("name", sorted(R))
def test_negative_response_of_every_request_encodes(name):
    core = Core.din()
    for c in ("FAILED", "FAILED_SequenceError"):
        negative = NEGATIVE[type(R[name])](core.session._ctx, R[name], din.ResponseCode(c))
        assert type(negative) is RESPONSE_OF[type(R[name])] and negative.response_code in ALLOWED_CODES[type(negative)]
        exi.encode("din", core.message(negative, bytes(8)))


@pytest.mark.parametrize("name", ["ServiceDetailReq", "PaymentDetailsReq", "ChargingStatusReq", "MeteringReceiptReq",
                                  "CertificateInstallationReq", "CertificateUpdateReq"])
def test_requests_outside_din_dc_are_sequence_errors(name):
    core = Core.din()
    core.send(R["SessionSetupReq"])
    step = core.send(R[name])
    assert code(step) == "FAILED_SequenceError" and step.close


def _full(core):
    out = []
    sequence = [(n, R[n]) for n in DIN_DC]
    sequence.insert(9, ("PowerDeliveryReq", din.PowerDeliveryReq(ready_to_charge_state=False)))
    for name, body_in in sequence:
        step = core.send(body_in)
        if step.response is None:
            step = core.settle()
        body = res(step)
        while getattr(body, "evse_processing", din.EVSEProcessing.Finished) is din.EVSEProcessing.Ongoing:
            core.settle()
            body = res(core.send(body_in))
        out.append((name, body))
    return out


def test_a_whole_din_session():
    core = Core.din()
    exchanges = _full(core)
    assert all(b.response_code.value.startswith("OK") for _, b in exchanges)
    setup = exchanges[0][1]
    assert setup.evseid == b"\x00" and setup.response_code is din.ResponseCode.OK_NewSessionEstablished
    sd = exchanges[1][1]
    assert sd.charge_service.energy_transfer_type is din.EVSESupportedEnergyTransfer.DC_extended
    assert [p.value for p in sd.payment_options.payment_option] == ["ExternalPayment"]
    assert core.session.closed
    names = [type(e).__name__ for e in core.effects()]
    assert names.count("StartTransaction") == 1 and names.index("CloseContactor") < names.index("OpenContactor")
    assert [s.reason for s in core.effects(StopTransaction)] == [StopReason.Local]


def test_din_needs_dc_and_external_payment():
    ac_only = Core.din(energy_transfer_modes=(EnergyTransferMode.AC_three_phase_core,))
    ac_only.send(R["SessionSetupReq"])
    assert code(ac_only.send(R["ServiceDiscoveryReq"])) == "FAILED"
    pnc_only = Core.din(payment_options=(PaymentOption.Contract,))
    pnc_only.send(R["SessionSetupReq"])
    assert code(pnc_only.send(R["ServiceDiscoveryReq"])) == "FAILED"


@pytest.mark.parametrize("option,services,expected", [
    ("Contract", [1], "FAILED_PaymentSelectionInvalid"),
    ("ExternalPayment", [2], "FAILED_ServiceSelectionInvalid"),
    ("ExternalPayment", [1, 5], "FAILED_ServiceSelectionInvalid"),
])
def test_service_payment_selection(option, services, expected):
    core = Core.din()
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    req = din.ServicePaymentSelectionReq(
        selected_payment_option=din.PaymentOption(option),
        selected_service_list=din.SelectedServiceList(selected_service=[din.SelectedService(service_id=s) for s in services]))
    assert code(core.send(req)) == expected


def _to_cpd(core):
    for name in DIN_DC[:3]:
        core.send(R[name])
    core.settle()
    core.send(R["ContractAuthenticationReq"])


def test_wrong_energy_transfer_type_and_parameter():
    core = Core.din(energy_transfer_modes=(EnergyTransferMode.DC_core,))
    _to_cpd(core)
    assert code(core.send(R["ChargeParameterDiscoveryReq"])) == "FAILED_WrongEnergyTransferType"
    core = Core.din()
    _to_cpd(core)
    ac = din.ChargeParameterDiscoveryReq(
        ev_requested_energy_transfer_type=din.EVRequestedEnergyTransfer.DC_extended,
        ev_charge_parameter=din.AC_EVChargeParameter(departure_time=0, e_amount=din.PhysicalValue(multiplier=0, value=1),
                                                     ev_max_voltage=din.PhysicalValue(multiplier=0, value=1),
                                                     ev_max_current=din.PhysicalValue(multiplier=0, value=1),
                                                     ev_min_current=din.PhysicalValue(multiplier=0, value=1)))
    assert code(core.send(ac)) == "FAILED_WrongChargeParameter"


def test_ongoing_charge_parameter_discovery_still_carries_a_schedule():
    core = Core.din()
    _to_cpd(core)
    body = res(core.send(R["ChargeParameterDiscoveryReq"]))
    assert body.evse_processing is din.EVSEProcessing.Ongoing and body.sa_schedules.sa_schedule_tuple


def test_power_delivery_with_an_unknown_tuple():
    core = Core.din()
    _to_cpd(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.settle()
    core.send(R["ChargeParameterDiscoveryReq"])
    core.send(R["CableCheckReq"])
    core.settle()
    core.send(R["CableCheckReq"])
    core.send(R["PreChargeReq"])
    bad = din.PowerDeliveryReq(ready_to_charge_state=True, charging_profile=din.ChargingProfile(
        sa_schedule_tuple_id=9, profile_entry=[din.ProfileEntry(charging_profile_entry_start=0, charging_profile_entry_max_power=1)]))
    assert code(core.send(bad)) == "FAILED_TariffSelectionInvalid"


def test_contactor_failure_is_power_delivery_not_applied():
    core = Core.din(behaviour=RigBehaviour(contactor_ok=False))
    _to_cpd(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.settle()
    core.send(R["ChargeParameterDiscoveryReq"])
    core.send(R["CableCheckReq"])
    core.settle()
    core.send(R["CableCheckReq"])
    core.send(R["PreChargeReq"])
    assert core.send(R["PowerDeliveryReq"]).response is None
    step = core.settle()
    assert code(step) == "FAILED_PowerDeliveryNotApplied" and step.close
    assert core.effects(CloseContactor) and core.effects(OpenContactor)
    assert [s.reason for s in core.effects(StopTransaction)] == [StopReason.Other]
    assert len(core.effects(StartTransaction)) == 1


def test_unknown_session_and_silence():
    core = Core.din()
    core.send(R["SessionSetupReq"])
    assert code(core.send(R["ServiceDiscoveryReq"], session_id=b"\x05")) == "FAILED_UnknownSession"
    quiet = Core.din()
    quiet.send(R["SessionSetupReq"])
    step = quiet.tick_to_deadline()
    assert step.close and step.response is None and not quiet.effects(StopTransaction)  # nothing had started


def test_docs_show_the_derived_sequences():
    """docs/secc.md shows the sequences as diagram() derives them from EXPECTED."""
    from pnc_bridge.secc.iso2._state import diagram as iso2_diagram
    from tests.conftest import REPO

    text = (REPO / "docs" / "secc.md").read_text()
    assert iso2_diagram() in text and diagram() in text
