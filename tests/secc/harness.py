"""A session core driven request by request from a test, with the rig's ports answering the
effects (fakes at the ports only), and request builders for DIN 70121 and ISO 15118-2."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hil.secc_rig import RigPorts
from pnc_bridge import exi
from pnc_bridge.messages import din, iso2, xmldsig
from pnc_bridge.secc import DinSession, Iso2Session, SeccConfig, Step
from pnc_bridge.secc.effects import EnergyTransferMode, Notification, Request
from pnc_bridge.secc.schedule import physical_value

UNIX0 = 1_700_000_000.0


def counter_bytes():
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def config(**kw) -> SeccConfig:
    kw.setdefault("energy_transfer_modes", (EnergyTransferMode.DC_extended, EnergyTransferMode.AC_three_phase_core))
    kw.setdefault("random_bytes", counter_bytes())
    return SeccConfig(**kw)


@dataclass
class Core:
    """``send(body)`` wraps a request body in a V2G_Message with the session's SessionID and
    returns the core's Step; ``settle()`` lets the ports answer every pending request effect."""

    session: object
    ports: RigPorts
    schema: str
    now: float = 10.0
    steps: list[Step] = field(default_factory=list)
    pending: list = field(default_factory=list)

    @classmethod
    def iso2(cls, *, tls=True, behaviour=None, pki=None, resume=None, **kw) -> "Core":
        ports = RigPorts(pki, behaviour)
        session = Iso2Session(config(**kw), now=10.0, unix_time=UNIX0 + 10.0, tls=tls, resume=resume)
        session.update_evse_status(ports.status)
        ports.listeners.append(session.update_evse_status)
        return cls(session, ports, "iso2")

    @classmethod
    def din(cls, *, behaviour=None, **kw) -> "Core":
        ports = RigPorts(None, behaviour)
        session = DinSession(config(**kw), now=10.0, unix_time=UNIX0 + 10.0)
        session.update_evse_status(ports.status)
        ports.listeners.append(session.update_evse_status)
        return cls(session, ports, "din")

    @property
    def m(self):
        return iso2 if self.schema == "iso2" else din

    def message(self, body, session_id: bytes | None = None, signature=None):
        sid = self.session.session_id or bytes(1) if session_id is None else session_id
        return self.m.V2G_Message(header=self.m.MessageHeader(session_id=sid, signature=signature), body=self.m.Body(body_element=body))

    def _take(self, step: Step) -> Step:
        self.steps.append(step)
        for effect in step.effects:
            if isinstance(effect, Notification):
                self.ports.answer(effect)
            elif isinstance(effect, Request):
                self.pending.append(effect)
        if step.response is not None:
            # every response the core produces must be a valid document of its schema
            assert exi.decode(self.schema, exi.encode(self.schema, step.response)) == step.response
        return step

    def send(self, body, *, session_id: bytes | None = None, signature=None, advance: float = 0.1) -> Step:
        self.now += advance
        return self._take(self.session.receive(self.message(body, session_id, signature), self.now))

    def send_message(self, message, advance: float = 0.1) -> Step:
        self.now += advance
        return self._take(self.session.receive(message, self.now))

    def settle(self) -> Step | None:
        """Resolve every pending request effect; returns the last step that carried a response."""
        answered = None
        while self.pending:
            effect = self.pending.pop(0)
            self.now += 0.01
            step = self._take(self.session.resolve(self.ports.answer(effect), self.now))
            if step.response is not None or step.close:
                answered = step
        return answered

    def tick_to_deadline(self) -> Step:
        deadline = self.session.deadline()
        assert deadline is not None
        self.now = deadline
        return self._take(self.session.tick(self.now))

    def effects(self, cls=None) -> list:
        return [e for s in self.steps for e in s.effects if cls is None or isinstance(e, cls)]


def res(step: Step):
    return step.response.body.body_element


def code(step: Step) -> str:
    return res(step).response_code.value


# --------------------------------------------------------------------------- #
# ISO 15118-2 requests                                                         #
# --------------------------------------------------------------------------- #


def pv2(value, unit):
    return physical_value(iso2, value, unit)


def dc_status2(soc=50):
    return iso2.DC_EVStatus(ev_ready=True, ev_error_code=iso2.DC_EVErrorCode.NO_ERROR, evresssoc=soc)


ROOT_IDS = iso2.ListOfRootCertificateIDs(
    root_certificate_id=[xmldsig.X509IssuerSerial(x509_issuer_name="CN=V2G Root", x509_serial_number=1)])


