"""Scripted CSMS scenarios: a list of steps run against one connected station.

A scenario file (TOML or JSON) has an optional ``[csms]`` table (port, path, boot
response, responses) and a list of ``[[step]]`` tables, each with one verb:

- ``wait = "<Action>"``: wait for a CALL of that action from the station and for the
  CSMS's answer to it (``match`` = subset of its payload, ``timeout`` seconds, default 30);
- ``call = "<Action>"`` with ``payload``: send a CALL; ``expect`` is a subset the
  CALLRESULT must contain, or ``expect_error = "<ErrorCode>"``;
- ``raw = "<text>"``: send a frame as it is (bad-input tests);
- ``sleep = <seconds>``; ``cut = true`` (drop the TCP connection);
  ``down = <seconds>`` (the CSMS is away that long, then listens again);
- ``wait_connected = <seconds>``: wait for the station to (re)connect.

The optional ``[csms]`` key ``ocpp`` lists the OCPP versions to accept, most preferred
first (``["2.1", "2.0.1"]``). A string value ``"$<Action>.<path>"`` anywhere in a
``payload`` is replaced by that field of the last CALL of ``<Action>`` the station sent
(``"$TransactionEvent.transactionInfo.transactionId"``), so a scenario can address the
transaction the station started. ``scenarios/`` has ready-made files (V2X on 2.1 and 2.0.1).

Each step yields a ``StepResult``; a failed expectation does not stop the run unless
``stop_on_failure``.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from hil.csms._emulator import CsmsCallError, CsmsEmulator

__all__ = ["StepResult", "load_scenario", "resolve_references", "run_scenario", "subset_matches"]


@dataclass
class StepResult:
    index: int
    verb: str
    ok: bool
    detail: str = ""
    data: Any = None


def load_scenario(path: Path | str) -> dict[str, Any]:
    """Parse a scenario file; raises ValueError with the reason for a bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    steps = data.get("step", data.get("steps", []))
    if not isinstance(steps, list):
        raise ValueError(f"{path}: 'step' must be a list of tables")
    verbs = ("wait", "call", "raw", "sleep", "cut", "down", "wait_connected")
    for index, step in enumerate(steps):
        found = [v for v in verbs if v in step]
        if len(found) != 1:
            raise ValueError(f"{path}: step {index + 1} needs exactly one of {', '.join(verbs)}")
    data["step"] = steps
    return data


def subset_matches(expected: Any, actual: Any) -> bool:
    """Dicts: every expected key matches; lists: element-wise for the expected prefix."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset_matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) >= len(expected) and all(
            subset_matches(e, a) for e, a in zip(expected, actual)
        )
    return expected == actual


def resolve_references(value: Any, emulator: CsmsEmulator, station_id: str) -> Any:
    """Replace ``"$<Action>.<path>"`` strings by fields of the station's last CALL of that action."""
    if isinstance(value, dict):
        return {k: resolve_references(v, emulator, station_id) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, emulator, station_id) for v in value]
    if isinstance(value, str) and value.startswith("$") and "." in value:
        action, _, path = value[1:].partition(".")
        calls = emulator.received(action, station=station_id)
        if not calls:
            raise KeyError(f"{value}: the station sent no {action} yet")
        item: Any = calls[-1].payload
        for part in path.split("."):
            item = item[int(part)] if isinstance(item, list) else item[part]
        return item
    return value


async def run_scenario(
    emulator: CsmsEmulator, steps: list[dict[str, Any]], station_id: str, *, stop_on_failure: bool = False
) -> list[StepResult]:
    results: list[StepResult] = []
    consumed: dict[str, int] = {}  # action -> received CALLs already matched by earlier waits
    for index, step in enumerate(steps, 1):
        result: StepResult
        try:
            if "wait" in step:
                action, match = step["wait"], step.get("match", {})
                start = consumed.get(action, 0)

                def find(e: CsmsEmulator, action: str = action, start: int = start, match: Any = match) -> Any:
                    calls = e.received(action, station=station_id)
                    for position in range(start, len(calls)):
                        if subset_matches(match, calls[position].payload):
                            return position + 1, calls[position]
                    return None

                timeout = float(step.get("timeout", 30))
                position, frame = await emulator.wait_for(find, timeout)
                consumed[action] = position
                # Continue once the CSMS has answered it, so later steps see its effect.
                await emulator.wait_for(
                    lambda e, mid=frame.message_id: any(
                        r.direction == "out" and r.message_type in (3, 4) and r.message_id == mid for r in e.record
                    ),
                    timeout,
                )
                result = StepResult(index, "wait", True, f"{action} received", frame.payload)
            elif "call" in step:
                try:
                    answer = await emulator.call_json(
                        station_id, step["call"], resolve_references(step.get("payload", {}), emulator, station_id),
                        timeout=step.get("timeout"),
                        validate=step.get("validate", True),
                    )
                except CsmsCallError as exc:
                    ok = step.get("expect_error") == exc.code
                    result = StepResult(index, "call", ok, f"{step['call']}: CALLERROR {exc.code} {exc.description}")
                else:
                    ok = "expect_error" not in step and subset_matches(step.get("expect", {}), answer)
                    result = StepResult(index, "call", ok, f"{step['call']}: {json.dumps(answer)[:200]}", answer)
            elif "raw" in step:
                await emulator.send_raw(station_id, step["raw"])
                await asyncio.sleep(float(step.get("settle", 0.5)))
                result = StepResult(index, "raw", True, "sent")
            elif "sleep" in step:
                await asyncio.sleep(float(step["sleep"]))
                result = StepResult(index, "sleep", True)
            elif "cut" in step:
                await emulator.cut(station_id)
                result = StepResult(index, "cut", True)
            elif "down" in step:
                await emulator.down()
                await asyncio.sleep(float(step["down"]))
                await emulator.up()
                result = StepResult(index, "down", True, f"down for {step['down']} s")
            else:
                await emulator.wait_connected(station_id, float(step["wait_connected"]))
                result = StepResult(index, "wait_connected", True)
        except (TimeoutError, KeyError, CsmsCallError, ConnectionClosed, OSError) as exc:
            result = StepResult(index, next(iter(step)), False, f"failed: {exc!r}")
        results.append(result)
        if stop_on_failure and not result.ok:
            break
    return results
