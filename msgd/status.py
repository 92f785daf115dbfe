"""Status reports: every stage tells the recorder what happened to a message."""

from __future__ import annotations

from typing import Any

from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import DLR_KIND, FAILED, FAULT_UNKNOWN, RETRYING, dumps, now_iso
from msgd.redact import redact_text

# Characters of a reason kept in a report (a gateway may answer with a whole web page).
REASON_LIMIT = 4000
# Fields of a message the recorder copies into the log row.
MESSAGE_FIELDS = (
    "event_id", "event_type", "operator_code", "abonent_id", "abonent_name", "template_id",
    "channel", "recipient", "sender", "subject", "body", "html", "lane", "created_at",
)


def status(
    message_id: str,
    state: str,
    *,
    message: dict[str, Any],
    reason: str = "",
    attempt: int = 0,
    gateway_message_id: str = "",
    seconds: float | None = None,
    details: dict[str, Any] | None = None,
    fault: str = "",
    settings_id: int | None = None,
    cause: str = "",
    code: str = "",
) -> Outgoing:
    """One report for the recorder (schemas/status.v1.json). ``fault`` is the fault class of a
    ``failed`` message (msgd/envelope.py FAULTS; ``unknown`` when not given), empty otherwise;
    ``cause`` a ``recipient`` failure's finer cause (``subscription-gone``, ``bot-blocked``...: the
    feedback to billing names it); ``settings_id`` the channel settings slot that sent it; ``code``
    the reason code (msgd/reasons.py): every ``failed`` report has one (its fault class's when the
    raiser named none or one msgd does not know), a ``retrying`` one the attempt's."""
    from msgd.reasons import REASONS, code_for

    if state == FAILED and not fault:
        fault = FAULT_UNKNOWN
    if state == FAILED:
        code = code_for(code, fault)
    elif code not in REASONS or state != RETRYING:
        code = ""
    body = {
        "v": 1,
        "kind": "status",
        "message_id": message_id,
        "state": state,
        "reason": redact_text(reason, limit=REASON_LIMIT),
        "fault": fault if state == FAILED else "",
        **({"code": code} if code else {}),
        "attempt": attempt,
        "at": now_iso(),
        "gateway_message_id": gateway_message_id,
        "seconds": seconds,
        "details": details or {},
        **({"settings_id": settings_id} if settings_id is not None else {}),
        **({"cause": cause} if cause and state == FAILED else {}),
        "message": {k: message[k] for k in MESSAGE_FIELDS if message.get(k) is not None},
    }
    return Outgoing(route=topo.STATUS_ROUTE, body=dumps(body))


def event_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The message-log fields an event alone determines."""
    ab = event.get("abonent") or {}
    return {
        "event_id": str(event.get("event_id", "")),
        "event_type": str(event.get("type", "")),
        "operator_code": str((event.get("operator") or {}).get("code", "")),
        "abonent_id": str(ab.get("id", "")),
        "abonent_name": str(ab.get("name", "")),
        "created_at": now_iso(),
    }


def delivery_report(
    state: str,
    *,
    settings_id: int | None,
    gateway_message_id: str,
    operator_code: str = "",
    gateway: str = "",
    message_id: str = "",
    reason: str = "",
    fault: str = "",
    error: str = "",
    at: str = "",
    via: str = "callback",
) -> Outgoing:
    """A gateway's delivery report (DLR) for the recorder (schemas/dlr.v1.json).

    ``state``: ``delivered``, ``undelivered`` or ``none`` (the dlr stage stopped asking: the
    message stays ``sent``, reason "no delivery report"). The message is named by the slot
    (``settings_id``, ``operator_code``) and the gateway's id, or by msgd's ``message_id`` when
    the sender knows it (the dlr stage). ``reason``: the network's words; ``fault``: the fault
    class of an ``undelivered`` one; ``error``: the gateway's error code as text; ``at``: ISO 8601,
    the gateway's time of the report when it gives one, else now; ``gateway``: the host label of
    the metrics; ``via``: ``callback`` or ``poll``."""
    body = {
        "v": 1, "kind": DLR_KIND, "state": state, "settings_id": settings_id,
        "operator_code": operator_code, "gateway": gateway,
        "gateway_message_id": gateway_message_id, "message_id": message_id,
        "reason": redact_text(reason, limit=REASON_LIMIT), "fault": fault, "error": error,
        "at": at or now_iso(), "received_at": now_iso(), "via": via,
    }
    return Outgoing(route=topo.STATUS_ROUTE, body=dumps(body))
