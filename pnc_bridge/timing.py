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

#: OCPPCommCtrlr.MessageTimeout[Default]: how long to wait for a CALLRESULT/CALLERROR.
#: Part 2 section 3.2 suggests starting with 30 s and tuning it for the network.
OCPP_MESSAGE_TIMEOUT = 30.0

#: OCPPCommCtrlr.HeartbeatInterval until the CSMS sets one in BootNotificationResponse.
OCPP_HEARTBEAT_INTERVAL = 300.0

#: BootNotification retry wait when the CSMS answers Pending/Rejected with interval 0:
#: the station chooses "in a way that avoids flooding the CSMS" (B02.FR.07, B03.FR.05).
OCPP_BOOT_RETRY_INTERVAL = 60.0

#: OCPPCommCtrlr.RetryBackOffWaitMinimum / RetryBackOffRandomRange / RetryBackOffRepeatTimes
#: (part 4, 5.3 and 8.1-8.3): first reconnect after WaitMinimum + random(0, RandomRange),
#: doubling RepeatTimes times, then staying at that back-off.
OCPP_RETRY_BACKOFF_WAIT_MINIMUM = 3.0
OCPP_RETRY_BACKOFF_RANDOM_RANGE = 10.0
OCPP_RETRY_BACKOFF_REPEAT_TIMES = 5

#: OCPPCommCtrlr.WebSocketPingInterval (part 4, 8.4); 0 disables client pings.
OCPP_WEBSOCKET_PING_INTERVAL = 30.0

#: How long a ping may stay unanswered before the connection counts as lost.
OCPP_WEBSOCKET_PONG_TIMEOUT = 30.0

#: How long to wait for the CSMS's close frame when closing; a connection given up on
#: (ping unanswered, CALLs timing out) is not worth a long goodbye.
OCPP_WEBSOCKET_CLOSE_TIMEOUT = 2.0

#: Opening the WebSocket (TCP, TLS and HTTP upgrade) must finish within this time.
OCPP_OPEN_TIMEOUT = 30.0

#: OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent] (E13.FR.03): the wait before the
#: n-th resend of a must-deliver message is n times this.
OCPP_MESSAGE_ATTEMPT_INTERVAL = 10.0

#: OCPPCommCtrlr.OfflineThreshold (B04.FR.01/02): after an offline period longer than this,
#: StatusNotification is sent for every connector, otherwise only for changed ones.
OCPP_OFFLINE_THRESHOLD = 60.0

#: SecurityCtrlr.CertSigningWaitMinimum (A02.FR.17): wait for CertificateSigned before a
#: new SignCertificateRequest; doubled CertSigningRepeatTimes times (A02.FR.18/19).
OCPP_CERT_SIGNING_WAIT_MINIMUM = 60.0
