"""``pnc-bridge run`` (the service) and ``pnc-bridge demo`` (a whole session on this machine)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from pnc_bridge.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the charging-station service",
        description=(
            "Run the pnc-bridge service: the OCPP 2.0.1 client towards the CSMS, the EVSE "
            "driver (the simulator when no hardware driver is configured) and the Plug & "
            "Charge bridge. Stops cleanly on SIGTERM or Ctrl-C; queued messages stay in the "
            "data directory and are sent after the next start."
        ),
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="TOML configuration (see examples/pnc-bridge.toml)")
    parser.add_argument("--check", action="store_true", help="only validate the configuration, then exit")
    parser.set_defaults(func=run)

    demo = subparsers.add_parser(
        "demo",
        help="a complete Plug & Charge session EV <-> bridge <-> CSMS on this machine, nothing to set up",
        description=(
            "Run one complete charging session on loopback, in a temporary directory: the EV emulator, "
            "this bridge (the same service as 'run', with the EVSE simulator) and a CSMS emulator built on the "
            "ocpp package, with a test PKI generated on the fly. The default is ISO 15118-2 DC Plug & Charge with "
            "contract installation through Get15118EVCertificate, a multi-period schedule from SetChargingProfile, "
            "a charge loop, MeteringReceipt and stop. Prints the timeline (EV <-> SECC and SECC <-> CSMS, key "
            "fields, elapsed ms); exit status 0 when the session ran as expected, 1 with the reasons otherwise."
        ),
    )
    demo.add_argument("--protocol", default="iso2-dc", choices=_demo_protocols(),
                      help="what the EV does (default iso2-dc: ISO 15118-2 DC Plug & Charge; iso20-dc-bpt: ISO 15118-20 "
                           "DC bidirectional Plug & Charge over TLS 1.3, the CSMS's schedule charges, discharges, charges)")
    demo.add_argument("--ocpp", choices=("2.0.1", "2.1"),
                      help="the CSMS emulator's OCPP version (default: 2.1 for iso20-dc-bpt, 2.0.1 for the others)")
    demo.add_argument("--json", action="store_true", help="print the timeline and the outcome as JSON (for rigs)")
    demo.add_argument("--loops", type=int, help="charge-loop messages before the EV stops (default 20; 60 for iso20-dc-bpt)")
    demo.add_argument("--interval", type=float, default=0.1, help="seconds between charge-loop messages (default 0.1)")
    demo.add_argument("--keep", metavar="DIR", help="work in DIR (test PKI, trust store, OCPP database) and keep it")
    demo.set_defaults(func=_demo)


def _demo_protocols() -> list[str]:
    from hil.demo import PROTOCOLS

    return list(PROTOCOLS)


def _demo(args: argparse.Namespace) -> int:
    if args.protocol.startswith("iso20") and args.loops is not None and args.loops * args.interval < 3.0:
        raise CliError(f"--protocol {args.protocol} charges, discharges and charges again: it needs at least 3 s of "
                       f"charge loop (--loops x --interval; {args.loops} x {args.interval:g} s given)")
    if (args.loops is not None and args.loops < 1) or args.interval < 0:
        raise CliError("--loops must be at least 1 and --interval not negative")
    if args.keep:
        from pathlib import Path

        keep = Path(args.keep)
        if keep.exists() and any(keep.iterdir()):
            raise CliError(f"--keep {keep}: the directory must be new or empty")
        keep.mkdir(parents=True, exist_ok=True)
    from hil.demo import main

    return main(args)


def run(args: argparse.Namespace) -> int:
    from pnc_bridge.config import ConfigError, load_config

    try:
        config = load_config(args.config)
        from pnc_bridge.bridge._service import station_config

        station = station_config(config)
        if args.check:
            from pnc_bridge.bridge._service import driver_factory

            driver_factory(config)  # the driver's module imports and names a callable
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.check:
        print(f"{args.config}: OK")
        print(f"  station {station.identity}: {len(station.settings.evses)} EVSE(s), "
              f"CSMS {station.network.url} (security profile {station.network.security_profile})")
        print(f"  data in {config.paths.data_dir}, trust store {config.paths.trust_store}, driver {config.driver.kind}"
              + (f" ({config.driver.factory})" if config.driver.factory else ""))
        for evse in config.evse:
            v2g = evse.v2g
            if v2g is None:
                print(f"  EVSE {evse.id}: no ISO 15118 / DIN 70121 (no [evse.v2g])")
                continue
            where = f"interface {v2g.interface}" + (" with SLAC" if v2g.slac else "") if v2g.interface else f"host {v2g.host}"
            ports = ", ".join(f"{name} {'any' if port == 0 else port}" for name, port in (("TCP", v2g.tcp_port), ("TLS", v2g.tls_port))
                              if port is not None)
            bidirectional = (f"; discharges up to {evse.max_discharge_power_w:g} W (ISO 15118-20 BPT)"
                             if evse.max_discharge_power_w > 0 else "; charge only")
            print(f"  EVSE {evse.id}: SECC on {where} ({ports}); {', '.join(v2g.protocols)}; "
                  f"{', '.join(v2g.payment_options)}{bidirectional}")
        return 0
    if args.verbose == 0:
        # The service reports its progress (connection, registration, sessions) by default.
        logging.getLogger("pnc_bridge").setLevel(logging.INFO)
    try:
        return asyncio.run(_run(config))
    except ConfigError as exc:
        raise CliError(str(exc)) from None


async def _run(config):  # type: ignore[no-untyped-def]
    from pnc_bridge.bridge._service import run_service

    return await run_service(config)
