"""Every timer of every protocol pnc-bridge speaks, in one place.

Rules of this module:

- Values are in seconds (floats), named as the standard names them, and carry the
  requirement or table they come from in a comment. Cite only what was checked.
- Sans-I/O cores take these as defaults of constructor arguments, so that tests and
  rigs can shorten them without patching; nothing else defines a timeout literal.
- Sections are per standard; keep them in this order.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- #
# ISO 15118-3 (SLAC, HomePlug Green PHY)                                       #
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# SDP and V2GTP (ISO 15118-2 clause 7.10, ISO 15118-20 clause 7.5)             #
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# TCP / TLS connection handling                                                #
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# DIN SPEC 70121 and ISO 15118-2 SECC session timers                           #
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# ISO 15118-20 SECC session timers                                             #
# --------------------------------------------------------------------------- #


# --------------------------------------------------------------------------- #
# OCPP 2.0.1 / 2.1 (defaults of device-model variables)                        #
# --------------------------------------------------------------------------- #
