"""Recorder stage: merge status reports into the message log, a batch per transaction.

Reports may arrive twice or out of order (several senders, redeliveries), so
merging is idempotent: a later state beats an earlier one, the first final
state is kept, and each attempt is recorded once. Delivery reports (``kind: dlr``)
move a ``sent`` SMS on (services/recorder/dlr.py); what the outcomes say about
contacts goes to billing (services/recorder/feedback.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from django.db import transaction
from django.utils import timezone

from msgd.broker.base import Outgoing
from msgd.envelope import (
    DELAYED,
    DLR_KIND,
    FAILED,
    FAULT_UNKNOWN,
    FAULTS,
    FINAL_STATES,
    PASSING_STATES,
    RETRYING,
    STATE_RANK,
    STATUS_BATCH_KIND,
    STATUS_KIND,
    dumps,
)
from msgd.reasons import REASONS, code_for
from msgd.settings import Settings
from msgd.stage import Received, park
from msgd.storable import storable, storable_json, surely_storable
from msgd.store import sql
from msgd.store.cache import ConfigCache
from services.recorder import dlr, feedback

STATES = set(FINAL_STATES) | set(PASSING_STATES)
COPIED = ("event_id", "event_type", "operator_code", "abonent_id", "abonent_name", "channel",
          "recipient", "sender", "subject", "body", "html", "lane")
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
    if report.get("kind") == DLR_KIND:
        return dlr.problem(report)
    if report.get("kind") != STATUS_KIND:
        return f"not a status report (kind={report.get('kind')!r})"
    if report.get("state") not in STATES:
        return f"unknown state {report.get('state')!r}"
    if not _is_uuid(str(report.get("message_id"))):
        return f"message_id {report.get('message_id')!r} is not a UUID"
    return None


# How msgd writes a UUID (str(uuid.UUID)): such a text surely is one; any other form is asked of UUID.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_uuid(text: str) -> bool:
    """Whether ``uuid.UUID(text)`` accepts ``text`` (it also takes braces, "urn:uuid:", upper case...)."""
    if _CANONICAL_UUID.fullmatch(text):
        return True
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# The order of states is envelope.STATE_RANK's; final states share the highest rank.
_FINAL_RANK = max(STATE_RANK.values())
# A message_id's event_id before the event is known (the SQL below and _fold agree).
_NO_EVENT_ID = ("", "?")


def _rank(col: str) -> str:
    passing = " ".join(f"WHEN '{s}' THEN {r}" for s, r in STATE_RANK.items() if r < _FINAL_RANK)
    return f"(CASE {col} {passing} ELSE {_FINAL_RANK} END)"


# A stored state gives way unless it is final, to a state ranked the same or later.
_APPLY = f"({_rank('m.state')} < {_FINAL_RANK} AND {_rank('excluded.state')} >= {_rank('m.state')})"
_FINAL = "(" + " OR ".join(f"excluded.state = '{s}'" for s in FINAL_STATES) + ")"
COLUMNS = ("id", *COPIED, "template_id", "state", "reason", "fault", "reason_code", "attempts", "gateway_message_id",
           "details", "created_at", "updated_at", "finished_at", "settings_id")
# What a channel adds about a delivery (SMS segments, the gateway used): the latest report's wins.
_NO_DETAILS = "excluded.details = '{}'"
# A template deleted since the message was rendered leaves the log row without one.
VALUES = ["(SELECT id FROM msgd_template WHERE id = %s)" if c == "template_id" else "%s" for c in COLUMNS]
# One statement merges a report into its row, whatever arrived before it:
# empty fields are filled, a later state beats an earlier one, the first final state stays.
UPSERT_HEAD = f"INSERT INTO msgd_message AS m ({', '.join(COLUMNS)}) VALUES "
UPSERT_TAIL = (
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = CASE WHEN m.{c} = '' THEN excluded.{c} ELSE m.{c} END" for c in COPIED if c != "event_id")
    + ", event_id = CASE WHEN m.event_id IN (" + ", ".join(f"'{v}'" for v in _NO_EVENT_ID) + ")"
    " THEN excluded.event_id ELSE m.event_id END"
    + ", template_id = COALESCE(m.template_id, excluded.template_id)"
    + f", state = CASE WHEN {_APPLY} THEN excluded.state ELSE m.state END"
    + f", reason = CASE WHEN {_APPLY} THEN excluded.reason ELSE m.reason END"
    + f", fault = CASE WHEN {_APPLY} THEN excluded.fault ELSE m.fault END"
    + f", reason_code = CASE WHEN {_APPLY} THEN excluded.reason_code ELSE m.reason_code END"
    + f", finished_at = CASE WHEN {_APPLY} AND {_FINAL} THEN excluded.finished_at ELSE m.finished_at END"
    + ", attempts = CASE WHEN excluded.attempts > m.attempts THEN excluded.attempts ELSE m.attempts END"
    + ", gateway_message_id = CASE WHEN excluded.gateway_message_id <> '' THEN excluded.gateway_message_id"
    " ELSE m.gateway_message_id END"
    + f", details = CASE WHEN {_NO_DETAILS} THEN m.details ELSE excluded.details END"
    + ", settings_id = COALESCE(excluded.settings_id, m.settings_id)"
    + ", updated_at = excluded.updated_at"
)
ATTEMPT_HEAD = "INSERT INTO msgd_attempt (message_id, number, state, reason, reason_code, at, seconds) VALUES "
ATTEMPT_TAIL = " ON CONFLICT (message_id, number, state) DO NOTHING"


# Seconds between two looks at the delivery reports still waiting for their message.
SWEEP_SECONDS = 30.0


class RecorderStage:
    name = "recorder"

    def __init__(self, settings: Settings | None = None, cache: ConfigCache | None = None) -> None:
        self.settings = settings or Settings()
        self.cache = cache or ConfigCache(self.settings.config_refresh_seconds)
        self._swept = 0.0

    def handle(self, items: list[Received]) -> Sequence[Outgoing]:
        out: list[Outgoing] = []
        reports: list[dict[str, Any]] = []
        for item in items:
            payload = item.payload
            if payload.get("kind") != STATUS_BATCH_KIND:
                why = _problem(payload)
                if why:
                    out.append(park(item.delivery, self.name, why))
                else:
                    reports.append(payload)
                continue
            batch = payload.get("reports")
            if not isinstance(batch, list):
                out.append(park(item.delivery, self.name, "status batch without a list of reports"))
                continue
            for report in batch:
                why = _problem(report) if isinstance(report, dict) else "a report is not a JSON object"
                if why:  # park just the bad report, keep the rest of the batch
                    out.append(park(replace(item.delivery, body=dumps(report)), self.name, why))
                else:
                    reports.append(report)
        statuses = [r for r in reports if r.get("kind") != DLR_KIND]
        if statuses:
            out += self.record(statuses)
        out += self.record_dlr([r for r in reports if r.get("kind") == DLR_KIND], statuses)
        return out

    def _opted_in(self, fields: dict[str, Any]) -> bool:
        op = self.cache.operator(str(fields.get("operator_code") or ""))
        return op is not None and op.feedback_messages

    def record_dlr(self, reports: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> list[Outgoing]:
        """Apply delivery reports, then those that waited for the sent reports just recorded (and,
        every ``SWEEP_SECONDS``, every waiting one); the feedback their outcomes make."""
        now = timezone.now()
        applied = dlr.apply(reports, now)[0] if reports else []
        sent_ids = [str(r.get("gateway_message_id") or "") for r in statuses if r["state"] == "sent"]
        applied += dlr.retry_pending(sent_ids, now)
        if time.monotonic() - self._swept >= SWEEP_SECONDS:
            self._swept = time.monotonic()
            applied += dlr.retry_pending([], now, expire_after=self.settings.dlr_pending_hours * 3600)
        if not applied:
            return []
        found = [feedback.Candidate(str(a.row["id"]), a.row, str(a.report.get("reason") or a.state),
                                    "number-invalid")
                 for a in applied if a.state == "undelivered" and a.report.get("fault") == "recipient"]
        with transaction.atomic():
            out = feedback.contact_findings(found, now)
        out += feedback.message_events(
            [(str(a.row["id"]), a.row, a.state, str(a.report.get("reason") or ""), str(a.report.get("fault") or ""))
             for a in applied if self._opted_in(a.row)], now)
        return out

    def _newly_failed(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Failed reports of opted-in operators whose row is not failed yet (message.failed once)."""
        from msgd.store.models import Message

        wanted = [r for r in reports if r["state"] == FAILED and self._opted_in(r.get("message") or {})]
        if not wanted:
            return []
        done = {str(i) for i in Message.objects.filter(id__in=[r["message_id"] for r in wanted], state=FAILED)
                .values_list("id", flat=True)}
        return [r for r in wanted if str(uuid.UUID(str(r["message_id"]))) not in done]

    def record(self, reports: list[dict[str, Any]]) -> list[Outgoing]:
        """Merge status reports into the log; returns the feedback events they make."""
        now = timezone.now()
        newly_failed = self._newly_failed(reports)
        rows: dict[str, list[Any]] = {}
        attempts: dict[tuple[Any, int, str], tuple[Any, ...]] = {}
        when = sql.when_adapter()
        stamped = when(now)
        for report in reports:
            msg = report.get("message") or {}
            at = _when(report.get("at"), now)
            # Text a gateway or an error put in a report is stored with NUL and lone surrogates
            # replaced (msgd.storable): PostgreSQL refuses them, and the report must not be lost.
            # Most reports hold none (one orjson pass tells): their text is kept as it is.
            clean = surely_storable(report)
            keep = _as_is if clean else storable
            state, reason = report["state"], keep(str(report.get("reason") or ""))
            mid = sql.uid(report["message_id"])
            attempt = int(report.get("attempt") or 0)
            tid = msg.get("template_id")
            details = report.get("details") or {}
            copied = [str(msg.get(c) or "")[:limit] for c, limit in _COPIED_LIMITS]
            row = [
                mid, *(copied if clean else map(storable, copied)),
                int(tid) if tid is not None else None, state, reason, _fault(report), _code(report), attempt,
                keep(str(report.get("gateway_message_id") or "")[:200]),
                _json_text(details) if clean else json.dumps(storable_json(details)),
                when(_when(msg.get("created_at"), at)), stamped,
                when(at) if state in FINAL_STATES else None,
                _settings_id(report),
            ]
            key = str(report["message_id"])
            rows[key] = _fold(rows[key], row) if key in rows else row
            if state in (DELAYED, RETRYING) or (state in FINAL_STATES and attempt):
                attempts.setdefault((mid, attempt, state), (mid, attempt, state, reason, _code(report),
                                                            when(at), report.get("seconds")))
        with transaction.atomic():
            sql.insert_many(UPSERT_HEAD, VALUES, UPSERT_TAIL, list(rows.values()))
            sql.insert_many(ATTEMPT_HEAD, ["%s"] * 7, ATTEMPT_TAIL, list(attempts.values()))
            out = feedback.contact_findings(feedback.candidates_from_reports(reports), now)
        return out + feedback.message_events(
            [(str(r["message_id"]), r.get("message") or {}, FAILED, str(r.get("reason") or ""), _fault(r))
             for r in newly_failed], now)


