"""Runs pyslac's EVSE side on an interface; executed with the pyslac venv's Python (it must not
import pnc_bridge). Prints READY once pyslac has set its key, then MATCHED <nid> <nmk> on success.

pyslac waits SLAC_SETTLE_TIME (10 s) after CM_SET_KEY.CNF, as its reference modem needs; this
runner shortens that wait (nothing else of pyslac is changed) to keep the test fast.
"""

import asyncio
import sys

import pyslac.session as session
from pyslac.enums import STATE_MATCHED
from pyslac.environment import Config

session.SLAC_SETTLE_TIME = 0.1


async def main(iface: str) -> int:
    config = Config(slac_init_timeout=20.0, slac_atten_results_timeout=None, log_level="INFO")
    evse = session.SlacEvseSession("DE*PYSLAC*E1", iface, config)
    await evse.evse_set_key()
    controller = session.SlacSessionController()
    print("READY", flush=True)
    await controller.process_cp_state(evse, "B")
    for _ in range(600):
        if evse.state == STATE_MATCHED:
            print("MATCHED", evse.nid.hex(), evse.nmk.hex(), flush=True)
            return 0
        await asyncio.sleep(0.05)
    print("NOT MATCHED", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
