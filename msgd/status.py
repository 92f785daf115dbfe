"""Status reports: every stage tells the recorder what happened to a message."""

from __future__ import annotations

from typing import Any

from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import FAILED, FAULT_UNKNOWN, dumps, now_iso
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
) -> Outgoing:
    """One report for the recorder (schemas/status.v1.json). ``fault`` is the fault class of a
    ``failed`` message (msgd/envelope.py FAULTS; ``unknown`` when not given), empty otherwise."""
    if state == FAILED and not fault:
        fault = FAULT_UNKNOWN
    body = {
        "v": 1,
        "kind": "status",
        "message_id": message_id,
        "state": state,
        "reason": redact_text(reason, limit=REASON_LIMIT),
        "fault": fault if state == FAILED else "",
        "attempt": attempt,
        "at": now_iso(),
        "gateway_message_id": gateway_message_id,
        "seconds": seconds,
        "details": details or {},
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
