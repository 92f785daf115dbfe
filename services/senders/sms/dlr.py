"""Reading SMS gateways' delivery reports (DLR) as they call msgd back.

msgd's web process takes a gateway's callback at ``/api/v1/dlr/<slot>/<secret>``
(msgd/web/api_dlr.py) and reads it here by the slot's ``reply_format``; the answer each gateway
expects comes back with the reports. Formats (each gateway's public API documentation):

=================  ============================================================================
format             callback
=================  ============================================================================
smsc               smsc.ru's status handler ("обработчик статусов", https://smsc.ru/api/http/
                   status_messages/): form or query fields ``id``, ``phone``, ``status`` (1
                   delivered, 2 read, 4 link clicked; 3 expired, 20 cannot be delivered, 22 invalid
                   number, 23 forbidden, 24 no money, 25 unreachable number; -1, 0 on the way),
                   ``err`` (why 20: 1 no such subscriber, 6 not in the network, 11 no SMS service,
                   249 bad number format, 252 number banned ...), ``time``; answer ``OK``
smspilot           SMSPilot's callback (https://smspilot.ru/apikey.php, "Статусы"): ``id`` (its
                   server id), ``status`` (2 delivered; -1 not delivered, -2 error; 0, 1, 3 on the
                   way), ``error``; answer ``OK``
digital_direct     Digital Direct's callback (https://api.docs.direct.i-dgtl.ru/messages/callback):
                   a JSON message object (or a list) with ``messageUuid``, ``status`` (delivered,
                   undelivered, unsent, read; sent on the way), ``statusTime``, ``errorCode``
jasmin             Jasmin's DLR (https://docs.jasminsms.com/en/latest/apis/ja-http/): ``id``,
                   ``message_status`` (DELIVRD; UNDELIV, EXPIRED, REJECTD, DELETED; ACCEPTD,
                   UNKNOWN and ESME_ROK on the way; another ESME_* the SMSC refused it), ``err``,
                   ``donedate`` (YYMMDDhhmm); answer exactly ``ACK/Jasmin`` or it calls again
generic            ``id`` (or ``message_id``, ``msgid``, ``sms_id``, ``uuid``) and ``status`` (or
                   ``state``, ``message_status``) in words: delivered / undelivered, failed,
                   rejected, expired
=================  ============================================================================

A report that is not final yet ("on the way") is read as ``state=None`` and acknowledged; the
recorder never sees it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from msgd import safejson
from msgd.envelope import (
    DELIVERED,
    FAULT_CONTENT,
    FAULT_GATEWAY,
    FAULT_RECIPIENT,
    FAULT_TRANSIENT_EXHAUSTED,
    FAULT_UNKNOWN,
    UNDELIVERED,
)


class UnreadableCallback(ValueError):
    """The request is not this gateway's delivery report (the words say what is missing)."""


@dataclass(frozen=True)
class Dlr:
    """One delivery report: the gateway's message id and what happened (``state`` None = not
    final yet); ``reason`` the network's words, ``fault`` the fault class of an undelivered one,
    ``error`` the gateway's code, ``at`` its time (ISO 8601) when it gives one."""

    gateway_message_id: str
    state: str | None
    reason: str = ""
    fault: str = ""
    error: str = ""
    at: str = ""


@dataclass(frozen=True)
class Ack:
    """What msgd answers the gateway (its own convention: Jasmin calls again until ``ACK/Jasmin``)."""

    body: str = "OK"
    status: int = 200


