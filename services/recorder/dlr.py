"""Delivery reports (DLR) in the message log: ``sent`` moves on to ``delivered`` / ``undelivered``.

A report (schemas/dlr.v1.json) names its message by msgd's id (the dlr stage) or by the
gateway's id within a channel settings slot (callbacks: the slot is in the URL the gateway
calls). Rules, in the order they are checked:

* the message's row is ``sent``: it takes the report's state, reason and fault, ``dlr_at`` is the
  report's time, and the history gains a row for it (once: a report that comes twice finds the
  state already taken and is counted ``duplicate``);
* the row shows a delivery report already: the first one stays (a later, different one is kept in
  the history and counted ``ignored``);
* the row is in another final state (``failed``, ``suppressed``...): that state stays, the report
  joins the history (``ignored``): a failure msgd decided is not rewritten by a gateway's late word;
* no row carries the id yet, or the row is still on its way (``queued``, ``retrying``): the report
  waits in ``msgd_pendingreport`` and is applied when the ``sent`` report arrives (``pending``); one
  that waited ``MSGD_DLR_PENDING_HOURS`` is dropped (``unmatched``): an id msgd never sent;
* ``none`` (the dlr stage gave up asking): a ``sent`` message keeps its state with the reason
  "no delivery report ...".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q

from msgd import metrics
from msgd.envelope import (
    DELIVERED,
    DLR_NO_REPORT,
    DLR_STATES,
    FAULT_RECIPIENT,
    FAULTS,
    FINAL_STATES,
    SENT,
    UNDELIVERED,
)
from msgd.reasons import REASONS, code_for
from msgd.storable import storable
from msgd.store import sql

# The log's columns a report is matched and applied with.
_ROW = ("id", "state", "finished_at", "channel", "recipient", "operator_code", "abonent_id", "event_id",
        "attempts", "gateway_message_id", "settings_id", "created_at")
_HISTORY = ("INSERT INTO msgd_attempt (message_id, number, state, reason, at, seconds) VALUES ",
            " ON CONFLICT (message_id, number, state) DO NOTHING")
_PENDING = ("INSERT INTO msgd_pendingreport (settings_id, operator_code, gateway_message_id, state, report,"
            " received_at) VALUES ", " ON CONFLICT (settings_id, gateway_message_id, state) DO NOTHING")


@dataclass
class Applied:
    """A report that moved a ``sent`` message to ``state`` (what feedback and metrics need)."""

    report: dict[str, Any]
    row: dict[str, Any]
    state: str


def problem(report: dict[str, Any]) -> str | None:
    """Why a DLR report cannot be applied, or None."""
    if report.get("state") not in (*DLR_STATES, DLR_NO_REPORT):
        return f"unknown delivery report state {report.get('state')!r}"
    mid = report.get("message_id")
    if mid:
        try:
            uuid.UUID(str(mid))
        except ValueError:
            return f"message_id {mid!r} is not a UUID"
    elif not str(report.get("gateway_message_id") or "").strip():
        return "a delivery report without the gateway's message id or msgd's"
    sid = report.get("settings_id")
    if sid is not None and (isinstance(sid, bool) or not isinstance(sid, int)):
        return f"settings_id {sid!r} is not a number"
    return None


def _when(value: Any, default: dt.datetime) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _gid(report: dict[str, Any]) -> str:
    return storable(str(report.get("gateway_message_id") or "").strip()[:200])


def _rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from msgd.store.models import Message

    ids = [str(r["message_id"]) for r in reports if r.get("message_id")]
    gids = list({_gid(r) for r in reports if not r.get("message_id")})
    if not ids and not gids:
        return []
    return list(Message.objects.filter(Q(id__in=ids) | Q(gateway_message_id__in=gids)).values(*_ROW))


def _match(report: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report's message: by msgd's id, else by the gateway's id sent through the report's slot
    (rows logged before slots were recorded: through the report's operator)."""
    if report.get("message_id"):
        want = uuid.UUID(str(report["message_id"]))
        return next((r for r in rows if r["id"] == want), None)
    gid, sid = _gid(report), report.get("settings_id")
    found = [r for r in rows if r["gateway_message_id"] == gid and r["channel"] == "sms"
             and (r["settings_id"] == sid
                  or (r["settings_id"] is None and r["operator_code"] == report.get("operator_code")))]
    return max(found, key=lambda r: r["created_at"]) if found else None


def _reason(report: dict[str, Any]) -> str:
    state, words = report["state"], str(report.get("reason") or "").strip()
    error = str(report.get("error") or "").strip()
    if state == DLR_NO_REPORT:
        return storable(words or "no delivery report")
    said = words or ("the network gave no reason" if state == UNDELIVERED else "")
    code = f" (error {error})" if error and error not in said else ""
    text = f"delivery report: {state}" + (f" — {said}{code}" if said or code else "")
    return storable(text[:4000])


def _fault(report: dict[str, Any]) -> str:
    if report["state"] != UNDELIVERED:
        return ""
    fault = str(report.get("fault") or "")
    return fault if fault in FAULTS else "unknown"


def _code(report: dict[str, Any]) -> str:
    """An ``undelivered`` report's reason code: the report's own, else by its fault class (a
    subscriber's handset the report blames: ``recipient.undelivered``)."""
    if report["state"] != UNDELIVERED:
        return ""
    code, fault = str(report.get("code") or ""), _fault(report)
    if code in REASONS:
        return code
    return "recipient.undelivered" if fault == FAULT_RECIPIENT else code_for("", fault)


