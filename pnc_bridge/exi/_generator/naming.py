"""Mechanical naming rules: XSD names to Python names. Nobody picks names by hand."""

from __future__ import annotations

import keyword
import re

# XSD namespace -> model module (one module per standard; xmldsig shared)
NS_MODULE = {
    "urn:iso:15118:2:2010:AppProtocol": "apphand",
    "urn:din:70121:2012:MsgDef": "din",
    "urn:din:70121:2012:MsgHeader": "din",
    "urn:din:70121:2012:MsgBody": "din",
    "urn:din:70121:2012:MsgDataTypes": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
    "urn:iso:15118:2:2013:MsgHeader": "iso2",
    "urn:iso:15118:2:2013:MsgBody": "iso2",
    "urn:iso:15118:2:2013:MsgDataTypes": "iso2",
    "urn:iso:std:iso:15118:-20:CommonTypes": "iso20",
    "urn:iso:std:iso:15118:-20:CommonMessages": "iso20",
    "urn:iso:std:iso:15118:-20:AC": "iso20",
    "urn:iso:std:iso:15118:-20:DC": "iso20",
    "urn:iso:std:iso:15118:-20:ACDP": "iso20",
    "urn:iso:std:iso:15118:-20:WPT": "iso20",
    "http://www.w3.org/2000/09/xmldsig#": "xmldsig",
}


# Mixed-case tokens of the standards that the camel-case split would tear apart
# (``SoC`` -> ``so_c``); each is lowered as one word.
_TOKENS = {
    "IDs": "ids",
    "PnC": "pnc",
    "SoC": "soc",
    "AReq": "areq",
    "ASRes": "asres",
    "DHpublickey": "dh_publickey",
}
_TOKEN_RE = re.compile("|".join(sorted(map(re.escape, _TOKENS), key=len, reverse=True)))


def snake(name: str) -> str:
    """``EVSEProcessing`` -> ``evse_processing``, ``SessionID`` -> ``session_id``,
    ``DC_EVStatus`` -> ``dc_ev_status``, ``RemainingTimeToFullSoC`` ->
    ``remaining_time_to_full_soc``; a Python keyword gets a trailing underscore."""
    name = _TOKEN_RE.sub(lambda m: "_" + _TOKENS[m.group(0)] + "_", name)
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name)
    s = re.sub(r"(?<=[A-Z0-9])(?=[A-Z][a-z])", "_", s)
    s = re.sub(r"_+", "_", s).lower().strip("_")
    if keyword.iskeyword(s) or s in ("self",):
        s += "_"
    return s


def class_name(type_local: str) -> str:
    """``SessionSetupReqType`` -> ``SessionSetupReq``, ``responseCodeType`` -> ``ResponseCode``."""
    base = type_local[:-4] if type_local.endswith("Type") and len(type_local) > 4 else type_local
    return base[0].upper() + base[1:]


def enum_member(value: str) -> str:
    """Enumeration values as they are spelled in the XSD; characters Python does not allow in
    names become ``_``; a keyword (``None``) or a leading digit gets an underscore."""
    s = re.sub(r"\W", "_", value)
    if not s or s[0].isdigit():
        s = "_" + s
    if keyword.iskeyword(s):
        s += "_"
    return s