# smsc.ru status codes -> (state, fault, words); `err` of status 20 -> (fault, words)
SMSC_STATUS: dict[int, tuple[str, str, str]] = {
    1: (DELIVERED, "", "delivered"), 2: (DELIVERED, "", "read"), 4: (DELIVERED, "", "link clicked"),
    3: (UNDELIVERED, FAULT_TRANSIENT_EXHAUSTED, "expired: the phone was off or out of reach"),
    20: (UNDELIVERED, FAULT_UNKNOWN, "cannot be delivered"),
    22: (UNDELIVERED, FAULT_RECIPIENT, "invalid number"),
    23: (UNDELIVERED, FAULT_CONTENT, "forbidden"),
    24: (UNDELIVERED, FAULT_GATEWAY, "not enough money on the account"),
    25: (UNDELIVERED, FAULT_UNKNOWN, "unreachable number"),
}
SMSC_ERRORS: dict[int, tuple[str, str]] = {
    1: (FAULT_RECIPIENT, "the subscriber does not exist"),
    6: (FAULT_TRANSIENT_EXHAUSTED, "the subscriber is not in the network"),
    11: (FAULT_RECIPIENT, "the number has no SMS service"),
    12: (FAULT_UNKNOWN, "an error in the subscriber's phone"),
    13: (FAULT_UNKNOWN, "the subscriber is blocked"),
    249: (FAULT_RECIPIENT, "invalid number format"),
    252: (FAULT_RECIPIENT, "the number is banned"),
    255: (FAULT_UNKNOWN, "rejected by the operator"),
}
SMSPILOT_STATUS = {2: (DELIVERED, "", "delivered"), -1: (UNDELIVERED, FAULT_UNKNOWN, "not delivered"),
                   -2: (UNDELIVERED, FAULT_UNKNOWN, "error")}
DIGITAL_DIRECT_STATUS = {"delivered": (DELIVERED, "", "delivered"), "read": (DELIVERED, "", "read"),
                         "unread": (DELIVERED, "", "delivered, unread"),
                         "undelivered": (UNDELIVERED, FAULT_TRANSIENT_EXHAUSTED,
                                         "not delivered within its lifetime"),
                         "unsent": (UNDELIVERED, FAULT_UNKNOWN, "not sent")}
JASMIN_STATUS = {"DELIVRD": (DELIVERED, "", "DELIVRD"),
                 "EXPIRED": (UNDELIVERED, FAULT_TRANSIENT_EXHAUSTED, "EXPIRED: not delivered in its validity"),
                 "UNDELIV": (UNDELIVERED, FAULT_UNKNOWN, "UNDELIV"),
                 "REJECTD": (UNDELIVERED, FAULT_UNKNOWN, "REJECTD"),
                 "DELETED": (UNDELIVERED, FAULT_UNKNOWN, "DELETED")}
