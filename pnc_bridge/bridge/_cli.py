"""``pnc-bridge run``: the service (``demo`` comes with the SECC work)."""

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


def run(args: argparse.Namespace) -> int:
    from pnc_bridge.config import ConfigError, load_config

    try:
        config = load_config(args.config)
        from pnc_bridge.bridge._service import station_config

        station = station_config(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.check:
        print(f"{args.config}: OK")
        print(f"  station {station.identity}: {len(station.settings.evses)} EVSE(s), "
              f"CSMS {station.network.url} (security profile {station.network.security_profile})")
        print(f"  data in {config.paths.data_dir}, trust store {config.paths.trust_store}, driver {config.driver.kind}")
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
