"""Typed V2G messages, generated from the standards' XSDs.

One module per standard: ``apphand`` (SupportedAppProtocol), ``din`` (DIN SPEC 70121),
``iso2`` (ISO 15118-2), ``iso20`` (ISO 15118-20, all namespaces), ``xmldsig`` (the
XML-DSig types used in headers). Class, field and enum names follow the XSD by one
mechanical rule: ``SessionSetupReqType`` -> ``SessionSetupReq``, element ``EVSEProcessing``
-> field ``evse_processing``, ``responseCodeType`` -> ``ResponseCode`` with members
spelled as in the standard (``ResponseCode.FAILED_SequenceError``).
"""

from pnc_bridge.messages._base import Message

__all__ = ["Message"]