_GENERIC_WORDS = {"delivered": DELIVERED, "delivrd": DELIVERED, "deliver": DELIVERED,
                  "undelivered": UNDELIVERED, "undeliv": UNDELIVERED, "failed": UNDELIVERED,
                  "rejected": UNDELIVERED, "rejectd": UNDELIVERED, "expired": UNDELIVERED}


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _need(fields: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = str(fields.get(name) or "").strip()
        if value:
            return value
    raise UnreadableCallback(f"no {' or '.join(names)} in the delivery report")


def _unix(value: Any) -> str:
    stamp = _int(value)
    if stamp is None or not 0 < stamp < 2**33:
        return ""
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat()


def smsc_report(gid: str, status: int | None, err: int | None, at: str = "") -> Dlr:
    """An smsc.ru status (callback or status.php) as a report."""
    if status is None or status not in SMSC_STATUS:
        return Dlr(gid, None)
    state, fault, words = SMSC_STATUS[status]
    if status == 20 and err is not None and err in SMSC_ERRORS:
        fault, why = SMSC_ERRORS[err]
        words = f"{words}: {why}"
    code = f"{status}" + (f"/{err}" if err else "")
    return Dlr(gid, state, f"{words} (smsc.ru status {code})", fault, str(err or ""), at)


def _smsc(fields: Mapping[str, str], data: Any) -> tuple[list[Dlr], Ack]:
    gid = _need(fields, "id")
    status = _int(_need(fields, "status"))
    return [smsc_report(gid, status, _int(fields.get("err")), _unix(fields.get("time")))], Ack("OK")


def smspilot_report(gid: str, status: int | None, error: str = "") -> Dlr:
    if status not in SMSPILOT_STATUS:
        return Dlr(gid, None)
    state, fault, words = SMSPILOT_STATUS[status]
    said = f"{words} (SMSPilot status {status}" + (f", error {error})" if error and error != "0" else ")")
    return Dlr(gid, state, said, fault, error if error != "0" else "")


def _smspilot(fields: Mapping[str, str], data: Any) -> tuple[list[Dlr], Ack]:
    gid = _need(fields, "id", "server_id")
    return [smspilot_report(gid, _int(_need(fields, "status")), str(fields.get("error") or ""))], Ack("OK")


def digital_direct_report(item: Any) -> Dlr:
    if not isinstance(item, dict):
        raise UnreadableCallback("a Digital Direct report is not a JSON object")
    gid = str(item.get("messageUuid") or item.get("uuid") or "").strip()
    if not gid:
        raise UnreadableCallback("no messageUuid in the delivery report")
    status = str(item.get("status") or "").strip().lower()
    if status not in DIGITAL_DIRECT_STATUS:
        return Dlr(gid, None)
    state, fault, words = DIGITAL_DIRECT_STATUS[status]
    code = str(item.get("errorCode") or "")
    reason = f"{words} (Digital Direct status {status}" + (f", errorCode {code})" if code else ")")
    return Dlr(gid, state, reason, fault, code, str(item.get("statusTime") or ""))


def _digital_direct(fields: Mapping[str, str], data: Any) -> tuple[list[Dlr], Ack]:
    items = data if isinstance(data, list) else [data]
    if data is None or not items:
        raise UnreadableCallback("expected a JSON message object from Digital Direct")
    return [digital_direct_report(i) for i in items[:1000]], Ack("OK")


def _jasmin_time(value: Any) -> str:
    try:
        return dt.datetime.strptime(str(value).strip(), "%y%m%d%H%M").replace(tzinfo=dt.UTC).isoformat()
    except ValueError:
        return ""


def _jasmin(fields: Mapping[str, str], data: Any) -> tuple[list[Dlr], Ack]:
    gid = _need(fields, "id")
    status = _need(fields, "message_status").upper()
    err = str(fields.get("err") or "").strip()
    err = "" if err in ("000", "0") else err
    if status in JASMIN_STATUS:
        state, fault, words = JASMIN_STATUS[status]
        reason = f"{words}" + (f" (err {err})" if err else "")
        return [Dlr(gid, state, reason, fault, err, _jasmin_time(fields.get("donedate")))], Ack("ACK/Jasmin")
    if status.startswith("ESME_") and status != "ESME_ROK":  # level 1: the SMSC refused the submit
        return [Dlr(gid, UNDELIVERED, f"the SMSC refused it ({status})", FAULT_UNKNOWN, status)], Ack("ACK/Jasmin")
    return [Dlr(gid, None)], Ack("ACK/Jasmin")


def _generic(fields: Mapping[str, str], data: Any) -> tuple[list[Dlr], Ack]:
    source = {**fields, **(data if isinstance(data, dict) else {})}
    gid = _need({k: str(v) for k, v in source.items()}, "id", "message_id", "msgid", "sms_id", "uuid")
    words = str(source.get("status") or source.get("state") or source.get("message_status") or "").strip()
    state = _GENERIC_WORDS.get(words.lower())
    return [Dlr(gid, state, words, FAULT_UNKNOWN if state == UNDELIVERED else "")], Ack("OK")


READERS = {"smsc": _smsc, "smspilot": _smspilot, "digital_direct": _digital_direct, "jasmin": _jasmin,
           "generic": _generic}


def read_callback(fmt: str, fields: Mapping[str, str], body: bytes) -> tuple[list[Dlr], Ack]:
    """The reports in one callback (``fields``: query and form fields, one value each; ``body``
    the raw body, read as JSON when it is one) and what to answer. UnreadableCallback when the
    request is not a report of that format."""
    data: Any = None
    text = body.lstrip()[:1]
    if text in (b"{", b"["):
        try:
            data = safejson.loads(body)
        except ValueError as exc:
            raise UnreadableCallback(f"the body is not JSON: {exc}") from None
    reader = READERS.get(fmt, _generic)
    reports, ack = reader(fields, data)
    return reports, ack
