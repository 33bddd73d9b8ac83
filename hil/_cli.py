"""pnc-bridge hil ...: the rig's EV emulator and a stand-alone SECC for labs.

    pnc-bridge hil session [--protocol din|iso2] [--mode dc|ac3|ac1] [--pnc]   # both, in one process
    pnc-bridge hil session --protocol iso20 [--service dc-bpt] [--control dynamic] [--v2g 2] [--pnc]
    pnc-bridge hil ev --port 15118 [--host ::1 | --sdp IFACE] [--tls --pki DIR] ...
    pnc-bridge hil secc --pki DIR [--pki20 DIR] [--tcp-port P] [--tls-port P] [--iface IFACE] ...

``session`` runs our EV emulator against our SECC cores over loopback and prints the timeline;
``ev`` runs the EV emulator against any SECC; ``secc`` runs our SECC cores with the rig's
simulated EVSE, local PKI and scripted CSMS, for an EV under test. ``--pki DIR`` is a test PKI
made with ``pnc-bridge pki test-pki DIR`` (share it between EV and SECC for Plug & Charge);
ISO 15118-20 (``--protocol iso20``) needs a -20 one (``pnc-bridge pki test-pki --variant iso20
DIR``): TLS 1.3 with the EV's OEM certificate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

__all__ = ["register"]

_MODES = {"dc": "DC_extended", "ac3": "AC_three_phase_core", "ac1": "AC_single_phase_core"}
_SERVICES = {"dc": "DC", "dc-bpt": "DC_BPT", "ac": "AC", "ac-bpt": "AC_BPT"}


def register(subparsers) -> None:
    hil = subparsers.add_parser("hil", help="hardware-in-the-loop rig: EV emulator, stand-alone SECC", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = hil.add_subparsers(dest="hil_command", metavar="HIL_COMMAND")
    hil.set_defaults(func=lambda args: (hil.print_help(), 2)[1])

    def ev_options(p) -> None:
        p.add_argument("--protocol", action="append", choices=("iso2", "din", "iso20"),
                       help="protocol(s) the EV offers, in priority order (default: iso2 then din); iso20 alone runs "
                            "the ISO 15118-20 EV")
        p.add_argument("--service", choices=sorted(_SERVICES), default="dc-bpt",
                       help="ISO 15118-20 energy service (default dc-bpt)")
        p.add_argument("--control", choices=("scheduled", "dynamic"), default="scheduled",
                       help="ISO 15118-20 control mode (default scheduled)")
        p.add_argument("--mode", choices=sorted(_MODES), default="dc", help="energy transfer (default dc)")
        p.add_argument("--pnc", action="store_true", help="Plug & Charge (Contract) instead of EIM; needs TLS")
        p.add_argument("--certificate", choices=("install", "update", "none"), default=None,
                       help="PnC: install a contract first (default when the EV has none), update it, or neither")
        p.add_argument("--loops", type=int, default=10, help="charge-loop requests before stopping (default 10)")
        p.add_argument("--interval", type=float, default=0.1, help="seconds between charge-loop requests (default 0.1)")
        p.add_argument("--departure", type=int, default=None, help="DepartureTime in seconds (ISO 15118-2)")
        p.add_argument("--max-entries", type=int, default=None, help="MaxEntriesSAScheduleTuple (ISO 15118-2)")
        p.add_argument("--pause", action="store_true", help="end with SessionStop Pause (ISO 15118-2)")

    p = sub.add_parser("session", help="our EV emulator against our SECC over loopback; prints the timeline",
                       description="Run one session EV emulator <-> SECC cores on this machine (TCP, or TLS with --pnc; "
                                   "ISO 15118-20 always over TLS 1.3) and print every message with the elapsed time. "
                                   "Exit 0 when the session ended cleanly.")
    ev_options(p)
    p.add_argument("--v2g", type=float, default=None, metavar="SECONDS",
                   help="ISO 15118-20: the rig's CSMS schedule charges, discharges, then charges again, SECONDS each")
    p.set_defaults(func=_session)

    p = sub.add_parser("ev", help="run the EV emulator against a SECC",
                       description="Run one EV session against a SECC (at HOST:PORT, or found with SDP on IFACE) and print "
                                   "the timeline. Exit 0 when the session ended cleanly, 1 otherwise.")
    p.add_argument("--host", default="::1", help="SECC address (default ::1)")
    p.add_argument("--port", type=int, default=None, help="SECC port (needed without --sdp)")
    p.add_argument("--sdp", metavar="IFACE", help="find the SECC with SDP on this interface instead")
    p.add_argument("--tls", action="store_true", help="TLS (ISO 15118-2 profile); the SECC chain must lead to the test PKI's V2G root")
    p.add_argument("--pki", help="test PKI directory (pnc-bridge pki test-pki): V2G root, OEM and contract credentials")
    ev_options(p)
    p.set_defaults(func=_ev)

    p = sub.add_parser("secc", help="run our SECC cores with simulated EVSE, local PKI and scripted CSMS",
                       description="Serve EVs with our DIN 70121 / ISO 15118-2 (and, with --pki20, ISO 15118-20) cores "
                                   "until Ctrl-C. Effects are answered by "
                                   "the rig: a simulated EVSE, contract validation against the test PKI's MO root, a CPS "
                                   "for contract installation, a CSMS that accepts. Prints one line per message.")
    p.add_argument("--pki", help="test PKI directory (needed for --tls-port and Plug & Charge)")
    p.add_argument("--pki20", help="ISO 15118-20 test PKI directory: the TLS port also serves -20 EVs (TLS 1.3, EV "
                                   "certificate from its OEM root)")
    p.add_argument("--host", default="::", help="listen address (default ::)")
    p.add_argument("--tcp-port", type=int, default=None, help="offer plain TCP on this port")
    p.add_argument("--tls-port", type=int, default=None, help="offer TLS on this port")
    p.add_argument("--iface", default=None, help="bind to this interface and answer SDP on it")
    p.add_argument("--modes", default="dc,ac3", help="energy transfer modes offered, comma separated (dc, ac3, ac1; default dc,ac3)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_secc)


def _error(message: str):
    from pnc_bridge.cli import CliError

    return CliError(message)


def _iso20(args) -> bool:
    protocols = tuple(args.protocol or ())
    if "iso20" in protocols and len(protocols) > 1:
        raise _error("--protocol iso20 runs the ISO 15118-20 EV alone; do not combine it with din / iso2")
    return protocols == ("iso20",)


def _ev_config(args, credentials):
    from hil.ev import Ev20Config, EvConfig
    from pnc_bridge.secc.effects import ControlMode, EnergyService, EnergyTransferMode, PaymentOption

    if args.loops < 1 or args.interval < 0:
        raise _error("--loops must be at least 1 and --interval not negative")
    if _iso20(args):
        try:
            return Ev20Config(
                service=EnergyService(_SERVICES[args.service]),
                control_mode=ControlMode.DynamicControl if args.control == "dynamic" else ControlMode.ScheduledControl,
                payment=PaymentOption.Contract if args.pnc else PaymentOption.ExternalPayment, credentials=credentials,
                certificate_installation=None if args.certificate is None else args.certificate == "install",
                loop_messages=args.loops, loop_interval=args.interval, departure_time=args.departure or 7200,
                max_supporting_points=args.max_entries or 1024, pause=args.pause,
            )
        except ValueError as exc:
            raise _error(str(exc)) from None
    protocols = tuple(args.protocol or ("iso2", "din"))
    mode = EnergyTransferMode(_MODES[args.mode])
    if not mode.is_dc and protocols == ("din",):
        raise _error("DIN 70121 is DC only: use --mode dc or --protocol iso2")
    try:
        return EvConfig(
            protocols=protocols, energy_mode=mode,
            payment=PaymentOption.Contract if args.pnc else PaymentOption.ExternalPayment,
            credentials=credentials, certificate_action=args.certificate, loop_messages=args.loops,
            loop_interval=args.interval, departure_time=args.departure, max_entries=args.max_entries, pause=args.pause,
        )
    except ValueError as exc:
        raise _error(str(exc)) from None


def _load_pki(path: str | None):
    if path is None:
        return None
    from hil._testpki_dir import TestPkiDirError, load_test_pki

    try:
        return load_test_pki(path)
    except TestPkiDirError as exc:
        raise _error(str(exc)) from None


def _print_timeline(ev) -> int:
    loop = list(getattr(ev.result, "loop", []))
    for entry in ev.timeline:
        arrow = "->" if entry.direction == "EV->EVSE" else "<-"
        detail = entry.detail
        if entry.direction == "EVSE->EV" and entry.message.endswith("ChargeLoopRes") and loop:
            sample = loop.pop(0)  # ISO 15118-20: the power both ways, and the EVSE's target in dynamic control
            target = "" if sample.evse_target_w is None else f" EVSE target {sample.evse_target_w:+.0f} W"
            detail = f"{detail} EV power {sample.power_w:+.0f} W{target} SoC {sample.soc:.1f} %"
        print(f"{entry.t * 1000:9.1f} ms  EV {arrow} EVSE  {entry.message:<30} {detail}")
    r = ev.result
    status = "ok" if r.ok else "FAILED"
    energy = f", {r.charged_wh:.2f} Wh charged, {r.discharged_wh:.2f} Wh given back" if hasattr(r, "charged_wh") else ""
    print(f"\n{status}: {r.reason} (protocol {r.protocol}, {r.loop_messages} charge-loop messages, "
          f"{r.receipts} metering receipts, contract installed: {r.installed_contract}{energy})")
    return 0 if r.ok else 1


def _iso20_tls(pki):
    from hil.ev import EvCredentials, iso20_tls_context

    creds = EvCredentials.from_test_pki(pki, with_contract=False)
    return iso20_tls_context([pki.v2g_root], creds.oem_chain, creds.oem_key)


def _session(args) -> int:
    from hil.ev import EvCredentials, iso2_tls_context, run_ev
    from hil.secc_rig import RigPorts, RigSecc
    from pnc_bridge.pki import generate_test_pki
    from pnc_bridge.secc import SeccConfig
    from pnc_bridge.secc.effects import EnergyTransferMode

    from hil.secc_rig import RigBehaviour, v2g_schedule

    iso20 = _iso20(args)
    if args.v2g is not None and (not iso20 or args.v2g <= 0):
        raise _error("--v2g SECONDS is for --protocol iso20 and must be positive")
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_test_pki(f"{tmp}/iso2")
        pki20 = generate_test_pki(f"{tmp}/iso20", variant="iso20") if iso20 else None
        ev_pki = pki20 or pki
        credentials = EvCredentials.from_test_pki(ev_pki, with_contract=args.certificate in ("update", "none")) if args.pnc else None
        config = _ev_config(args, credentials)
        secc_config = SeccConfig(energy_transfer_modes=tuple(EnergyTransferMode(v) for v in _MODES.values()))
        behaviour = None
        if args.v2g is not None:
            period = max(1, round(args.v2g))
            behaviour = RigBehaviour(schedules=(v2g_schedule(period_s=period, setpoints=True),))
        tls = args.pnc or iso20

        async def main():
            async with RigSecc(secc_config, RigPorts(ev_pki, behaviour), pki=pki, pki20=pki20, tcp=not tls, tls=tls) as secc:
                if iso20:
                    return await run_ev(config, "::1", secc.tls_port, tls=_iso20_tls(pki20))
                if args.pnc:
                    return await run_ev(config, "::1", secc.tls_port, tls=iso2_tls_context([pki.v2g_root]))
                return await run_ev(config, "::1", secc.tcp_port)

        return _print_timeline(asyncio.run(main()))


def _ev(args) -> int:
    from hil.ev import EvCredentials, iso2_tls_context, run_ev, run_ev_with_sdp

    pki = _load_pki(args.pki)
    if (args.tls or args.pnc) and pki is None:
        raise _error("--tls and --pnc need --pki DIR (the test PKI the SECC's certificates come from)")
    if args.pnc and not args.tls:
        raise _error("Plug & Charge needs TLS: add --tls")
    if args.sdp is None and args.port is None:
        raise _error("give --port (and --host), or --sdp IFACE")
    credentials = EvCredentials.from_test_pki(pki, with_contract=args.certificate in ("update", "none")) if args.pnc else None
    config = _ev_config(args, credentials)
    if _iso20(args):
        if not args.tls:
            raise _error("ISO 15118-20 runs over TLS: add --tls --pki DIR (a -20 test PKI)")
        if pki.variant.value == "iso2":
            raise _error("--protocol iso20 needs a -20 test PKI (pnc-bridge pki test-pki --variant iso20 DIR)")
        tls = _iso20_tls(pki)
    else:
        tls = iso2_tls_context([pki.v2g_root]) if args.tls else None
    if args.sdp:
        ev = asyncio.run(run_ev_with_sdp(config, args.sdp, tls=tls))
    else:
        ev = asyncio.run(run_ev(config, args.host, args.port, tls=tls))
    return _print_timeline(ev)


def _secc(args) -> int:
    import logging

    from hil.secc_rig import RigPorts, RigSecc
    from pnc_bridge.secc import SeccConfig, message_name
    from pnc_bridge.secc.effects import EnergyTransferMode

    pki = _load_pki(args.pki)
    pki20 = _load_pki(args.pki20)
    if args.tcp_port is None and args.tls_port is None:
        raise _error("give --tcp-port and/or --tls-port")
    if args.tls_port is not None and pki is None:
        raise _error("--tls-port needs --pki DIR (the SECC certificate comes from the test PKI)")
    if pki20 is not None and (args.tls_port is None or pki20.variant.value == "iso2"):
        raise _error("--pki20 needs --tls-port and a -20 test PKI (pnc-bridge pki test-pki --variant iso20 DIR)")
    try:
        modes = tuple(EnergyTransferMode(_MODES[m.strip()]) for m in args.modes.split(",") if m.strip())
    except KeyError as exc:
        raise _error(f"unknown mode {exc.args[0]!r} in --modes (dc, ac3, ac1)") from None
    if not modes:
        raise _error("--modes must name at least one mode")
    config = SeccConfig(energy_transfer_modes=modes)
    log = logging.getLogger("pnc_bridge.hil")

    def on_step(adapter, step) -> None:
        if step.request is not None or step.response is not None:
            code = getattr(getattr(getattr(step.response, "body", None), "body_element", None), "response_code", None)
            code = code or getattr(step.response, "response_code", None)
            print(f"{message_name(step.request):<30} -> {message_name(step.response):<30} {getattr(code, 'value', '')}", flush=True)
        for effect in step.effects:
            print(f"    effect: {effect}", flush=True)
        if step.close:
            print(f"    session ends: {step.reason}", flush=True)

    async def main():
        secc = RigSecc(config, RigPorts(pki20 or pki), pki=pki, pki20=pki20, tcp=args.tcp_port is not None,
                       tls=args.tls_port is not None,
                       host=args.host, interface=args.iface, on_step=on_step, tcp_port=args.tcp_port or 0,
                       tls_port=args.tls_port or 0)
        await secc.__aenter__()
        sdp = None
        try:
            if args.iface:
                from pnc_bridge.link.sdp import SdpPolicy
                from pnc_bridge.link.sdp_server import SdpServer, link_local_address

                sdp = SdpServer(args.iface, SdpPolicy(link_local_address(args.iface), tls_port=secc.tls_port, tcp_port=secc.tcp_port))
                await sdp.__aenter__()
            log.warning("SECC listening: TCP %s, TLS %s%s", secc.tcp_port, secc.tls_port,
                        f", SDP on {args.iface}" if args.iface else "")
            print(f"SECC listening: TCP {secc.tcp_port}, TLS {secc.tls_port}", flush=True)
            await asyncio.sleep(args.duration if args.duration is not None else 10**9)
        finally:
            if sdp is not None:
                await sdp.__aexit__(None, None, None)
            await secc.__aexit__(None, None, None)

    try:
        asyncio.run(main())
    except OSError as exc:
        raise _error(f"cannot listen: {exc}") from None
    return 0
