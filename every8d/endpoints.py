"""EVERY8D's HTTP API endpoints: each path, relative to the configured base URL (host and `API21/HTTP/`
prefix, e.g. `https://api.e8d.tw/API21/HTTP/`), and the groups the client's rules are stated for (which
calls send, which are MMS-only, which the 2021 revision added and an older platform may lack)."""

from __future__ import annotations

SEND_SMS = "sendSMS.ashx"
SEND_MMS = "MMS/sendMMS.ashx"
STATUS_SMS = "getDeliveryStatus.ashx"
STATUS_MMS = "MMS/getDeliveryStatus.ashx"
CREDIT = "getCredit.ashx"
CANCEL_SMS = "eraseBooking.ashx"
CANCEL_MMS = "MMS/eraseBooking.ashx"
# 2021 revision (v2.1.x): optional on an account's platform; a 404 means "not supported here".
SEND_PARAM = "SendParamSMS.ashx"
REPLIES = "getReplyMessage.ashx"
OPTIONAL_ENDPOINTS = frozenset({SEND_PARAM, REPLIES})

SEND_ENDPOINTS = frozenset({SEND_SMS, SEND_MMS, SEND_PARAM})
MMS_ENDPOINTS = frozenset({SEND_MMS, STATUS_MMS, CANCEL_MMS})
ALL_ENDPOINTS = frozenset(
    {SEND_SMS, SEND_MMS, STATUS_SMS, STATUS_MMS, CREDIT, CANCEL_SMS, CANCEL_MMS, SEND_PARAM, REPLIES}
)
