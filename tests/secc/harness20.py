"""An ISO 15118-20 session core driven request by request from a test, with the rig's ports
answering the effects (fakes at the ports only), request builders for every -20 request, and
``to_state`` to walk a core forward with valid requests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hil.secc_rig import RigPorts
from pnc_bridge import exi
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc import SeccConfig, Step
from pnc_bridge.secc._connection import iso20_schema
from pnc_bridge.secc.effects import ControlMode, EnergyService, EnergyTransferMode, Notification, Request
from pnc_bridge.secc.iso20 import ALLOWED_CODES, RESPONSE_OF, Iso20AcSession, Iso20DcSession, State, parameter_sets
from pnc_bridge.secc.schedule import rational_number
from tests.secc.harness import counter_bytes

UNIX0 = 1_700_000_000.0
SCHEDULED, DYNAMIC = ControlMode.ScheduledControl, ControlMode.DynamicControl


def config20(**kw) -> SeccConfig:
    kw.setdefault("energy_transfer_modes", (EnergyTransferMode.DC_extended, EnergyTransferMode.AC_three_phase_core))
    kw.setdefault("random_bytes", counter_bytes())
    return SeccConfig(**kw)


def rn(value: float) -> m.RationalNumber:
    return rational_number(value)


def header(session_id: bytes = bytes(8), signature=None) -> m.MessageHeader:
    return m.MessageHeader(session_id=session_id, time_stamp=int(UNIX0), signature=signature)


@dataclass
class Core20:
    """``send(request)`` gives the request the session's SessionID and returns the core's
    Step (every response is checked: its type, an allowed code, a round trip through EXI);
    ``settle()`` lets the ports answer every pending request effect."""

    session: Iso20DcSession | Iso20AcSession
    ports: RigPorts
    now: float = 10.0
    steps: list[Step] = field(default_factory=list)
    pending: list = field(default_factory=list)
    responses: list = field(default_factory=list)

    @classmethod
    def make(cls, *, dc: bool = True, tls: bool = True, behaviour=None, pki=None, resume=None, status=None, **kw) -> "Core20":
        ports = RigPorts(pki, behaviour, status=status)
        core = (Iso20DcSession if dc else Iso20AcSession)(config20(**kw), now=10.0, unix_time=UNIX0 + 10.0, tls=tls, resume=resume)
        core.update_evse_status(ports.status)
        ports.listeners.append(core.update_evse_status)
        return cls(core, ports)

    @property
    def ctx(self):
        return self.session.context

    def _take(self, step: Step, request=None) -> Step:
        self.steps.append(step)
        for effect in step.effects:
            if isinstance(effect, Notification):
                self.ports.answer(effect)
            elif isinstance(effect, Request):
                self.pending.append(effect)
        if step.response is not None:
            res = step.response
            schema = iso20_schema(res)
            # every response the core produces is a valid document of its schema
            assert exi.decode(schema, exi.encode(schema, res)) == res
            assert res.response_code in ALLOWED_CODES[type(res)], (type(res).__name__, res.response_code)
            assert res.header.session_id == (self.session.session_id or res.header.session_id)
            if request is not None:
                assert type(res) is RESPONSE_OF[type(request)]
            self.responses.append(res)
        return step

    def send(self, request, *, session_id: bytes | None = None, advance: float = 0.1, raw: bytes | None = None) -> Step:
        self.now += advance
        sid = (self.session.session_id or bytes(8)) if session_id is None else session_id
        if not isinstance(request, m.SessionSetupReq) or session_id is not None:
            request = dataclasses.replace(request, header=dataclasses.replace(request.header, session_id=sid))
        self._last_request = request
        return self._take(self.session.receive(request, self.now, raw=raw), request)

    def settle(self) -> Step | None:
        """Resolve every pending request effect; returns the last step that carried a response."""
        answered = None
        while self.pending:
            effect = self.pending.pop(0)
            self.now += 0.01
            self.ports.advance_to(self.now)
            step = self._take(self.session.resolve(self.ports.answer(effect), self.now), self._last_request)
            if step.response is not None or step.close:
                answered = step
        return answered

    def tick_to_deadline(self) -> Step:
        deadline = self.session.deadline()
        assert deadline is not None
        self.now = deadline
        return self._take(self.session.tick(self.now), self._last_request)

    def effects(self, cls=None) -> list:
        return [e for s in self.steps for e in s.effects if cls is None or isinstance(e, cls)]

    def push_setpoint(self, setpoint) -> None:
        self.session.update_setpoint(setpoint, self.now)


def res(step: Step):
    return step.response


def code(step: Step) -> str:
    return step.response.response_code.value


def set_id(service: EnergyService, control_mode: ControlMode = SCHEDULED, pricing: int = 0, config: SeccConfig | None = None) -> int:
    config = config or config20()
    return next(p.id for p in parameter_sets(config.iso20, service) if p.control_mode is control_mode and p.pricing == pricing)


# --------------------------------------------------------------------------- #
# Requests                                                                     #
# --------------------------------------------------------------------------- #


def session_setup(evccid: str = "PNCBRIDGETEST01") -> m.SessionSetupReq:
    return m.SessionSetupReq(header=header(), evccid=evccid)


def authorization_setup() -> m.AuthorizationSetupReq:
    return m.AuthorizationSetupReq(header=header())


def authorization_eim() -> m.AuthorizationReq:
    return m.AuthorizationReq(header=header(), selected_authorization_service=m.Authorization.EIM,
                              eim_areq_authorization_mode=m.EIM_AReqAuthorizationMode())


def service_discovery(ids: list[int] | None = None) -> m.ServiceDiscoveryReq:
    return m.ServiceDiscoveryReq(header=header(), supported_service_ids=m.ServiceIDList(service_id=ids) if ids else None)


def service_detail(service_id: int) -> m.ServiceDetailReq:
    return m.ServiceDetailReq(header=header(), service_id=service_id)


def service_selection(service: EnergyService, parameter_set_id: int, vas: list | None = None) -> m.ServiceSelectionReq:
    return m.ServiceSelectionReq(
        header=header(), selected_energy_transfer_service=m.SelectedService(service_id=service.service_id, parameter_set_id=parameter_set_id),
        selected_vas_list=m.SelectedServiceList(selected_service=vas) if vas else None)


def dc_cpd(bpt: bool, *, max_power=100000.0, max_current=250.0, max_voltage=450.0, max_discharge_power=20000.0,
           max_discharge_current=50.0) -> m.DC_ChargeParameterDiscoveryReq:
    fields = dict(ev_maximum_charge_power=rn(max_power), ev_minimum_charge_power=rn(0), ev_maximum_charge_current=rn(max_current),
                  ev_minimum_charge_current=rn(0), ev_maximum_voltage=rn(max_voltage), ev_minimum_voltage=rn(200), target_soc=80)
    mode = (m.BPT_DC_CPDReqEnergyTransferMode(**fields, ev_maximum_discharge_power=rn(max_discharge_power),
                                              ev_minimum_discharge_power=rn(0), ev_maximum_discharge_current=rn(max_discharge_current),
                                              ev_minimum_discharge_current=rn(0))
            if bpt else m.DC_CPDReqEnergyTransferMode(**fields))
    return m.DC_ChargeParameterDiscoveryReq(header=header(), dc_cpd_req_energy_transfer_mode=mode)


def ac_cpd(bpt: bool, *, max_power=11000.0, max_discharge_power=7000.0) -> m.AC_ChargeParameterDiscoveryReq:
    fields = dict(ev_maximum_charge_power=rn(max_power), ev_minimum_charge_power=rn(1400))
    mode = (m.BPT_AC_CPDReqEnergyTransferMode(**fields, ev_maximum_discharge_power=rn(max_discharge_power), ev_minimum_discharge_power=rn(0))
            if bpt else m.AC_CPDReqEnergyTransferMode(**fields))
    return m.AC_ChargeParameterDiscoveryReq(header=header(), ac_cpd_req_energy_transfer_mode=mode)


def schedule_exchange(control_mode: ControlMode, *, max_points: int = 1024, departure: int = 7200, bpt: bool = False) -> m.ScheduleExchangeReq:
    if control_mode is DYNAMIC:
        return m.ScheduleExchangeReq(header=header(), maximum_supporting_points=max_points, dynamic_se_req_control_mode=m.Dynamic_SEReqControlMode(
            departure_time=departure, minimum_soc=20, target_soc=80, ev_target_energy_request=rn(30000),
            ev_maximum_energy_request=rn(40000), ev_minimum_energy_request=rn(-10000),
            ev_maximum_v2x_energy_request=rn(40000) if bpt else None, ev_minimum_v2x_energy_request=rn(-10000) if bpt else None))
    return m.ScheduleExchangeReq(header=header(), maximum_supporting_points=max_points, scheduled_se_req_control_mode=m.Scheduled_SEReqControlMode(
        departure_time=departure, ev_target_energy_request=rn(30000), ev_maximum_energy_request=rn(40000), ev_minimum_energy_request=rn(0)))


def cable_check() -> m.DC_CableCheckReq:
    return m.DC_CableCheckReq(header=header())


def pre_charge(voltage: float = 400.0, processing=m.Processing.Ongoing) -> m.DC_PreChargeReq:
    return m.DC_PreChargeReq(header=header(), ev_processing=processing, ev_present_voltage=rn(voltage), ev_target_voltage=rn(voltage))


def power_delivery(progress=m.ChargeProgress.Start, *, tuple_id: int | None = None, entries: list[tuple[int, float]] | None = None,
                   processing=m.Processing.Finished, dynamic: bool = False, channel=None) -> m.PowerDeliveryReq:
    profile = None
    if entries is not None or tuple_id is not None or dynamic:
        profile = m.EVPowerProfile(
            time_anchor=0,
            scheduled_evppt_control_mode=None if dynamic else m.Scheduled_EVPPTControlMode(selected_schedule_tuple_id=tuple_id or 1),
            dynamic_evppt_control_mode=m.Dynamic_EVPPTControlMode() if dynamic else None,
            ev_power_profile_entries=m.EVPowerProfileEntryList(ev_power_profile_entry=[
                m.PowerScheduleEntry(duration=d, power=rn(p)) for d, p in (entries or [(86400, 0)])]))
    return m.PowerDeliveryReq(header=header(), ev_processing=processing, charge_progress=progress, ev_power_profile=profile,
                              bpt_channel_selection=channel)


def dc_loop(control_mode: ControlMode = SCHEDULED, bpt: bool = False, *, current: float = 100.0, voltage: float = 400.0,
            max_power: float = 100000.0, max_discharge_power: float = 20000.0, max_discharge_current: float = 50.0,
            soc: int | None = 50, mode=None) -> m.DC_ChargeLoopReq:
    if mode is None:
        if control_mode is SCHEDULED:
            fields = dict(ev_target_current=rn(current), ev_target_voltage=rn(voltage))
            mode = m.BPT_Scheduled_DC_CLReqControlMode(**fields) if bpt else m.Scheduled_DC_CLReqControlMode(**fields)
        else:
            fields = dict(ev_target_energy_request=rn(30000), ev_maximum_energy_request=rn(40000), ev_minimum_energy_request=rn(-10000),
                          ev_maximum_charge_power=rn(max_power), ev_minimum_charge_power=rn(0), ev_maximum_charge_current=rn(250),
                          ev_maximum_voltage=rn(450), ev_minimum_voltage=rn(200))
            mode = (m.BPT_Dynamic_DC_CLReqControlMode(**fields, ev_maximum_discharge_power=rn(max_discharge_power),
                                                       ev_minimum_discharge_power=rn(0), ev_maximum_discharge_current=rn(max_discharge_current))
                    if bpt else m.Dynamic_DC_CLReqControlMode(**fields))
    return m.DC_ChargeLoopReq(header=header(), display_parameters=m.DisplayParameters(present_soc=soc) if soc is not None else None,
                              meter_info_requested=False, ev_present_voltage=rn(voltage), cl_req_control_mode=mode)


def ac_loop(control_mode: ControlMode = SCHEDULED, bpt: bool = False, *, present: float = 0.0, max_power: float = 11000.0,
            max_discharge_power: float = 7000.0) -> m.AC_ChargeLoopReq:
    if control_mode is SCHEDULED:
        mode = (m.BPT_Scheduled_AC_CLReqControlMode(ev_present_active_power=rn(present)) if bpt
                else m.Scheduled_AC_CLReqControlMode(ev_present_active_power=rn(present)))
    else:
        fields = dict(ev_target_energy_request=rn(30000), ev_maximum_energy_request=rn(40000), ev_minimum_energy_request=rn(-10000),
                      ev_maximum_charge_power=rn(max_power), ev_minimum_charge_power=rn(0), ev_present_active_power=rn(present),
                      ev_present_reactive_power=rn(0))
        mode = (m.BPT_Dynamic_AC_CLReqControlMode(**fields, ev_maximum_discharge_power=rn(max_discharge_power), ev_minimum_discharge_power=rn(0))
                if bpt else m.Dynamic_AC_CLReqControlMode(**fields))
    return m.AC_ChargeLoopReq(header=header(), meter_info_requested=False, cl_req_control_mode=mode)


def welding() -> m.DC_WeldingDetectionReq:
    return m.DC_WeldingDetectionReq(header=header(), ev_processing=m.Processing.Ongoing)


def session_stop(kind=m.ChargingSession.Terminate) -> m.SessionStopReq:
    return m.SessionStopReq(header=header(), charging_session=kind)


def metering_confirmation(session_id: bytes, meter_info: m.MeterInfo | None = None, tuple_id: int = 1) -> m.MeteringConfirmationReq:
    return m.MeteringConfirmationReq(header=header(), signed_metering_data=m.SignedMeteringData(
        id="ID1", session_id=session_id, meter_info=meter_info or m.MeterInfo(meter_id="M", charged_energy_reading_wh=1),
        scheduled_smdt_control_mode=m.Scheduled_SMDTControlMode(selected_schedule_tuple_id=tuple_id)))


def one_of_each(dc: bool = True, bpt: bool = False, control_mode: ControlMode = SCHEDULED) -> dict[str, object]:
    """One valid request of every -20 type this core handles (EIM)."""
    service = (EnergyService.DC_BPT if bpt else EnergyService.DC) if dc else (EnergyService.AC_BPT if bpt else EnergyService.AC)
    return {
        "SessionSetupReq": session_setup(),
        "AuthorizationSetupReq": authorization_setup(),
        "AuthorizationReq": authorization_eim(),
        "CertificateInstallationReq": m.CertificateInstallationReq(
            header=header(), oem_provisioning_certificate_chain=m.SignedCertificateChain(id="ID1", certificate=b"\x30\x00"),
            list_of_root_certificate_ids=m.ListOfRootCertificateIDs(root_certificate_id=[]), maximum_contract_certificate_chains=1),
        "ServiceDiscoveryReq": service_discovery(),
        "ServiceDetailReq": service_detail(service.service_id),
        "ServiceSelectionReq": service_selection(service, set_id(service, control_mode)),
        "AC_ChargeParameterDiscoveryReq": ac_cpd(bpt),
        "DC_ChargeParameterDiscoveryReq": dc_cpd(bpt),
        "ScheduleExchangeReq": schedule_exchange(control_mode, bpt=bpt),
        "DC_CableCheckReq": cable_check(),
        "DC_PreChargeReq": pre_charge(),
        "PowerDeliveryReq": power_delivery(),
        "AC_ChargeLoopReq": ac_loop(control_mode, bpt),
        "DC_ChargeLoopReq": dc_loop(control_mode, bpt),
        "MeteringConfirmationReq": metering_confirmation(bytes(8)),
        "DC_WeldingDetectionReq": welding(),
        "SessionStopReq": session_stop(),
    }


def to_state(core: Core20, target: State, service: EnergyService, control_mode: ControlMode = SCHEDULED, *, entries=None) -> None:
    """Walk ``core`` forward with valid EIM requests until it waits in ``target``."""
    dc, bpt = service.is_dc, service.is_bpt
    steps: list = [
        (State.WAIT_FOR_SessionSetupReq, lambda: session_setup()),
        (State.WAIT_FOR_AuthorizationSetupReq, lambda: authorization_setup()),
        (State.WAIT_FOR_AuthorizationReq, lambda: authorization_eim()),
        (State.WAIT_FOR_ServiceDiscoveryReq, lambda: service_discovery()),
        (State.WAIT_FOR_ServiceSelectionReq, lambda: service_selection(service, set_id(service, control_mode, config=core.session._ctx.config))),
        (State.WAIT_FOR_ChargeParameterDiscoveryReq, lambda: dc_cpd(bpt) if dc else ac_cpd(bpt)),
        (State.WAIT_FOR_ScheduleExchangeReq, lambda: schedule_exchange(control_mode, bpt=bpt)),
        (State.WAIT_FOR_CableCheckReq, lambda: cable_check()),
        (State.WAIT_FOR_PreChargeReq, lambda: pre_charge()),
        (State.WAIT_FOR_PowerDeliveryReq, lambda: power_delivery(
            tuple_id=core.ctx.schedule_tuples[0].schedule_tuple_id if core.ctx.schedule_tuples else None,
            entries=entries, dynamic=control_mode is DYNAMIC)),
        (State.WAIT_FOR_ChargeLoopReq, lambda: power_delivery(m.ChargeProgress.Stop)),
    ]
    for _ in range(40):
        state = core.session.state
        if state is target:
            return
        build = next(b for s, b in steps if s is state)
        step = core.send(build())
        core.settle()
        assert not core.session.closed, (state, core.steps[-1].reason)
        # requests answered Ongoing: ask again until Finished
        if core.session.state is state and state in (State.WAIT_FOR_AuthorizationReq, State.WAIT_FOR_ScheduleExchangeReq,
                                                    State.WAIT_FOR_CableCheckReq):
            continue
        assert step is not None
    raise AssertionError(f"did not reach {target}; stuck in {core.session.state}")