_COPIED_LIMITS = tuple((c, LIMITS.get(c, 100_000)) for c in COPIED)
# json.dumps's own C encoder (its defaults: ASCII, ", " and ": "), made once instead of per call.
# Without the circular-reference check: only for details surely_storable passed, which orjson
# wrote, so they hold no cycle.
_C_ENCODER = c_make_encoder and c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None,
                                               ": ", ", ", False, False, True)


def _json_text(details: Any) -> str:
    """``json.dumps(details)`` for details that hold no cycle."""
    if _C_ENCODER is None:  # an interpreter without the _json accelerator
        return json.dumps(details)
    if isinstance(details, str):
        return encode_basestring_ascii(details)
    return "".join(_C_ENCODER(details, 0))


def _as_is(text: str) -> str:
    """``storable`` for text known to hold neither NUL nor a lone surrogate (``surely_storable``:
    ``str()`` of a number, list or dict escapes both, so no field converted to text holds one)."""
    return text


def _settings_id(report: dict[str, Any]) -> int | None:
    sid = report.get("settings_id")
    return sid if isinstance(sid, int) and not isinstance(sid, bool) and 0 < sid < 2**31 else None


_EVENT_ID, _STATE, _REASON, _FAULT, _CODE, _ATTEMPTS, _GATEWAY, _FINISHED, _DETAILS, _SETTINGS = (
    COLUMNS.index(c) for c in ("event_id", "state", "reason", "fault", "reason_code", "attempts",
                               "gateway_message_id", "finished_at", "details", "settings_id"))


