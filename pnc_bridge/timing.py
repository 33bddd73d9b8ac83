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
# Parameter names are those of ISO 15118-3 Table A.1 (timers) and the counters next to it.

#: TT_EVSE_SLAC_init (20 s .. 50 s): after the EVSE sees CP state B with 5 % PWM it waits this
#: long for the first CM_SLAC_PARM.REQ.
TT_EVSE_SLAC_init = 50.0
#: TT_match_sequence (400 ms): longest gap between two requests of one matching sequence.
TT_match_sequence = 0.4
#: TT_match_response (200 ms): longest time to answer a request / wait for a response.
TT_match_response = 0.2
#: TT_EVSE_match_MNBC (600 ms): sounding window, counted from the first CM_START_ATTEN_CHAR.IND.
#: Sent to the EV in CM_SLAC_PARM.CNF.Time_Out in units of 100 ms.
TT_EVSE_match_MNBC = 0.6
#: TT_EV_atten_results (1200 ms): the EV waits this long for CM_ATTEN_CHAR.IND.
TT_EV_atten_results = 1.2
#: TT_EVSE_match_session (10 s): after CM_ATTEN_CHAR.RSP the EVSE waits this long for
#: CM_VALIDATE.REQ or CM_SLAC_MATCH.REQ.
TT_EVSE_match_session = 10.0
#: TT_matching_repetition (10 s): window in which a failed matching process may be repeated.
TT_matching_repetition = 10.0
#: TT_matching_rate (400 ms): pause before a failed matching process is restarted.
TT_matching_rate = 0.4
#: TP_EV_batch_msg_interval (20 ms .. 50 ms): gap between two CM_MNBC_SOUND.IND of the EV.
TP_EV_batch_msg_interval = 0.02
#: TT_match_join (12 s): after CM_SLAC_MATCH.CNF the link (AVLN join) must be up within this time.
TT_match_join = 12.0
#: T_step_EF (>= 4 s): time in CP state E/F when the EVSE restarts SLAC by a state change.
T_step_EF = 4.0
#: C_EV_match_MNBC: number of M-Sounds the EVSE asks for in CM_SLAC_PARM.CNF.
C_EV_match_MNBC = 10
#: C_EV_start_atten_char_inds: the EV repeats CM_START_ATTEN_CHAR.IND this many times.
C_EV_start_atten_char_inds = 3
#: C_EV_match_retry: repetitions of CM_ATTEN_CHAR.IND when CM_ATTEN_CHAR.RSP does not come.
C_EV_match_retry = 2
#: C_conn_max_match: matching attempts (first one included) within TT_matching_repetition.
C_conn_max_match = 3
#: C_sequ_retry: repetitions of the E/F toggle when no CM_SLAC_PARM.REQ arrives.
C_sequ_retry = 2
#: Not a standard timer: how long the EVSE host waits for CM_SET_KEY.CNF from its own modem
#: before it reports the modem as not answering.
SET_KEY_CNF_TIMEOUT = 1.0


# --------------------------------------------------------------------------- #
# SDP and V2GTP (ISO 15118-2 clause 7.10, ISO 15118-20 clause 7.5)             #
# --------------------------------------------------------------------------- #

#: Idle time after which the V2GTP connection is closed when no complete frame arrived.
#: Same value as V2G_SECC_Sequence_Timeout of ISO 15118-2 (60 s); the SECC session keeps
#: its own, message-level sequence timer -- this one guards the link when no session runs.
V2GTP_INACTIVITY_TIMEOUT = 60.0
#: EV-side SDP client (hil/ and `pnc-bridge link sdp-probe`): interval between repeated
#: SDP requests and how many it sends before giving up (the values common EVCCs use).
SDP_CLIENT_RETRY_INTERVAL = 0.25
SDP_CLIENT_MAX_REQUESTS = 50

# --------------------------------------------------------------------------- #
# TCP / TLS connection handling                                                #
# --------------------------------------------------------------------------- #

#: Time a new TCP connection has to complete the TLS handshake.
TLS_HANDSHAKE_TIMEOUT = 10.0
#: Time a started V2GTP frame (header seen, payload incomplete) may take to arrive in full.
#: Guards against slow-loris peers that trickle a frame forever.
V2GTP_FRAME_ASSEMBLY_TIMEOUT = 5.0


# --------------------------------------------------------------------------- #
# DIN SPEC 70121 and ISO 15118-2 SECC session timers                           #
# --------------------------------------------------------------------------- #
# Names as in ISO 15118-2 clause 9.6 (Table 109 message timeouts, Table 110 sequence and
# performance timers) and DIN SPEC 70121 clause 9.6 (Tables 75-77); the values are the ones
# Josev's timeouts modules and EVerest use for the same names. The EVCC_* values are the EV's
# own limits: the SECC uses them to know how long it may hold a response, and the hil/ EV
# emulator uses them as an EV would.

