"""``python -m hil.csms``: run the CSMS emulator, optionally with a scenario."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

from hil.csms._emulator import CsmsEmulator, FaultPlan
from hil.csms._scenario import load_scenario, run_scenario


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hil.csms", description="OCPP 2.0.1 CSMS emulator (built on the ocpp package)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="listen port (default 9000)")
    p.add_argument("--path", default="/ocpp", help="endpoint path; stations connect to <path>/<identity>")
    p.add_argument("--password", action="append", default=[], metavar="ID=PASSWORD",
                   help="require HTTP Basic auth for station ID (repeatable)")
    p.add_argument("--cert", help="server certificate chain (PEM); enables wss://")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (security profile 3)")
    p.add_argument("--drop", type=float, default=0.0, help="probability to drop each frame, both directions")
    p.add_argument("--delay", type=float, default=0.0, help="max random delay per frame in seconds, both directions")
    p.add_argument("--seed", type=int, default=1, help="fault RNG seed")
    p.add_argument("--ocpp", action="append", choices=("2.1", "2.0.1"), default=None, metavar="VERSION",
                   help="OCPP version to accept, most preferred first; repeat for several "
                        "(default: 2.1, then 2.0.1; a scenario's [csms] ocpp list wins)")
    p.add_argument("--scenario", help="scenario file (TOML or JSON) to run against --station")
    p.add_argument("--station", help="station identity the scenario talks to")
    p.add_argument("--record", help="write every frame as JSON lines to this file at exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def _main(args: argparse.Namespace) -> int:
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
    auth = None
    if args.password:
        auth = {}
        for item in args.password:
            identity, sep, password = item.partition("=")
            if not sep:
                print(f"--password needs ID=PASSWORD, got {item!r}", file=sys.stderr)
                return 2
            auth[identity] = password
    faults = None
    if args.drop or args.delay:
        faults = FaultPlan(args.drop, args.drop, (0.0, args.delay), (0.0, args.delay), seed=args.seed)
    scenario = None
    boot = None
    if args.scenario:
        if not args.station:
            print("--scenario needs --station", file=sys.stderr)
            return 2
        try:
            scenario = load_scenario(args.scenario)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        boot = scenario.get("csms", {}).get("boot")
    versions = args.ocpp or ["2.1", "2.0.1"]
    if scenario is not None and scenario.get("csms", {}).get("ocpp"):
        versions = [str(v) for v in scenario["csms"]["ocpp"]]
    unknown = [v for v in versions if v not in ("2.1", "2.0.1")]
    if unknown:
        print(f"error: unknown OCPP version(s) {', '.join(unknown)}; use 2.1 or 2.0.1", file=sys.stderr)
        return 2
    emulator = CsmsEmulator(host=args.host, port=args.port, path=args.path, ssl_context=context, basic_auth=auth,
                            faults=faults, boot=boot, subprotocols=[f"ocpp{v}" for v in versions])
    await emulator.start()
    print(f"listening on {emulator.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if scenario is None:
            await stop.wait()
            return 0
        print(f"waiting for {args.station} ...", flush=True)
        await emulator.wait_connected(args.station, timeout=3600)
        results = await run_scenario(emulator, scenario["step"], args.station)
        for result in results:
            print(f"{'ok  ' if result.ok else 'FAIL'} {result.index:3d} {result.verb:14s} {result.detail}", flush=True)
        invalid = emulator.invalid_frames()
        for frame in invalid:
            print(f"INVALID frame from {frame.station}: {frame.error}", flush=True)
        return 0 if all(r.ok for r in results) and not invalid else 1
    finally:
        if args.record:
            emulator.dump_record(args.record)
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
