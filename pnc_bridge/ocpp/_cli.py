"""``pnc-bridge ocpp ...``: regenerate the models; inspect a station's outbox."""

from __future__ import annotations

import argparse
import json

from pnc_bridge.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ocpp", help="OCPP tools (model generator, outbox inspection)",
                                   description="OCPP 2.0.1 / 2.1 tools.")
    sub = parser.add_subparsers(dest="ocpp_command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="regenerate pnc_bridge/ocpp/_generated from the ocpp package's schemas",
                         description="Regenerate the typed OCPP models from the official JSON schemas bundled in "
                                     "the pinned ocpp package. --check only compares and exits 1 on drift.")
    gen.add_argument("--check", action="store_true", help="compare only; exit status 1 if the committed models differ")
    gen.add_argument("versions", nargs="*", metavar="VERSION", help="v201 and/or v21 (default: both)")
    gen.set_defaults(func=_generate)

    outbox = sub.add_parser("outbox", help="show the messages waiting in a station's outbox",
                            description="Show what is queued for the CSMS (and what was discarded after "
                                        "MessageAttempts) in the data directory of a configuration.")
    outbox.add_argument("--config", required=True, metavar="FILE", help="the service's TOML configuration")
    outbox.add_argument("--json", action="store_true", help="print JSON lines instead of a summary")
    outbox.set_defaults(func=_outbox)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _generate(args: argparse.Namespace) -> int:
    from pnc_bridge.ocpp import _codegen

    argv = (["--check"] if args.check else []) + list(args.versions)
    try:
        return _codegen.main(argv)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    except SystemExit as exc:  # argparse error inside the generator
        return int(exc.code or 0)


def _outbox(args: argparse.Namespace) -> int:
    from pnc_bridge.config import ConfigError, load_config
    from pnc_bridge.ocpp import Outbox, Store, StoreError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    path = config.paths.data_dir / "ocpp.sqlite"
    if not path.exists():
        raise CliError(f"no state database at {path} (has the service run with this configuration?)")
    try:
        store = Store(path)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    try:
        outbox = Outbox(store)
        queued = outbox.queued()
        dead = outbox.dead_letters()
        if args.json:
            for entry in queued:
                print(json.dumps({"queued": True, "id": entry.id, "action": entry.action, "attempts": entry.attempts,
                                  "offline": entry.offline, "payload": entry.payload}))
            for item in dead:
                print(json.dumps({"queued": False, **item}))
            return 0
        counts = outbox.pending_by_action()
        print(f"{path}: {len(queued)} queued" + (f" ({', '.join(f'{n} {a}' for a, n in sorted(counts.items()))})" if counts else ""))
        print(f"{len(dead)} discarded after MessageAttempts (kept in the dead_letter table)")
        for item in dead[-10:]:
            print(f"  #{item['id']} {item['action']} after {item['attempts']} attempts: {item['last_error']}")
        return 0
    finally:
        store.close()
