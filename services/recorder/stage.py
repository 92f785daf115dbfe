"""Recorder stage: merge status reports into the message log, a batch per transaction.

Reports may arrive twice or out of order (several senders, redeliveries), so
merging is idempotent: a later state beats an earlier one, the first final
state is kept, and each attempt is recorded once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from msgd.broker.base import Outgoing
from msgd.envelope import FINAL_STATES, PASSING_STATES, STATE_RANK, STATUS_KIND
from msgd.stage import Received, park
from msgd.store.models import Attempt, Message

STATES = set(FINAL_STATES) | set(PASSING_STATES)
COPIED = ("event_id", "event_type", "operator_code", "abonent_id", "abonent_name", "channel",
          "recipient", "sender", "subject", "body", "lane")
UPDATED = [*COPIED, "template_id", "state", "reason", "attempts", "gateway_message_id",
           "updated_at", "finished_at", "created_at"]


def _when(value: Any, default: dt.datetime) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _problem(report: dict[str, Any]) -> str | None:
    if report.get("kind") != STATUS_KIND:
        return f"not a status report (kind={report.get('kind')!r})"
    if report.get("state") not in STATES:
        return f"unknown state {report.get('state')!r}"
    try:
        uuid.UUID(str(report.get("message_id")))
    except ValueError:
        return f"message_id {report.get('message_id')!r} is not a UUID"
    return None


class RecorderStage:
    name = "recorder"

    def handle(self, items: list[Received]) -> Sequence[Outgoing]:
        out: list[Outgoing] = []
        reports: list[dict[str, Any]] = []
        for item in items:
            why = _problem(item.payload)
            if why:
                out.append(park(item.delivery, self.name, why))
            else:
                reports.append(item.payload)
        if reports:
            self.record(reports)
        return out

    def record(self, reports: list[dict[str, Any]]) -> None:
        now = timezone.now()
        ids = list(dict.fromkeys(str(r["message_id"]) for r in reports))
        with transaction.atomic():
            Message.objects.bulk_create(
                [Message(id=mid, event_id="", state=reports[0]["state"], created_at=now, updated_at=now)
                 for mid in ids],
                ignore_conflicts=True,
            )
            rows = {str(m.id): m for m in Message.objects.select_for_update().filter(id__in=ids)}
            fresh = {mid for mid, m in rows.items() if not m.event_id}
            attempts: list[Attempt] = []
            for report in reports:
                mid = str(report["message_id"])
                attempts.extend(self._merge(rows[mid], report, now, mid in fresh))
                fresh.discard(mid)
            Message.objects.bulk_update(list(rows.values()), UPDATED)
            Attempt.objects.bulk_create(attempts, ignore_conflicts=True)

    def _merge(self, row: Message, report: dict[str, Any], now: dt.datetime, fresh: bool) -> list[Attempt]:
        msg = report.get("message") or {}
        at = _when(report.get("at"), now)
        for name in COPIED:
            value = msg.get(name)
            if value not in (None, "") and not getattr(row, name):
                setattr(row, name, str(value))
        if msg.get("template_id") is not None and row.template_id is None:
            row.template_id = int(msg["template_id"])
        if fresh and msg.get("created_at"):
            row.created_at = _when(msg["created_at"], at)
        state = report["state"]
        current_final = row.state in FINAL_STATES and not fresh
        if fresh or (not current_final and STATE_RANK[state] >= STATE_RANK.get(row.state, 0)):
            row.state = state
            row.reason = str(report.get("reason") or "")
            if state in FINAL_STATES:
                row.finished_at = at
        row.attempts = max(row.attempts, int(report.get("attempt") or 0))
        if report.get("gateway_message_id"):
            row.gateway_message_id = str(report["gateway_message_id"])[:200]
        row.updated_at = now
        if not row.event_id:
            row.event_id = "?"  # a report without its message: keep the row findable by id
        if state in PASSING_STATES[1:] or (state in FINAL_STATES and report.get("attempt")):
            return [Attempt(message=row, number=int(report.get("attempt") or 0), state=state,
                            reason=str(report.get("reason") or ""), at=at, seconds=report.get("seconds"))]
        return []
