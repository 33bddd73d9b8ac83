"""Stand-in for a HomePlug Green PHY modem's host interface on a segment without one.

Answers CM_SET_KEY.REQ with CM_SET_KEY.CNF (result success), as the local modem of an EVSE or
EV does, so SLAC stacks that wait for the confirmation (ours, pyslac) run on a veth pair.
It only answers frames addressed to the local-modem MAC 00:b0:52:00:00:01.

Run: ``python3 -m hil.plc_modem IFACE``
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from pnc_bridge.link.slac import frames as f

_log = logging.getLogger("hil.plc_modem")


def answer(frame: bytes) -> bytes | None:
    d = f.decode(frame)
    if isinstance(d, f.Received) and isinstance(d.message, f.CM_SET_KEY_REQ) and d.dst == f.LOCAL_MODEM_MAC:
        req = d.message
        cnf = f.CM_SET_KEY_CNF(result=0, my_nonce=req.my_nonce, your_nonce=req.your_nonce, pid=req.pid, prn=req.prn, pmn=req.pmn)
        _log.info("CM_SET_KEY.REQ from %s (NID %s): confirmed", f.mac_str(d.src), req.nid.hex())
        return f.encode(f.LOCAL_MODEM_MAC, d.src, cnf)
    return None


async def serve(iface: str) -> None:
    from pnc_bridge.link.slac.adapter import RawSocket

    sock = RawSocket(iface)

    def on_frame(frame: bytes) -> None:
        reply = answer(frame)
        if reply is not None:
            sock.send(reply)

    sock.start(on_frame)
    print(f"plc_modem: answering CM_SET_KEY.REQ on {iface}", flush=True)  # rigs wait for this line
    try:
        await asyncio.Event().wait()
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m hil.plc_modem", description=__doc__.splitlines()[0])
    parser.add_argument("iface")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.iface))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
