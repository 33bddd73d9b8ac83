"""pnc-bridge link ...: tools for rig builders (SLAC, SDP, V2GTP over TCP/TLS)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

__all__ = ["register"]


def register(subparsers) -> None:
    link = subparsers.add_parser("link", help="the link to the EV: SLAC, SDP, V2GTP servers", description=__doc__)
    sub = link.add_subparsers(dest="link_command", metavar="LINK_COMMAND")
    link.set_defaults(func=lambda args: (link.print_help(), 2)[1])

    p = sub.add_parser("slac-listen", help="watch SLAC messages on an interface (passive, needs root)",
                       description="Print every SLAC management message seen on IFACE, and each completed association.")
    p.add_argument("iface")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--count", type=int, default=None, help="stop after this many SLAC messages")
    p.set_defaults(func=_slac_listen)

    p = sub.add_parser("slac-evse", help="run the EVSE side of SLAC on an interface until an EV matches (needs root)",
                       description="Acts as if the EVSE driver reported CP state B with 5 %% PWM, answers SLAC and reports the match.")
    p.add_argument("iface")
    p.add_argument("--evse-id", default="", help="EVSE ID sent in CM_SLAC_MATCH.CNF (up to 17 characters)")
    p.add_argument("--no-set-key", action="store_true", help="do not send CM_SET_KEY.REQ to the local modem (no modem present)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (default 60)")
    p.set_defaults(func=_slac_evse)

    p = sub.add_parser("sdp-probe", help="discover a SECC on an interface with SDP (as an EV does)",
                       description="Send SDP requests to [ff02::1%%IFACE]:15118 and print the SECC's answer.")
    p.add_argument("iface")
    p.add_argument("--no-tls", action="store_true", help="ask for a connection without TLS (default: ask for TLS)")
    p.add_argument("--tries", type=int, default=None, help="number of requests before giving up (default 50, 250 ms apart)")
    p.set_defaults(func=_sdp_probe)

    p = sub.add_parser("serve", help="run SDP plus the V2GTP TCP/TLS servers on an interface and log what EVs send",
                       description="A link-level SECC for rigs: answers SDP, accepts TCP and/or TLS, logs every V2GTP frame "
                                   "(with --echo, sends each frame back).")
    p.add_argument("iface")
    p.add_argument("--tcp-port", type=int, default=None, help="offer plain TCP on this port")
    p.add_argument("--tls-port", type=int, default=None, help="offer TLS on this port (needs --cert and --key)")
    p.add_argument("--cert", help="PEM file: SECC leaf then sub-CAs")
    p.add_argument("--key", help="PEM file: SECC private key")
    p.add_argument("--ocsp", help="DER OCSP response to staple when the EV asks (status_request)")
    p.add_argument("--profile", choices=("iso2", "iso20", "both"), default="iso2", help="TLS profile(s) (default iso2)")
    p.add_argument("--ev-roots", help="PEM file of V2G/OEM roots the EV certificate must chain to (iso20)")
    p.add_argument("--keylog", help="append TLS secrets to this file (NSS key log format, for Wireshark)")
    p.add_argument("--echo", action="store_true", help="send every received frame back")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_serve)


def _error(msg: str):
    from pnc_bridge.cli import CliError

    return CliError(msg)


def _ts() -> str:
    return dt.datetime.now().strftime("%H:%M:%S.%f")[:-3]


def _describe(msg) -> str:
    from pnc_bridge.link.slac import frames as f

    if isinstance(msg, f.CM_SLAC_PARM_REQ):
        return f"RunID={msg.run_id.hex()}"
    if isinstance(msg, f.CM_SLAC_PARM_CNF):
        return f"RunID={msg.run_id.hex()} sounds={msg.num_sounds} timeout={msg.time_out * 100}ms"
    if isinstance(msg, f.CM_START_ATTEN_CHAR_IND):
        return f"RunID={msg.run_id.hex()} sounds={msg.num_sounds}"
    if isinstance(msg, f.CM_MNBC_SOUND_IND):
        return f"countdown={msg.countdown}"
    if isinstance(msg, (f.CM_ATTEN_PROFILE_IND, f.CM_ATTEN_CHAR_IND)):
        avg = sum(msg.aag) / len(msg.aag) if msg.aag else float("nan")
        return f"groups={len(msg.aag)} average={avg:.1f}dB"
    if isinstance(msg, f.CM_ATTEN_CHAR_RSP):
        return f"result={msg.result}"
    if isinstance(msg, (f.CM_VALIDATE_REQ, f.CM_VALIDATE_CNF)):
        return f"result={msg.result}"
    if isinstance(msg, f.CM_SLAC_MATCH_REQ):
        return f"EV={f.mac_str(msg.pev_mac)} RunID={msg.run_id.hex()}"
    if isinstance(msg, f.CM_SLAC_MATCH_CNF):
        return f"EV={f.mac_str(msg.pev_mac)} EVSE={f.mac_str(msg.evse_mac)} NID={msg.nid.hex()}"
    if isinstance(msg, f.CM_SET_KEY_REQ):
        return f"NID={msg.nid.hex()}"
    if isinstance(msg, f.CM_SET_KEY_CNF):
        return f"result={msg.result}"
    return ""


def _open_raw(iface: str):
    from pnc_bridge.link.slac.adapter import RawSocket

    try:
        # ETH_P_ALL: only such sockets also see frames this host sends (the EVSE's answers).
        return RawSocket(iface, 0x0003, include_outgoing=True)
    except PermissionError:
        raise _error("raw sockets need root (CAP_NET_RAW)") from None
    except OSError as exc:
        raise _error(f"cannot open {iface}: {exc.strerror or exc}") from None


def _slac_listen(args) -> int:
    from pnc_bridge.link.slac import frames as f

    async def run() -> int:
        sock = _open_raw(args.iface)
        done = asyncio.Event()
        seen = [0]

        def on_frame(frame: bytes) -> None:
            if frame[12:14] != b"\x88\xe1" and frame[16:18] != b"\x88\xe1":
                return  # not HomePlug: IPv6, ARP ... on the same interface
            d = f.decode(frame)
            if isinstance(d, f.Ignored):
                print(f"{_ts()} ignored: {d.reason}", flush=True)
                return
            name = type(d.message).__name__
            print(f"{_ts()} {f.mac_str(d.src)} -> {f.mac_str(d.dst)} {name:<24} {_describe(d.message)}", flush=True)
            if isinstance(d.message, f.CM_SLAC_MATCH_CNF):
                print(f"{_ts()} association complete: EV {f.mac_str(d.message.pev_mac)} <-> EVSE "
                      f"{f.mac_str(d.message.evse_mac)}, NID {d.message.nid.hex()}", flush=True)
            seen[0] += 1
            if args.count is not None and seen[0] >= args.count:
                done.set()

        sock.start(on_frame)
        print(f"listening for SLAC on {args.iface} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            sock.close()
        return 0

    return asyncio.run(run())


def _slac_evse(args) -> int:
    from pnc_bridge.link.slac import CpState, Matched, MatchingFailed, ModemNotResponding, SlacInitTimeout
    from pnc_bridge.link.slac import frames as f
    from pnc_bridge.link.slac.adapter import SlacService

    async def run() -> int:
        result: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_event(ev) -> None:
            if isinstance(ev, Matched):
                print(f"{_ts()} MATCHED EV {f.mac_str(ev.ev_mac)} NID {ev.nid.hex()} RunID {ev.run_id.hex()}", flush=True)
                if not result.done():
                    result.set_result(0)
            elif isinstance(ev, MatchingFailed):
                print(f"{_ts()} matching with {f.mac_str(ev.ev_mac)} failed: {ev.reason}{' (final)' if ev.final else ''}", flush=True)
                if ev.final and not result.done():
                    result.set_result(1)
            elif isinstance(ev, (ModemNotResponding, SlacInitTimeout)):
                print(f"{_ts()} {type(ev).__name__}: {getattr(ev, 'reason', 'no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init')}", flush=True)
                if not result.done():
                    result.set_result(1)
            elif not type(ev).__name__ == "FrameIgnored":
                print(f"{_ts()} {ev}", flush=True)

        try:
            service = SlacService(args.iface, on_event, evse_id=args.evse_id.encode()[:17], set_key=not args.no_set_key)
        except OSError as exc:
            raise _error(f"cannot use {args.iface}: {exc.strerror or exc}") from None
        try:
            await service.start()
        except PermissionError:
            raise _error("raw sockets need root (CAP_NET_RAW)") from None
        print(f"SLAC EVSE on {args.iface}, waiting for an EV (CP state B)", file=sys.stderr, flush=True)
        service.cp_state(CpState.B)
        try:
            return await asyncio.wait_for(result, args.timeout)
        except asyncio.TimeoutError:
            print("no match within the timeout", file=sys.stderr)
            return 1
        finally:
            await service.close()

    return asyncio.run(run())


def _sdp_probe(args) -> int:
    from hil.ev_sdp import discover_secc
    from pnc_bridge import timing
    from pnc_bridge.link.sdp import Security

    security = Security.NO_TLS if args.no_tls else Security.TLS
    tries = timing.SDP_CLIENT_MAX_REQUESTS if args.tries is None else args.tries
    if tries < 1:
        raise _error("--tries must be at least 1")

    async def run() -> int:
        try:
            response = await discover_secc(
                args.iface, security, max_requests=tries,
                on_ignored=lambda reason: print(f"ignored answer: {reason}", file=sys.stderr),
            )
        except OSError as exc:
            raise _error(f"cannot send SDP on {args.iface}: {exc.strerror or exc}") from None
        if response is None:
            print(f"no SECC answered {tries} SDP requests on {args.iface}", file=sys.stderr)
            return 1
        print(f"SECC [{response.secc_ip_address}%{args.iface}]:{response.secc_port} "
              f"security={response.security.name} transport={response.transport_protocol.name}")
        return 0

    return asyncio.run(run())


def _serve(args) -> int:
    from pnc_bridge.link.sdp import SdpPolicy
    from pnc_bridge.link.sdp_server import SdpServer, link_local_address
    from pnc_bridge.link.server import V2gtpServer
    from pnc_bridge.link.tls import FileCredentialProvider, KeyLog, TlsProfile, TlsServerConfig

    if args.tcp_port is None and args.tls_port is None:
        raise _error("give --tcp-port, --tls-port or both")
    tls_config = None
    if args.tls_port is not None:
        if not args.cert or not args.key:
            raise _error("--tls-port needs --cert and --key")
        try:
            provider = FileCredentialProvider(args.cert, args.key, ocsp_path=args.ocsp)
        except (OSError, ValueError) as exc:
            raise _error(f"SECC certificate: {exc}") from None
        profiles = {"iso2": (TlsProfile.ISO15118_2,), "iso20": (TlsProfile.ISO15118_20,),
                    "both": (TlsProfile.ISO15118_2, TlsProfile.ISO15118_20)}[args.profile]
        anchors = None
        if TlsProfile.ISO15118_20 in profiles:
            if not args.ev_roots:
                raise _error("--profile iso20/both needs --ev-roots")
            from cryptography import x509

            try:
                with open(args.ev_roots, "rb") as fh:
                    roots = x509.load_pem_x509_certificates(fh.read())
            except (OSError, ValueError) as exc:
                raise _error(f"--ev-roots: {exc}") from None
            anchors = lambda: roots  # noqa: E731
        try:
            key_log = KeyLog(args.keylog) if args.keylog else None
        except OSError as exc:
            raise _error(f"--keylog: {exc.strerror or exc}") from None
        tls_config = TlsServerConfig(provider, profiles=profiles, ev_trust_anchors=anchors, key_log=key_log)
    try:
        address = link_local_address(args.iface)
    except (LookupError, OSError) as exc:
        raise _error(str(exc)) from None

    async def handler(conn) -> None:
        how = f"{conn.tls.version} {conn.tls.cipher}" if conn.tls else "TCP"
        print(f"{_ts()} EV {conn.peer} connected ({how})", flush=True)
        async for frame in conn:
            print(f"{_ts()} EV {conn.peer} frame type 0x{frame.payload_type:04x}, {len(frame.payload)} octets: "
                  f"{frame.payload[:32].hex()}{'...' if len(frame.payload) > 32 else ''}", flush=True)
            if args.echo:
                await conn.send(frame.payload_type, frame.payload)
        print(f"{_ts()} EV {conn.peer} gone: {conn.close_reason}", flush=True)

    async def run() -> int:
        servers = []
        try:
            tcp = tls = None
            if args.tcp_port is not None:
                tcp = V2gtpServer(handler, port=args.tcp_port, interface=args.iface)
                await tcp.start()
                servers.append(tcp)
            if tls_config is not None:
                tls = V2gtpServer(handler, tls=tls_config, port=args.tls_port, interface=args.iface)
                await tls.start()
                servers.append(tls)
            policy = SdpPolicy(address, tls_port=tls.port if tls else None, tcp_port=tcp.port if tcp else None)
            sdp = SdpServer(args.iface, policy)
            await sdp.start()
            servers.append(sdp)
        except OSError as exc:
            for s in servers:
                await s.close()
            raise _error(f"cannot listen on {args.iface}: {exc.strerror or exc}") from None
        print(f"SECC link on {args.iface}: {address}, TCP {policy.tcp_port or '-'}, TLS {policy.tls_port or '-'}", flush=True)
        try:
            if args.duration is not None:
                await asyncio.sleep(args.duration)
            else:
                await asyncio.Event().wait()
        finally:
            for s in reversed(servers):
                await s.close()
        return 0

    return asyncio.run(run())
