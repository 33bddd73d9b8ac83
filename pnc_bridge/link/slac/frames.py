"""SLAC management messages (HomePlug Green PHY MMEs) as typed values, over scapy's layers.

Rules of this module:

- ``decode(frame)`` turns one Ethernet frame into ``Received(src, dst, message)`` or an
  ``Ignored(reason)`` value; it never raises on bytes from the wire. Lengths are checked
  here (scapy would silently fill a short frame with defaults).
- ``encode(src, dst, message)`` builds the Ethernet frame with scapy's HomePlug AV/GP
  layers (``scapy.contrib.homeplugav`` / ``homepluggp``), padded to the Ethernet minimum.
- Message classes are named as in ISO 15118-3 (``CM_SLAC_PARM_REQ`` ...), with field names
  in snake case. CM_VALIDATE is not in scapy; its two layers are defined here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Union

from scapy.contrib.homeplugav import HomePlugAV
from scapy.contrib import homepluggp as gp
from scapy.fields import ByteField
from scapy.layers.l2 import Ether
from scapy.packet import Packet, bind_layers

__all__ = [
    "ETH_P_HOMEPLUG",
    "BROADCAST",
    "LOCAL_MODEM_MAC",
    "MMType",
    "SLAC_GROUPS",
    "CM_SLAC_PARM_REQ",
    "CM_SLAC_PARM_CNF",
    "CM_START_ATTEN_CHAR_IND",
    "CM_MNBC_SOUND_IND",
    "CM_ATTEN_PROFILE_IND",
    "CM_ATTEN_CHAR_IND",
    "CM_ATTEN_CHAR_RSP",
    "CM_VALIDATE_REQ",
    "CM_VALIDATE_CNF",
    "CM_SLAC_MATCH_REQ",
    "CM_SLAC_MATCH_CNF",
    "CM_SET_KEY_REQ",
    "CM_SET_KEY_CNF",
    "Received",
    "Ignored",
    "decode",
    "encode",
    "nid_from_nmk",
    "mac_str",
    "mac_bytes",
]

#: Ethertype of HomePlug AV / Green PHY management messages.
ETH_P_HOMEPLUG = 0x88E1
BROADCAST = b"\xff" * 6
#: Destination a host uses for its own (local) HomePlug modem.
LOCAL_MODEM_MAC = bytes.fromhex("00b052000001")
#: Number of carrier groups in an attenuation profile (ISO 15118-3).
SLAC_GROUPS = 58
_MMV_HPGP = 0x01
_ETH_MIN = 60


class MMType:
    """MMTYPE values: base + 0 REQ, + 1 CNF, + 2 IND, + 3 RSP."""

    CM_SET_KEY_REQ = 0x6008
    CM_SET_KEY_CNF = 0x6009
    CM_SLAC_PARM_REQ = 0x6064
    CM_SLAC_PARM_CNF = 0x6065
    CM_START_ATTEN_CHAR_IND = 0x606A
    CM_ATTEN_CHAR_IND = 0x606E
    CM_ATTEN_CHAR_RSP = 0x606F
    CM_MNBC_SOUND_IND = 0x6076
    CM_VALIDATE_REQ = 0x6078
    CM_VALIDATE_CNF = 0x6079
    CM_SLAC_MATCH_REQ = 0x607C
    CM_SLAC_MATCH_CNF = 0x607D
    CM_ATTEN_PROFILE_IND = 0x6086


class _CM_VALIDATE_REQ(Packet):
    name = "CM_VALIDATE_REQ"
    fields_desc = [ByteField("SignalType", 0), ByteField("Timer", 0), ByteField("Result", 0)]


class _CM_VALIDATE_CNF(Packet):
    name = "CM_VALIDATE_CNF"
    fields_desc = [ByteField("SignalType", 0), ByteField("ToggleNum", 0), ByteField("Result", 0)]


bind_layers(HomePlugAV, _CM_VALIDATE_REQ, HPtype=MMType.CM_VALIDATE_REQ)
bind_layers(HomePlugAV, _CM_VALIDATE_CNF, HPtype=MMType.CM_VALIDATE_CNF)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"MAC address must be 6 octets, got {len(mac)}")
        return mac
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """NID (7 octets) derived from the NMK as HomePlug AV does it.

    SHA-256 applied five times (first to the NMK, then to each digest), the first 7 octets
    kept, the last of them shifted right by 4 and the security level put in its bits 4-5.
    """
    if len(nmk) != 16:
        raise ValueError("NMK must be 16 octets")
    digest = nmk
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    nid = bytearray(digest[:7])
    nid[6] = (nid[6] >> 4) | ((security_level & 0x3) << 4)
    return bytes(nid)


# --------------------------------------------------------------------------- #
# Messages                                                                     #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class CM_SLAC_PARM_REQ:
    run_id: bytes
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_SLAC_PARM_CNF:
    run_id: bytes
    forwarding_sta: bytes  # the EV host's MAC
    num_sounds: int
    time_out: int  # units of 100 ms
    resp_type: int = 1
    msound_target: bytes = BROADCAST
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_START_ATTEN_CHAR_IND:
    run_id: bytes
    num_sounds: int
    time_out: int
    forwarding_sta: bytes
    resp_type: int = 1
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_MNBC_SOUND_IND:
    run_id: bytes
    countdown: int
    sender_id: bytes = b"\x00" * 17
    random_value: bytes = b"\x00" * 16
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_ATTEN_PROFILE_IND:
    pev_mac: bytes
    aag: tuple[int, ...]  # average attenuation per group, dB


@dataclass(frozen=True)
class CM_ATTEN_CHAR_IND:
    source_address: bytes  # the EV host's MAC
    run_id: bytes
    num_sounds: int
    aag: tuple[int, ...]
    source_id: bytes = b"\x00" * 17
    resp_id: bytes = b"\x00" * 17
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_ATTEN_CHAR_RSP:
    source_address: bytes
    run_id: bytes
    result: int = 0  # 0: success
    source_id: bytes = b"\x00" * 17
    resp_id: bytes = b"\x00" * 17
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_VALIDATE_REQ:
    signal_type: int = 0
    timer: int = 0
    result: int = 1  # 1: ready


@dataclass(frozen=True)
class CM_VALIDATE_CNF:
    #: Result values of CM_VALIDATE.CNF.
    NOT_READY, READY, SUCCESS, FAILURE, NOT_REQUIRED = 0, 1, 2, 3, 4
    signal_type: int = 0
    toggle_num: int = 0
    result: int = 3


@dataclass(frozen=True)
class CM_SLAC_MATCH_REQ:
    pev_id: bytes
    pev_mac: bytes
    evse_id: bytes
    evse_mac: bytes
    run_id: bytes
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_SLAC_MATCH_CNF:
    pev_id: bytes
    pev_mac: bytes
    evse_id: bytes
    evse_mac: bytes
    run_id: bytes
    nid: bytes
    nmk: bytes = field(repr=False)
    application_type: int = 0
    security_type: int = 0


@dataclass(frozen=True)
class CM_SET_KEY_REQ:
    nid: bytes
    new_key: bytes = field(repr=False)
    key_type: int = 0x01  # NMK (AES-128)
    my_nonce: int = 0
    your_nonce: int = 0
    pid: int = 0x04  # HLE protocol
    prn: int = 0
    pmn: int = 0
    cco_capability: int = 0
    new_eks: int = 0x01


@dataclass(frozen=True)
class CM_SET_KEY_CNF:
    result: int = 0  # 0: success
    my_nonce: int = 0
    your_nonce: int = 0
    pid: int = 0x04
    prn: int = 0
    pmn: int = 0
    cco_capability: int = 0


Message = Union[
    CM_SLAC_PARM_REQ, CM_SLAC_PARM_CNF, CM_START_ATTEN_CHAR_IND, CM_MNBC_SOUND_IND, CM_ATTEN_PROFILE_IND,
    CM_ATTEN_CHAR_IND, CM_ATTEN_CHAR_RSP, CM_VALIDATE_REQ, CM_VALIDATE_CNF, CM_SLAC_MATCH_REQ,
    CM_SLAC_MATCH_CNF, CM_SET_KEY_REQ, CM_SET_KEY_CNF,
]


@dataclass(frozen=True)
class Received:
    src: bytes
    dst: bytes
    message: Message


@dataclass(frozen=True)
class Ignored:
    reason: str


# --------------------------------------------------------------------------- #
# encode                                                                       #
# --------------------------------------------------------------------------- #


def _groups(aag: tuple[int, ...]) -> list:
    return [gp.HPGP_GROUP(group=max(0, min(255, int(v)))) for v in aag]


def _layer(m: Message) -> Packet:
    if isinstance(m, CM_SLAC_PARM_REQ):
        return gp.CM_SLAC_PARM_REQ(ApplicationType=m.application_type, SecurityType=m.security_type, RunID=m.run_id)
    if isinstance(m, CM_SLAC_PARM_CNF):
        return gp.CM_SLAC_PARM_CNF(
            MSoundTargetMAC=mac_str(m.msound_target), NumberMSounds=m.num_sounds, TimeOut=m.time_out,
            ResponseType=m.resp_type, ForwardingSTA=mac_str(m.forwarding_sta),
            ApplicationType=m.application_type, SecurityType=m.security_type, RunID=m.run_id,
        )
    if isinstance(m, CM_START_ATTEN_CHAR_IND):
        return gp.CM_START_ATTEN_CHAR_IND(
            ApplicationType=m.application_type, SecurityType=m.security_type, NumberOfSounds=m.num_sounds,
            TimeOut=m.time_out, ResponseType=m.resp_type, ForwardingSTA=mac_str(m.forwarding_sta), RunID=m.run_id,
        )
    if isinstance(m, CM_MNBC_SOUND_IND):
        return gp.CM_MNBC_SOUND_IND(
            ApplicationType=m.application_type, SecurityType=m.security_type, SenderID=m.sender_id,
            Countdown=m.countdown, RunID=m.run_id, RandomValue=m.random_value,
        )
    if isinstance(m, CM_ATTEN_PROFILE_IND):
        return gp.CM_ATTENUATION_CHARACTERISTICS_MME(
            EVMACAddress=mac_str(m.pev_mac), NumberOfCarrierPerGroupe=0, Groups=_groups(m.aag)
        )
    if isinstance(m, CM_ATTEN_CHAR_IND):
        return gp.CM_ATTEN_CHAR_IND(
            ApplicationType=m.application_type, SecurityType=m.security_type,
            SourceAdress=mac_str(m.source_address), RunID=m.run_id, SourceID=m.source_id,
            ResponseID=m.resp_id, NumberOfSounds=m.num_sounds, Groups=_groups(m.aag),
        )
    if isinstance(m, CM_ATTEN_CHAR_RSP):
        return gp.CM_ATTEN_CHAR_RSP(
            ApplicationType=m.application_type, SecurityType=m.security_type,
            SourceAdress=mac_str(m.source_address), RunID=m.run_id, SourceID=m.source_id,
            ResponseID=m.resp_id, Result=m.result,
        )
    if isinstance(m, CM_VALIDATE_REQ):
        return _CM_VALIDATE_REQ(SignalType=m.signal_type, Timer=m.timer, Result=m.result)
    if isinstance(m, CM_VALIDATE_CNF):
        return _CM_VALIDATE_CNF(SignalType=m.signal_type, ToggleNum=m.toggle_num, Result=m.result)
    if isinstance(m, CM_SLAC_MATCH_REQ):
        return gp.CM_SLAC_MATCH_REQ(
            ApplicationType=m.application_type, SecurityType=m.security_type,
            VariableField=gp.SLAC_varfield(
                EVID=m.pev_id, EVMAC=mac_str(m.pev_mac), EVSEID=m.evse_id, EVSEMAC=mac_str(m.evse_mac), RunID=m.run_id
            ),
        )
    if isinstance(m, CM_SLAC_MATCH_CNF):
        return gp.CM_SLAC_MATCH_CNF(
            ApplicationType=m.application_type, SecurityType=m.security_type,
            VariableField=gp.SLAC_varfield_cnf(
                EVID=m.pev_id, EVMAC=mac_str(m.pev_mac), EVSEID=m.evse_id, EVSEMAC=mac_str(m.evse_mac),
                RunID=m.run_id, NetworkID=m.nid, NMK=m.nmk,
            ),
        )
    if isinstance(m, CM_SET_KEY_REQ):
        return gp.CM_SET_KEY_REQ(
            KeyType=m.key_type, MyNonce=m.my_nonce, YourNonce=m.your_nonce, PID=m.pid, ProtoRunNumber=m.prn,
            ProtoMessNumber=m.pmn, CCoCapability=m.cco_capability, NetworkID=m.nid, NewEncKeySelect=m.new_eks,
            NewKey=m.new_key,
        )
    if isinstance(m, CM_SET_KEY_CNF):
        return gp.CM_SET_KEY_CNF(
            Result=m.result, MyNonce=m.my_nonce, YourNonce=m.your_nonce, PID=m.pid, ProtoRunNumber=m.prn,
            ProtoMessNumber=m.pmn, CCoCapability=m.cco_capability,
        )
    raise TypeError(f"not a SLAC message: {m!r}")


_MMTYPE_OF = {
    CM_SLAC_PARM_REQ: MMType.CM_SLAC_PARM_REQ, CM_SLAC_PARM_CNF: MMType.CM_SLAC_PARM_CNF,
    CM_START_ATTEN_CHAR_IND: MMType.CM_START_ATTEN_CHAR_IND, CM_MNBC_SOUND_IND: MMType.CM_MNBC_SOUND_IND,
    CM_ATTEN_PROFILE_IND: MMType.CM_ATTEN_PROFILE_IND, CM_ATTEN_CHAR_IND: MMType.CM_ATTEN_CHAR_IND,
    CM_ATTEN_CHAR_RSP: MMType.CM_ATTEN_CHAR_RSP, CM_VALIDATE_REQ: MMType.CM_VALIDATE_REQ,
    CM_VALIDATE_CNF: MMType.CM_VALIDATE_CNF, CM_SLAC_MATCH_REQ: MMType.CM_SLAC_MATCH_REQ,
    CM_SLAC_MATCH_CNF: MMType.CM_SLAC_MATCH_CNF, CM_SET_KEY_REQ: MMType.CM_SET_KEY_REQ,
    CM_SET_KEY_CNF: MMType.CM_SET_KEY_CNF,
}


def encode(src: bytes, dst: bytes, message: Message) -> bytes:
    """The Ethernet frame carrying ``message`` from ``src`` to ``dst`` (padded to 60 octets)."""
    pkt = (
        Ether(dst=mac_str(dst), src=mac_str(src), type=ETH_P_HOMEPLUG)
        / HomePlugAV(version=_MMV_HPGP, HPtype=_MMTYPE_OF[type(message)], FragmentInfo=0)
        / _layer(message)
    )
    raw = bytes(pkt)
    return raw + b"\x00" * (_ETH_MIN - len(raw)) if len(raw) < _ETH_MIN else raw


# --------------------------------------------------------------------------- #
# decode                                                                       #
# --------------------------------------------------------------------------- #

# Fixed part of each MME body (octets after the 5-octet MME header).
_FIXED_LEN = {
    MMType.CM_SLAC_PARM_REQ: 10,
    MMType.CM_SLAC_PARM_CNF: 6 + 1 + 1 + 1 + 6 + 1 + 1 + 8,
    MMType.CM_START_ATTEN_CHAR_IND: 1 + 1 + 1 + 1 + 1 + 6 + 8,
    MMType.CM_MNBC_SOUND_IND: 1 + 1 + 17 + 1 + 8 + 8 + 16,
    MMType.CM_ATTEN_PROFILE_IND: 6 + 1 + 1,
    MMType.CM_ATTEN_CHAR_IND: 1 + 1 + 6 + 8 + 17 + 17 + 1 + 1,
    MMType.CM_ATTEN_CHAR_RSP: 1 + 1 + 6 + 8 + 17 + 17 + 1,
    MMType.CM_VALIDATE_REQ: 3,
    MMType.CM_VALIDATE_CNF: 3,
    MMType.CM_SLAC_MATCH_REQ: 1 + 1 + 2 + 17 + 6 + 17 + 6 + 8 + 8,
    MMType.CM_SLAC_MATCH_CNF: 1 + 1 + 2 + 17 + 6 + 17 + 6 + 8 + 8 + 7 + 1 + 16,
    MMType.CM_SET_KEY_REQ: 1 + 4 + 4 + 1 + 2 + 1 + 1 + 7 + 1 + 16,
    MMType.CM_SET_KEY_CNF: 1 + 4 + 4 + 1 + 2 + 1 + 1,
}


def _aag(groups) -> tuple[int, ...]:
    return tuple(int(g.group) for g in groups)


def decode(frame: bytes) -> Received | Ignored:
    """Decode one Ethernet frame; ``Ignored`` says why a frame is not a SLAC message we know."""
    if len(frame) < 14:
        return Ignored(f"frame of {len(frame)} octets is shorter than an Ethernet header")
    dst, src = bytes(frame[0:6]), bytes(frame[6:12])
    ethertype = int.from_bytes(frame[12:14], "big")
    start = 14
    if ethertype == 0x8100 and len(frame) >= 18:  # one 802.1Q tag
        ethertype = int.from_bytes(frame[16:18], "big")
        start = 18
    if ethertype != ETH_P_HOMEPLUG:
        return Ignored(f"ethertype 0x{ethertype:04x} is not HomePlug AV (0x88e1)")
    raw = bytes(frame[start:])
    if len(raw) < 5:
        return Ignored("HomePlug MME header truncated")
    mmv = raw[0]
    mmtype = int.from_bytes(raw[1:3], "little")
    if mmv != _MMV_HPGP:
        return Ignored(f"MMV {mmv} is not HomePlug Green PHY (1)")
    if raw[3] & 0x0F or raw[4]:  # fragmented MMEs are not used by SLAC
        return Ignored("fragmented MME")
    body = raw[5:]
    need = _FIXED_LEN.get(mmtype)
    if need is None:
        return Ignored(f"MMTYPE 0x{mmtype:04x} is not a SLAC message")
    if len(body) < need:
        return Ignored(f"MMTYPE 0x{mmtype:04x} body is {len(body)} octets, needs {need}")
    try:
        msg = _decode_body(mmtype, raw, body)
    except Exception as exc:  # scapy or a field check on garbage
        return Ignored(f"malformed MMTYPE 0x{mmtype:04x}: {exc}")
    if isinstance(msg, Ignored):
        return msg
    return Received(src=src, dst=dst, message=msg)


def _decode_body(mmtype: int, raw: bytes, body: bytes) -> Message | Ignored:
    p = HomePlugAV(raw).payload
    mac = mac_bytes
    if mmtype == MMType.CM_SLAC_PARM_REQ:
        return CM_SLAC_PARM_REQ(run_id=bytes(p.RunID), application_type=p.ApplicationType, security_type=p.SecurityType)
    if mmtype == MMType.CM_SLAC_PARM_CNF:
        return CM_SLAC_PARM_CNF(
            run_id=bytes(p.RunID), forwarding_sta=mac(p.ForwardingSTA), num_sounds=p.NumberMSounds,
            time_out=p.TimeOut, resp_type=p.ResponseType, msound_target=mac(p.MSoundTargetMAC),
            application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_START_ATTEN_CHAR_IND:
        return CM_START_ATTEN_CHAR_IND(
            run_id=bytes(p.RunID), num_sounds=p.NumberOfSounds, time_out=p.TimeOut,
            forwarding_sta=mac(p.ForwardingSTA), resp_type=p.ResponseType,
            application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_MNBC_SOUND_IND:
        return CM_MNBC_SOUND_IND(
            run_id=bytes(p.RunID), countdown=p.Countdown, sender_id=bytes(p.SenderID),
            random_value=bytes(p.RandomValue), application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_ATTEN_PROFILE_IND:
        n = body[6]
        if n > SLAC_GROUPS or len(body) < 8 + n:
            return Ignored(f"CM_ATTEN_PROFILE.IND with {n} groups in {len(body)} octets")
        return CM_ATTEN_PROFILE_IND(pev_mac=body[0:6], aag=tuple(body[8 : 8 + n]))
    if mmtype == MMType.CM_ATTEN_CHAR_IND:
        n = body[51]
        if n > SLAC_GROUPS or len(body) < 52 + n:
            return Ignored(f"CM_ATTEN_CHAR.IND with {n} groups in {len(body)} octets")
        return CM_ATTEN_CHAR_IND(
            source_address=mac(p.SourceAdress), run_id=bytes(p.RunID), num_sounds=p.NumberOfSounds,
            aag=_aag(p.Groups), source_id=bytes(p.SourceID), resp_id=bytes(p.ResponseID),
            application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_ATTEN_CHAR_RSP:
        return CM_ATTEN_CHAR_RSP(
            source_address=mac(p.SourceAdress), run_id=bytes(p.RunID), result=p.Result,
            source_id=bytes(p.SourceID), resp_id=bytes(p.ResponseID),
            application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_VALIDATE_REQ:
        return CM_VALIDATE_REQ(signal_type=body[0], timer=body[1], result=body[2])
    if mmtype == MMType.CM_VALIDATE_CNF:
        return CM_VALIDATE_CNF(signal_type=body[0], toggle_num=body[1], result=body[2])
    if mmtype == MMType.CM_SLAC_MATCH_REQ:
        v = p.VariableField
        return CM_SLAC_MATCH_REQ(
            pev_id=bytes(v.EVID), pev_mac=mac(v.EVMAC), evse_id=bytes(v.EVSEID), evse_mac=mac(v.EVSEMAC),
            run_id=bytes(v.RunID), application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_SLAC_MATCH_CNF:
        v = p.VariableField
        return CM_SLAC_MATCH_CNF(
            pev_id=bytes(v.EVID), pev_mac=mac(v.EVMAC), evse_id=bytes(v.EVSEID), evse_mac=mac(v.EVSEMAC),
            run_id=bytes(v.RunID), nid=bytes(v.NetworkID), nmk=bytes(v.NMK),
            application_type=p.ApplicationType, security_type=p.SecurityType,
        )
    if mmtype == MMType.CM_SET_KEY_REQ:
        return CM_SET_KEY_REQ(
            nid=bytes(p.NetworkID), new_key=bytes(p.NewKey), key_type=p.KeyType, my_nonce=p.MyNonce,
            your_nonce=p.YourNonce, pid=p.PID, prn=p.ProtoRunNumber, pmn=p.ProtoMessNumber,
            cco_capability=p.CCoCapability, new_eks=p.NewEncKeySelect,
        )
    if mmtype == MMType.CM_SET_KEY_CNF:
        return CM_SET_KEY_CNF(
            result=p.Result, my_nonce=p.MyNonce, your_nonce=p.YourNonce, pid=p.PID, prn=p.ProtoRunNumber,
            pmn=p.ProtoMessNumber, cco_capability=p.CCoCapability,
        )
    return Ignored(f"MMTYPE 0x{mmtype:04x} not handled")
