"""Schema-informed EXI codec for ISO 15118 / DIN 70121 messages.

    from pnc_bridge import exi
    msg = exi.decode("iso2", payload)          # -> pnc_bridge.messages.iso2.V2G_Message
    payload = exi.encode("iso2", msg)          # -> bytes, byte-exact with EXIficient/libcbv2g
    xml = exi.to_xml("iso2", msg)              # XML that validates against the XSD
    msg = exi.from_xml("iso2", xml)            # and back (facets checked)

Schema names: ``apphand``, ``din``, ``iso2``, ``iso20-common``, ``iso20-ac``,
``iso20-dc``, ``iso20-acdp``, ``iso20-wpt``. EXI options are those ISO 15118 uses on
the wire: bit-packed, default fidelity options, non-strict grammars, no string table
values. Every decoding problem raises ``ExiDecodeError`` (with the bit position);
every message that does not conform to its schema raises ``ExiEncodeError``.
See docs/exi.md.
"""

from pnc_bridge.exi._api import SCHEMAS, UnknownSchemaError, decode, encode, encode_fragment
from pnc_bridge.exi._convert import MessageFormatError, from_dict, from_xml, to_dict, to_xml, validate
from pnc_bridge.exi._runtime import ExiDecodeError, ExiEncodeError

__all__ = [
    "SCHEMAS",
    "ExiDecodeError",
    "ExiEncodeError",
    "MessageFormatError",
    "UnknownSchemaError",
    "decode",
    "encode",
    "encode_fragment",
    "from_dict",
    "from_xml",
    "to_dict",
    "to_xml",
    "validate",
]
