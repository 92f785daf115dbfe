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
from msgd.envelope import DELAYED, FINAL_STATES, PASSING_STATES, RETRYING, STATUS_KIND
from msgd.stage import Received, park
from msgd.store import sql

STATES = set(FINAL_STATES) | set(PASSING_STATES)
COPIED = ("event_id", "event_type", "operator_code", "abonent_id", "abonent_name", "channel",
          "recipient", "sender", "subject", "body", "lane")
# Column widths of the log (see models.Message) so an oversized field cannot fail the batch.
LIMITS = {"event_id": 128, "event_type": 64, "operator_code": 64, "abonent_id": 64, "abonent_name": 300,
          "channel": 32, "recipient": 500, "sender": 254, "lane": 8}


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


def _rank(col: str) -> str:
    return f"(CASE {col} WHEN 'queued' THEN 0 WHEN 'delayed' THEN 1 WHEN 'retrying' THEN 1 ELSE 9 END)"


_APPLY = f"({_rank('m.state')} < 9 AND {_rank('excluded.state')} >= {_rank('m.state')})"
_FINAL = "(" + " OR ".join(f"excluded.state = '{s}'" for s in FINAL_STATES) + ")"
COLUMNS = ("id", *COPIED, "template_id", "state", "reason", "attempts", "gateway_message_id", "details",
           "created_at", "updated_at", "finished_at")
# A template deleted since the message was rendered leaves the log row without one.
VALUES = ["(SELECT id FROM msgd_template WHERE id = %s)" if c == "template_id" else "%s" for c in COLUMNS]
# One statement merges a report into its row, whatever arrived before it:
# empty fields are filled, a later state beats an earlier one, the first final state stays.
UPSERT = (
    f"INSERT INTO msgd_message AS m ({', '.join(COLUMNS)}) VALUES ({', '.join(VALUES)})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = CASE WHEN m.{c} = '' THEN excluded.{c} ELSE m.{c} END" for c in COPIED if c != "event_id")
    + ", event_id = CASE WHEN m.event_id IN ('', '?') THEN excluded.event_id ELSE m.event_id END"
    + ", template_id = COALESCE(m.template_id, excluded.template_id)"
    + f", state = CASE WHEN {_APPLY} THEN excluded.state ELSE m.state END"
    + f", reason = CASE WHEN {_APPLY} THEN excluded.reason ELSE m.reason END"
    + f", finished_at = CASE WHEN {_APPLY} AND {_FINAL} THEN excluded.finished_at ELSE m.finished_at END"
    + ", attempts = CASE WHEN excluded.attempts > m.attempts THEN excluded.attempts ELSE m.attempts END"
    + ", gateway_message_id = CASE WHEN excluded.gateway_message_id <> '' THEN excluded.gateway_message_id"
    " ELSE m.gateway_message_id END"
    + ", updated_at = excluded.updated_at"
)
INSERT_ATTEMPT = (
    "INSERT INTO msgd_attempt (message_id, number, state, reason, at, seconds) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (message_id, number, state) DO NOTHING"
)


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
        rows, attempts = [], []
        for report in reports:
            msg = report.get("message") or {}
            at = _when(report.get("at"), now)
            state = report["state"]
            mid = sql.uid(report["message_id"])
            tid = msg.get("template_id")
            rows.append((
                mid, *(str(msg.get(c) or "")[:LIMITS.get(c, 100_000)] for c in COPIED),
                int(tid) if tid is not None else None, state, str(report.get("reason") or ""),
                int(report.get("attempt") or 0), str(report.get("gateway_message_id") or "")[:200], "{}",
                sql.when(_when(msg.get("created_at"), at)), sql.when(now),
                sql.when(at) if state in FINAL_STATES else None,
            ))
            if state in (DELAYED, RETRYING) or (state in FINAL_STATES and report.get("attempt")):
                attempts.append((mid, int(report.get("attempt") or 0), state, str(report.get("reason") or ""),
                                 sql.when(at), report.get("seconds")))
        with transaction.atomic():
            sql.executemany(UPSERT, rows)
            sql.executemany(INSERT_ATTEMPT, attempts)
