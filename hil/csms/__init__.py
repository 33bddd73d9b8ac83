"""CSMS emulator for tests and HIL rigs, built on the ``ocpp`` package (not on pnc_bridge).

- ``CsmsEmulator``: WebSocket CSMS (security profiles 1-3, OCPP 2.0.1 and 2.1 on the
  ``ocpp`` package's ``v201`` / ``v21`` modules) with schema validation and a
  record of every frame, scripted responses and fault injection (``FaultPlan``,
  ``cut``, ``down``/``up``).
- ``run_scenario`` / ``load_scenario``: scripted step lists (see ``_scenario``).
- ``python -m hil.csms --help``: run it on its own.
"""

from hil.csms._emulator import STATION_ACTIONS, STATION_ACTIONS_21, VERSIONS, CsmsCallError, CsmsEmulator, FaultPlan, FrameRecord
from hil.csms._scenario import StepResult, load_scenario, run_scenario, subset_matches

__all__ = [
    "STATION_ACTIONS",
    "STATION_ACTIONS_21",
    "VERSIONS",
    "CsmsCallError",
    "CsmsEmulator",
    "FaultPlan",
    "FrameRecord",
    "StepResult",
    "load_scenario",
    "run_scenario",
    "subset_matches",
]
