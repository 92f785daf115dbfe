"""Feedback to billing: what msgd learned about contacts, on the topic exchange ``msgd.feedback``.

The recorder sees every final outcome, so it is where findings are made (schemas/feedback.v1.json):

* ``contact.invalid.<channel>``: a message failed with fault class ``recipient`` (a push
  subscription the browser dropped, a chat that blocked the bot or never started it, a number the
  gateway calls invalid, a mailbox the server does not know), or an SMS delivery report said
  ``undelivered`` with a ``recipient`` fault. Once per operator, channel, contact and cause
  (``msgd_finding``): the second message to the same dead contact tells billing nothing new. A
  report of the finding message that comes again (a batch redelivered after its publish was not
  confirmed) publishes it again with the same ``id``, so billing may see an event twice, never zero
  times: it should treat ``id`` as the idempotency key.
* ``message.<state>`` (``delivered``, ``undelivered``, ``failed``): every message's final state,
  for operators whose ``feedback_messages`` is on; once per transition the recorder makes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from msgd import metrics
from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import FAULT_RECIPIENT, FEEDBACK_KIND, NAMESPACE, dumps
from msgd.store import sql

# The cause a channel's recipient failure has when the channel did not name a finer one.
DEFAULT_CAUSES = {"sms": "number-invalid", "email": "address-invalid", "telegram": "chat-not-found",
                  "push": "subscription-invalid"}
_FINDING = ("INSERT INTO msgd_finding (key, message_id, created_at) VALUES ", " ON CONFLICT (key) DO NOTHING")


@dataclass
class Candidate:
    """A message whose outcome says its contact is dead (``fields``: the message's log fields)."""

    message_id: str
    fields: dict[str, Any]
    reason: str
    cause: str = ""
    fault: str = FAULT_RECIPIENT


def contact_identity(channel: str, contact: str) -> str:
    """What makes two contacts one: e-mail addresses without case, the rest as written."""
    contact = contact.strip()
    return contact.lower() if channel == "email" else contact


def finding_key(operator: str, channel: str, contact: str, cause: str) -> str:
    return hashlib.sha256(f"{operator}|{channel}|{contact_identity(channel, contact)}|{cause}".encode()).hexdigest()


def candidates_from_reports(reports: Iterable[dict[str, Any]]) -> list[Candidate]:
    """Failed status reports with fault ``recipient``."""
    out = []
    for r in reports:
        if r.get("state") == "failed" and r.get("fault") == FAULT_RECIPIENT:
            out.append(Candidate(str(r["message_id"]), dict(r.get("message") or {}), str(r.get("reason") or ""),
                                 str(r.get("cause") or "")))
    return out


def contact_findings(candidates: list[Candidate], now: dt.datetime) -> list[Outgoing]:
    """One ``contact.invalid.<channel>`` event per new finding (and for a repeated report of the
    message that found it). Writes ``msgd_finding`` rows: call inside the recorder's transaction."""
    from msgd.store.models import Finding

    keyed: dict[str, Candidate] = {}
    for c in candidates:
        channel, contact = str(c.fields.get("channel") or ""), str(c.fields.get("recipient") or "")
        if not channel or not contact.strip():
            continue
        c.cause = c.cause or DEFAULT_CAUSES.get(channel, "invalid")
        keyed.setdefault(finding_key(str(c.fields.get("operator_code") or ""), channel, contact, c.cause), c)
    if not keyed:
        return []
    sql.insert_many(_FINDING[0], ["%s"] * 3, _FINDING[1],
                    [(k, sql.uid(c.message_id), sql.when(now)) for k, c in keyed.items()])
    owners = dict(Finding.objects.filter(key__in=list(keyed)).values_list("key", "message_id"))
    out = []
    for key, c in keyed.items():
        if str(owners.get(key)) != str(uuid.UUID(c.message_id)):
            continue  # found before, by another message
        channel = str(c.fields["channel"])
        body = _body("contact.invalid", c, now, finding_id=str(uuid.uuid5(NAMESPACE, key)))
        out.append(_outgoing(topo.contact_route(channel), body))
    return out


def message_events(items: list[tuple[str, dict[str, Any], str, str, str]], now: dt.datetime) -> list[Outgoing]:
    """``message.<state>`` events: (message id, log fields, state, reason, fault) each."""
    out = []
    for mid, fields, state, reason, fault in items:
        c = Candidate(mid, fields, reason, fault=fault)
        body = _body(f"message.{state}", c, now, finding_id=str(uuid.uuid5(NAMESPACE, f"{mid}|{state}")))
        body["state"] = state
        del body["cause"]
        out.append(_outgoing(topo.message_route(state), body))
    return out


def _body(kind: str, c: Candidate, now: dt.datetime, *, finding_id: str) -> dict[str, Any]:
    f = c.fields
    return {
        "v": 1, "kind": FEEDBACK_KIND, "type": kind, "id": finding_id,
        "operator": str(f.get("operator_code") or ""), "subscriber_id": str(f.get("abonent_id") or ""),
        "channel": str(f.get("channel") or ""), "contact": str(f.get("recipient") or ""),
        "fault": c.fault, "cause": c.cause, "reason": c.reason, "message_id": c.message_id,
        "event_id": str(f.get("event_id") or ""), "at": now.isoformat(),
    }


def _outgoing(route: str, body: dict[str, Any]) -> Outgoing:
    metrics.FEEDBACK.labels(route).inc()
    return Outgoing(route=route, body=dumps(body), exchange="feedback")