def _fault(report: dict[str, Any]) -> str:
    """The fault class a report gives a failed message (``unknown`` from a sender that predates
    fault classes); empty for every other state."""
    if report["state"] != FAILED:
        return ""
    fault = str(report.get("fault") or "")
    return fault if fault in FAULTS else FAULT_UNKNOWN


def _code(report: dict[str, Any]) -> str:
    """The reason code of a failed report (its fault class's when a sender that predates codes
    gave none) or of a retried attempt; empty for every other state."""
    code = str(report.get("code") or "")
    if report["state"] == FAILED:
        return code_for(code, _fault(report))
    return code if report["state"] == RETRYING and code in REASONS else ""


def _fold(old: list[Any], new: list[Any]) -> list[Any]:
    """Merge two reports of one message in a batch by the rules the upsert applies to stored rows."""
    out = [o if o not in ("", None) else n for o, n in zip(old, new, strict=True)]
    if old[_EVENT_ID] in _NO_EVENT_ID:
        out[_EVENT_ID] = new[_EVENT_ID]
    cur = STATE_RANK.get(old[_STATE], _FINAL_RANK)
    nxt = STATE_RANK.get(new[_STATE], _FINAL_RANK)
    applied = old
    if cur < _FINAL_RANK and nxt >= cur:
        applied = new
    for i in (_STATE, _REASON, _FAULT, _CODE, _FINISHED):
        out[i] = applied[i]
    out[_ATTEMPTS] = max(old[_ATTEMPTS], new[_ATTEMPTS])
    out[_GATEWAY] = new[_GATEWAY] or old[_GATEWAY]
    out[_DETAILS] = new[_DETAILS] if new[_DETAILS] != "{}" else old[_DETAILS]
    out[_SETTINGS] = new[_SETTINGS] if new[_SETTINGS] is not None else old[_SETTINGS]
    return out