def iso2_requests() -> dict[str, object]:
    """One valid request of every ISO 15118-2 type (EIM, DC unless it is AC-only)."""
    return {
        "SessionSetupReq": iso2.SessionSetupReq(evccid=bytes.fromhex("020000000001")),
        "ServiceDiscoveryReq": iso2.ServiceDiscoveryReq(),
        "ServiceDetailReq": iso2.ServiceDetailReq(service_id=2),
        "PaymentServiceSelectionReq": iso2.PaymentServiceSelectionReq(
            selected_payment_option=iso2.PaymentOption.ExternalPayment,
            selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=1)])),
        "CertificateInstallationReq": iso2.CertificateInstallationReq(
            id="ID1", oem_provisioning_cert=b"\x30\x00",
            list_of_root_certificate_ids=ROOT_IDS),
        "CertificateUpdateReq": iso2.CertificateUpdateReq(
            id="ID1", contract_signature_cert_chain=iso2.CertificateChain(certificate=b"\x30\x00"), e_maid="DE8AA0012345670",
            list_of_root_certificate_ids=ROOT_IDS),
        "PaymentDetailsReq": iso2.PaymentDetailsReq(e_maid="DE8AA0012345670",
                                                    contract_signature_cert_chain=iso2.CertificateChain(certificate=b"\x30\x00")),
        "AuthorizationReq": iso2.AuthorizationReq(),
        "ChargeParameterDiscoveryReq": iso2.ChargeParameterDiscoveryReq(
            requested_energy_transfer_mode=iso2.EnergyTransferMode.DC_extended,
            ev_charge_parameter=iso2.DC_EVChargeParameter(
                dc_ev_status=dc_status2(), ev_maximum_current_limit=pv2(200, "A"), ev_maximum_voltage_limit=pv2(450, "V"))),
        "CableCheckReq": iso2.CableCheckReq(dc_ev_status=dc_status2()),
        "PreChargeReq": iso2.PreChargeReq(dc_ev_status=dc_status2(), ev_target_voltage=pv2(400, "V"), ev_target_current=pv2(2, "A")),
        "PowerDeliveryReq": iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Start, sa_schedule_tuple_id=1),
        "ChargingStatusReq": iso2.ChargingStatusReq(),
        "CurrentDemandReq": iso2.CurrentDemandReq(dc_ev_status=dc_status2(), ev_target_current=pv2(100, "A"),
                                                  charging_complete=False, ev_target_voltage=pv2(400, "V")),
        "MeteringReceiptReq": iso2.MeteringReceiptReq(session_id=bytes(8), meter_info=iso2.MeterInfo(meter_id="M")),
        "WeldingDetectionReq": iso2.WeldingDetectionReq(dc_ev_status=dc_status2()),
        "SessionStopReq": iso2.SessionStopReq(charging_session=iso2.ChargingSession.Terminate),
    }


def iso2_dc_to_loop(core: Core) -> None:
    """Drive an ISO 15118-2 DC EIM session into the charge loop (WAIT_FOR_CurrentDemandReq)."""
    r = iso2_requests()
    for name in ("SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"):
        assert code(core.send(r[name])).startswith("OK"), name
    core.settle()
    assert res(core.send(r["AuthorizationReq"])).evse_processing is iso2.EVSEProcessing.Finished
    core.send(r["ChargeParameterDiscoveryReq"])
    core.settle()
    assert res(core.send(r["ChargeParameterDiscoveryReq"])).evse_processing is iso2.EVSEProcessing.Finished
    core.send(r["CableCheckReq"])
    core.settle()
    assert res(core.send(r["CableCheckReq"])).evse_processing is iso2.EVSEProcessing.Finished
    core.send(r["PreChargeReq"])
    core.send(r["PowerDeliveryReq"])
    assert code(core.settle()) == "OK"


# --------------------------------------------------------------------------- #
# DIN 70121 requests                                                           #
# --------------------------------------------------------------------------- #


def pvd(value, unit):
    return physical_value(din, value, unit)


def dc_status_din(soc=50):
    return din.DC_EVStatus(ev_ready=True, ev_error_code=din.DC_EVErrorCode.NO_ERROR, evresssoc=soc)


def din_requests() -> dict[str, object]:
    return {
        "SessionSetupReq": din.SessionSetupReq(evccid=bytes.fromhex("020000000001")),
        "ServiceDiscoveryReq": din.ServiceDiscoveryReq(),
        "ServicePaymentSelectionReq": din.ServicePaymentSelectionReq(
            selected_payment_option=din.PaymentOption.ExternalPayment,
            selected_service_list=din.SelectedServiceList(selected_service=[din.SelectedService(service_id=1)])),
        "ContractAuthenticationReq": din.ContractAuthenticationReq(),
        "ChargeParameterDiscoveryReq": din.ChargeParameterDiscoveryReq(
            ev_requested_energy_transfer_type=din.EVRequestedEnergyTransfer.DC_extended,
            ev_charge_parameter=din.DC_EVChargeParameter(
                dc_ev_status=dc_status_din(), ev_maximum_current_limit=pvd(200, "A"), ev_maximum_voltage_limit=pvd(450, "V"))),
        "CableCheckReq": din.CableCheckReq(dc_ev_status=dc_status_din()),
        "PreChargeReq": din.PreChargeReq(dc_ev_status=dc_status_din(), ev_target_voltage=pvd(400, "V"), ev_target_current=pvd(2, "A")),
        "PowerDeliveryReq": din.PowerDeliveryReq(ready_to_charge_state=True),
        "CurrentDemandReq": din.CurrentDemandReq(dc_ev_status=dc_status_din(), ev_target_current=pvd(100, "A"),
                                                 charging_complete=False, ev_target_voltage=pvd(400, "V")),
        "WeldingDetectionReq": din.WeldingDetectionReq(dc_ev_status=dc_status_din()),
        "SessionStopReq": din.SessionStop(),
        "ServiceDetailReq": din.ServiceDetailReq(service_id=1),
        "PaymentDetailsReq": din.PaymentDetailsReq(contract_id="x", contract_signature_cert_chain=din.CertificateChain(certificate=b"")),
        "ChargingStatusReq": din.ChargingStatusReq(),
        "MeteringReceiptReq": din.MeteringReceiptReq(session_id=bytes(8), meter_info=din.MeterInfo(meter_id="M")),
        "CertificateInstallationReq": din.CertificateInstallationReq(
            oem_provisioning_cert=b"", list_of_root_certificate_ids=din.ListOfRootCertificateIDs(root_certificate_id=["x"]),
            dh_params=b""),
        "CertificateUpdateReq": din.CertificateUpdateReq(
            contract_signature_cert_chain=din.CertificateChain(certificate=b""), contract_id="x",
            list_of_root_certificate_ids=din.ListOfRootCertificateIDs(root_certificate_id=["x"]), dh_params=b""),
    }