#: V2G_SECC_Sequence_Timeout: after sending a response the SECC waits this long for the next
#: request, then it stops the session (DIN SPEC 70121 uses the same value).
V2G_SECC_Sequence_Timeout = 60.0
#: V2G_EVCC_Ongoing_Timeout: how long an EV keeps repeating a request answered
#: ``EVSEProcessing=Ongoing`` (Authorization, ChargeParameterDiscovery) before it gives up.
V2G_EVCC_Ongoing_Timeout = 60.0
#: V2G_EVCC_CableCheck_Timeout / V2G_EVCC_PreCharge_Timeout: the EV's limits for the whole
#: CableCheck and PreCharge loops (DC).
V2G_EVCC_CableCheck_Timeout = 40.0
V2G_EVCC_PreCharge_Timeout = 7.0
#: V2G_EVCC_CommunicationSetup_Timeout (DIN SPEC 70121): from the TCP connection to SessionSetupRes.
V2G_EVCC_CommunicationSetup_Timeout = 20.0
#: V2G_EVCC_Msg_Timeout per request (ISO 15118-2 Table 109): how long the EV waits for the
#: response to each request.
V2G_EVCC_Msg_Timeout_ISO2: dict[str, float] = {
    "SessionSetupReq": 2.0,
    "ServiceDiscoveryReq": 2.0,
    "ServiceDetailReq": 5.0,
    "PaymentServiceSelectionReq": 2.0,
    "CertificateInstallationReq": 5.0,
    "CertificateUpdateReq": 5.0,
    "PaymentDetailsReq": 5.0,
    "AuthorizationReq": 2.0,
    "ChargeParameterDiscoveryReq": 2.0,
    "PowerDeliveryReq": 5.0,
    "ChargingStatusReq": 2.0,
    "MeteringReceiptReq": 2.0,
    "CableCheckReq": 2.0,
    "PreChargeReq": 2.0,
    "CurrentDemandReq": 0.25,
    "WeldingDetectionReq": 2.0,
    "SessionStopReq": 2.0,
}
#: V2G_EVCC_Msg_Timeout per request (DIN SPEC 70121 Table 75; SupportedAppProtocolReq too).
V2G_EVCC_Msg_Timeout_DIN: dict[str, float] = {
    "supportedAppProtocolReq": 2.0,
    "SessionSetupReq": 2.0,
    "ServiceDiscoveryReq": 2.0,
    "ServicePaymentSelectionReq": 2.0,
    "ContractAuthenticationReq": 2.0,
    "ChargeParameterDiscoveryReq": 2.0,
    "PowerDeliveryReq": 2.0,
    "CableCheckReq": 2.0,
    "PreChargeReq": 2.0,
    "CurrentDemandReq": 0.25,
    "WeldingDetectionReq": 2.0,
    "SessionStopReq": 2.0,
}
#: Not a standard timer: when the SECC has to hold a response for an effect (a response
#: without EVSEProcessing: PaymentDetails, CertificateInstallation, PowerDelivery, ...), it
#: answers at the latest this long before the EV's V2G_EVCC_Msg_Timeout for that request
#: ends, with the failure code, so that the EV gets an answer instead of a timeout.
SECC_RESPONSE_MARGIN = 0.5
#: Not a standard timer: the SECC stops answering ``EVSEProcessing=Ongoing`` for one effect
#: this long after the first Ongoing and answers with the failure code, so the EV hears the
#: reason before its own V2G_EVCC_Ongoing_Timeout (60 s) ends the session.
SECC_ONGOING_LIMIT = V2G_EVCC_Ongoing_Timeout - 5.0
#: Not a standard timer: likewise for the cable check, before V2G_EVCC_CableCheck_Timeout.
SECC_CABLE_CHECK_LIMIT = V2G_EVCC_CableCheck_Timeout - 2.0
#: Not a standard timer: with Plug & Charge and a meter, how often the SECC asks the EV for a
#: MeteringReceipt (ReceiptRequired); the first one is asked at the start of the charge loop.
SECC_METERING_RECEIPT_INTERVAL = 300.0
#: Not a standard timer: after a session ends, how long the asyncio adapter waits for its
#: cleanup effects (open the contactors, end the transaction) before it gives up on them.
SECC_CLEANUP_TIMEOUT = 10.0


# --------------------------------------------------------------------------- #
# ISO 15118-20 SECC session timers                                             #
# --------------------------------------------------------------------------- #
# Names as ISO 15118-20 uses them; the values are those of Josev's
# ``shared/messages/iso15118_20/timeouts.py`` (no requirement id was checked against the
# standard's text). V2G_SECC_Sequence_Timeout and V2G_EVCC_Ongoing_Timeout keep their
# ISO 15118-2 values above (60 s in both standards, as Josev has them).