def _count(report: dict[str, Any], outcome: str) -> None:
    metrics.DLR_REPORTS.labels(str(report.get("gateway") or "unknown"), report["state"], outcome).inc()


def apply(reports: list[dict[str, Any]], now: dt.datetime) -> tuple[list[Applied], list[dict[str, Any]]]:
    """Apply reports in one transaction; returns (the transitions made, the reports left pending)."""
    applied: list[Applied] = []
    pending: list[dict[str, Any]] = []
    history: dict[tuple[Any, int, str], tuple[Any, ...]] = {}
    with transaction.atomic():
        rows = _rows(reports)
        for report in reports:
            row = _match(report, rows)
            outcome = _apply_one(report, row, now, history, applied)
            if outcome == "pending":
                pending.append(report)
            _count(report, outcome)
        sql.insert_many(*_split(_HISTORY), list(history.values()))
        _keep(pending, now)
    for done in applied:
        if done.state == DELIVERED:
            metrics.DELIVERY_SECONDS.labels(str(done.report.get("gateway") or "unknown")).observe(
                latency(done.row["finished_at"], _when(done.report.get("at"), now)))
    return applied, pending


def latency(sent_at: dt.datetime | None, delivered_at: dt.datetime) -> float:
    """Seconds from msgd's ``sent`` to the report's delivery time, 0 when the report says earlier:
    a gateway's clock in whole seconds (smsc.ru's ``time``) or behind msgd's, or a report that
    overtook the gateway's answer, still counts the delivery (the histogram's count is every
    delivered report applied)."""
    if sent_at is None:
        return 0.0
    return max(0.0, (delivered_at - sent_at).total_seconds())


def _split(pair: tuple[str, str]) -> tuple[str, list[str], str]:
    return pair[0], ["%s"] * 6, pair[1]


def _apply_one(report: dict[str, Any], row: dict[str, Any] | None, now: dt.datetime,
               history: dict[tuple[Any, int, str], tuple[Any, ...]], applied: list[Applied]) -> str:
    from msgd.store.models import Message

    state = report["state"]
    if row is None or (row["state"] not in FINAL_STATES and row["state"] not in DLR_STATES):
        return "pending"
    at = _when(report.get("at"), now)
    reason = _reason(report)
    number = int(row["attempts"] or 0)
    if row["state"] == SENT:
        fields: dict[str, Any] = {"reason": reason, "updated_at": now}
        if state != DLR_NO_REPORT:
            fields.update(state=state, fault=_fault(report), reason_code=_code(report), dlr_at=at)
        if Message.objects.filter(id=row["id"], state=SENT).update(**fields):
            history.setdefault((row["id"], number, state), (sql.uid(row["id"]), number, state, reason,
                                                            sql.when(at), None))
            if state != DLR_NO_REPORT:
                row["state"] = state
                applied.append(Applied(report, row, state))
            return "applied"
        return "duplicate"  # another recorder took it between our read and write
    if row["state"] == state:
        return "duplicate"
    # The log keeps the state it has; the report is kept in the message's history.
    if state != DLR_NO_REPORT:
        history.setdefault((row["id"], number, state), (
            sql.uid(row["id"]), number, state, f"{reason} (not applied: the message is {row['state']})",
            sql.when(at), None))
    return "ignored"


def _keep(pending: list[dict[str, Any]], now: dt.datetime) -> None:
    import json

    rows = {(r.get("settings_id"), _gid(r), r["state"]): (
        r.get("settings_id"), storable(str(r.get("operator_code") or ""))[:64], _gid(r), r["state"],
        json.dumps(r, ensure_ascii=False), sql.when(now)) for r in pending if _gid(r)}
    sql.insert_many(_PENDING[0], ["%s"] * 6, _PENDING[1], list(rows.values()))


def retry_pending(gateway_ids: Iterable[str], now: dt.datetime, *, expire_after: float | None = None
                  ) -> list[Applied]:
    """Apply the waiting reports for these gateway ids (after their ``sent`` reports were
    recorded), or every waiting one when ``gateway_ids`` is empty and ``expire_after`` (seconds) is
    given: then those older than it are dropped as ``unmatched``."""
    from msgd.store.models import PendingReport

    # the same normalisation as the stored ids (NUL refused by PostgreSQL, trimmed, capped)
    gids = [g for g in dict.fromkeys(_gid({"gateway_message_id": i}) for i in gateway_ids) if g]
    if gids:
        waiting = list(PendingReport.objects.filter(gateway_message_id__in=gids))
    elif expire_after is not None:
        waiting = list(PendingReport.objects.order_by("received_at")[:2000])
    else:
        return []
    if not waiting:
        return []
    reports = [dict(p.report) for p in waiting]
    with transaction.atomic():
        rows = _rows(reports)
        matched = [(p, r) for p, r in zip(waiting, reports, strict=True) if _ready(_match(r, rows))]
        PendingReport.objects.filter(id__in=[p.id for p, _ in matched]).delete()
        applied, _ = apply([r for _, r in matched], now) if matched else ([], [])
        if expire_after is not None:
            cutoff = now - dt.timedelta(seconds=expire_after)
            stale = [p for p in waiting if p.received_at < cutoff and p not in {m for m, _ in matched}]
            for p in stale:
                _count(dict(p.report), "unmatched")
            PendingReport.objects.filter(id__in=[p.id for p in stale]).delete()
    return applied


def _ready(row: dict[str, Any] | None) -> bool:
    return row is not None and (row["state"] in FINAL_STATES or row["state"] in DLR_STATES)
