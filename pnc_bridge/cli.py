"""The ``pnc-bridge`` command.

Each area registers its own sub-commands from a private ``_cli`` module with one
function, ``register(subparsers)``, that adds its parsers and sets ``func`` on them.
``func(args) -> int`` is the exit status. This keeps the command table in one place
(``COMMAND_MODULES``) while each area owns its own options.

Errors that come from the user's input (a bad file, a bad hex string, an unknown
schema) are raised as ``CliError`` and printed as one line on stderr with exit
status 2; nothing the user types produces a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from pnc_bridge import __version__

#: Modules that contribute sub-commands, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "pnc_bridge.bridge._cli",  # run, demo
    "pnc_bridge.exi._cli",  # exi ...
    "pnc_bridge.pki._cli",  # pki ...
    "pnc_bridge.link._cli",  # link ...
    "pnc_bridge.ocpp._cli",  # ocpp ...
    "hil._cli",  # hil ...
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2 (or ``status``)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pnc-bridge",
        description="ISO 15118 Plug & Charge SECC bridged to OCPP.",
    )
    parser.add_argument("--version", action="version", version=f"pnc-bridge {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # An area that is not part of this build yet; only its own absence is tolerated.
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except CliError as exc:
        print(f"pnc-bridge: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