#: V2G_EVCC_Msg_Timeout per request (ISO 15118-20): how long the EV waits for each response.
#: The charge loops (AC_ChargeLoopReq, DC_ChargeLoopReq) have 0.5 s instead of -2's 0.25 s.
V2G_EVCC_Msg_Timeout_ISO20: dict[str, float] = {
    "SessionSetupReq": 2.0,
    "AuthorizationSetupReq": 2.0,
    "AuthorizationReq": 2.0,
    "CertificateInstallationReq": 5.0,
    "ServiceDiscoveryReq": 2.0,
    "ServiceDetailReq": 5.0,
    "ServiceSelectionReq": 2.0,
    "AC_ChargeParameterDiscoveryReq": 2.0,
    "DC_ChargeParameterDiscoveryReq": 2.0,
    "ScheduleExchangeReq": 2.0,
    "DC_CableCheckReq": 2.0,
    "DC_PreChargeReq": 2.0,
    "PowerDeliveryReq": 2.0,
    "AC_ChargeLoopReq": 0.5,
    "DC_ChargeLoopReq": 0.5,
    "MeteringConfirmationReq": 2.0,
    "DC_WeldingDetectionReq": 2.0,
    "SessionStopReq": 2.0,
}
#: V2G_EVCC_PreCharge_Timeout of ISO 15118-20 (10 s; -2 has 7 s); the cable check keeps 40 s.
V2G_EVCC_PreCharge_Timeout_ISO20 = 10.0
#: Not a standard timer: in dynamic control, a setpoint pushed into the session with
#: ``update_setpoint`` is dropped this long after it was pushed unless renewed, and the
#: schedule's own setpoint (or its limit) applies again, so a CSMS or EMS that goes silent
#: does not leave an EV discharging on a stale order. OCPP 2.1 setpoint updates come
#: far more often than this.
SECC_SETPOINT_VALIDITY = 120.0


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


# --------------------------------------------------------------------------- #
# Bridge (SECC effects <-> OCPP, EVSE driver)                                  #
# --------------------------------------------------------------------------- #
# Not standard timers: how the bridge paces its own work between the SECC and the CSMS.

#: After NotifyEVChargingNeeds is answered Accepted / Processing, how long the bridge waits
#: for the CSMS's SetChargingProfile before it offers the station's own limits (the EV keeps
#: asking with ChargeParameterDiscoveryReq, answered Ongoing, meanwhile; well inside
#: SECC_ONGOING_LIMIT).
BRIDGE_SCHEDULE_WAIT = 20.0
#: Get15118EVCertificate: the SECC holds CertificateInstallation/UpdateRes until
#: V2G_EVCC_Msg_Timeout (5 s) minus SECC_RESPONSE_MARGIN; waiting longer for the CSMS only
#: keeps its single outstanding CALL busy.
BRIDGE_EV_CERTIFICATE_TIMEOUT = V2G_EVCC_Msg_Timeout_ISO2["CertificateInstallationReq"] - SECC_RESPONSE_MARGIN
#: How often the present values, limits and meter of an EVSE with a live session are read
#: from the driver and handed to the SECC (CurrentDemandRes / ChargingStatusRes carry them).
BRIDGE_EVSE_STATUS_INTERVAL = 0.1
#: On shutdown, how long the service waits for the CSMS to take the last queued messages
#: (they stay in the outbox and are sent after the next start otherwise).
BRIDGE_SHUTDOWN_DRAIN = 3.0
#: OCPP M06 (Get V2G Charging Station Certificate status): the OCSP responses for the SECC
#: chain are asked for at start, when the chain changes, and when older than this (a week,
#: as libocpp does) or past half their validity (so a stapled one never runs stale).
BRIDGE_OCSP_MAX_AGE = 7 * 24 * 3600.0
#: How often the service looks whether one is due (a local check; the CSMS is asked only then).
BRIDGE_OCSP_CHECK_INTERVAL = 600.0
#: After a failed GetCertificateStatus (CSMS Failed, CALLERROR, a bad response), wait this
#: long before asking again for that certificate.
BRIDGE_OCSP_RETRY = 3600.0
#: How long one GetCertificateStatus may take (the CSMS asks the OCSP responder first).
BRIDGE_OCSP_TIMEOUT = 30.0
#: When an EV session kept the refresh from asking, look again this much later.
BRIDGE_OCSP_BUSY_RETRY = 30.0
#: V2X fallback when the CSMS connection drops (docs/bridge.md): for this long the session
#: keeps the last valid schedule (discharge included: a short network gap must not flip a
#: fleet of EVs from discharging to charging at once); after it, charge-only limits (every
#: discharge removed, charging kept) until the CSMS is back. Longer than the station's
#: first reconnect attempts, shorter than SECC_SETPOINT_VALIDITY so a pushed discharge
#: setpoint never outlives it.
BRIDGE_V2X_OFFLINE_GRACE = 60.0
