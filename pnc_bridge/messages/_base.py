"""Base class of every generated message type."""

from __future__ import annotations

from typing import ClassVar


class Message:
    """A typed ISO 15118 / DIN 70121 message part, generated from its XSD type.

    Subclasses are slotted dataclasses with keyword-only fields named by one mechanical
    rule from the XSD (``EVSEProcessing`` -> ``evse_processing``). ``_exi_type`` is the
    XSD type's (namespace, name); ``_exi_fields`` describes each field for the XML and
    JSON conversion in ``pnc_bridge.exi``.
    """

    __slots__ = ()
    _exi_type: ClassVar[tuple[str, str]]
    _exi_fields: ClassVar[tuple]
