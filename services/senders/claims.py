"""The atomic claim per message (event, template, channel, recipient).

A sender must hold the claim for attempt N before it contacts the far side,
so a redelivered message or a duplicate publish is never sent twice.

A row's ``state`` (``msgd_claim.state``):

``reserved``
    A batch holds it (``owner``) but has not contacted the far side yet.  It
    may be taken over at any time by another copy of the same attempt (a
    batch redelivered after its sender died): the holder starts a message
    only through :func:`progress`, whose UPDATE requires the row to be still
    reserved *by it*, so a message taken from it is never sent by it.
``sending``
    Its request may be in flight.  Nobody else sends it; when the holder
    vanishes, the outcome is unknown after the lease (services/senders/stage.py).
``retry``
    Attempt N failed transiently; attempt N+1 may be claimed.
``done``
    Final, with ``outcome``, ``reason``, the gateway's message id and the ``fault`` class
    of a failure (a redelivered message reports all of them again).

Every statement is plain SQL that PostgreSQL and SQLite run alike (no
``RETURNING``, which SQLite has only since 3.35).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from msgd.storable import storable
from msgd.store import sql
from msgd.store.models import Claim

RESERVED, SENDING, RETRY, DONE = "reserved", "sending", "retry", "done"


@dataclass
class Finish:
    message_id: str
    state: str  # RETRY or DONE
    outcome: str = ""
    reason: str = ""
    gateway_message_id: str = ""
    fault: str = ""  # the fault class of a failed outcome (msgd/envelope.py FAULTS)
    code: str = ""  # the reason code of a failed outcome (msgd/reasons.py REASONS)


COLUMNS = "(message_id, state, attempt, owner, outcome, reason, gateway_message_id, fault, reason_code, updated_at)"
CLAIM_FIRST = (f"INSERT INTO msgd_claim {COLUMNS} VALUES ", " ON CONFLICT (message_id) DO NOTHING")
CLAIM_NEXT = (
    "UPDATE msgd_claim SET state = 'reserved', attempt = %s, owner = %s, updated_at = %s"
    " WHERE message_id = %s AND state = 'retry' AND attempt = %s"
)
# Compare-and-swap on the old owner: of two copies taking over at once, one wins.
TAKE_OVER = (
    "UPDATE msgd_claim SET owner = %s, updated_at = %s"
    " WHERE message_id = %s AND state = 'reserved' AND attempt = %s AND owner = %s"
)
START = "UPDATE msgd_claim SET state = 'sending', updated_at = %s WHERE owner = %s AND state = 'reserved' AND "
STARTED = "SELECT message_id FROM msgd_claim WHERE owner = %s AND state = 'sending' AND "
ROW_FIELDS = ("message_id", "state", "attempt", "owner", "outcome", "reason", "gateway_message_id", "fault",
              "updated_at")
# The rows exist (we hold their claims): the upsert is a multi-row UPDATE both backends accept.
# Its INSERT half never takes effect, so its values only fill the NOT NULL columns (the attempt
# stays the one claimed, as owner does).
FINISH = (
    f"INSERT INTO msgd_claim {COLUMNS} VALUES ",
    " ON CONFLICT (message_id) DO UPDATE SET state = excluded.state, outcome = excluded.outcome,"
    " reason = excluded.reason, gateway_message_id = excluded.gateway_message_id, fault = excluded.fault,"
    " reason_code = excluded.reason_code, updated_at = excluded.updated_at",
)
PLACEHOLDERS = ["%s"] * 10


def claim(wanted: list[tuple[str, int]]) -> tuple[str, dict[str, Claim]]:
    """Reserve (message_id, attempt) pairs; returns our owner token and every row by message id.

    A pair is ours when its row's owner is the returned token: attempt 1 by inserting the row,
    attempt N by moving it from ``retry`` of attempt N-1, or either by taking over a row another
    batch reserved for the same attempt and never started.  Ours are ``reserved``: start them
    with :func:`progress` just before their requests.
    """
    owner = uuid.uuid4().hex
    now = sql.when(timezone.now())
    firsts = {sql.uid(m): (sql.uid(m), RESERVED, 1, owner, "", "", "", "", "", now) for m, a in wanted if a == 1}
    nexts = [(a, owner, now, sql.uid(m), a - 1) for m, a in wanted if a > 1]
    with _together(bool(firsts) + len(nexts), len(firsts)):
        sql.insert_many(CLAIM_FIRST[0], PLACEHOLDERS, CLAIM_FIRST[1], list(firsts.values()))
        sql.executemany(CLAIM_NEXT, nexts)
    rows = _rows([m for m, _ in wanted])
    attempts = dict(wanted)
    orphans = [r for m, r in rows.items()
               if r.state == RESERVED and r.owner != owner and r.attempt == attempts[m]]
    if orphans:  # reserved by a batch that never started them (its sender died, or a duplicate)
        sql.executemany(TAKE_OVER, [(owner, now, sql.uid(r.message_id), r.attempt, r.owner) for r in orphans])
        rows.update(_rows([str(r.message_id) for r in orphans]))
    return owner, rows


def _rows(ids: list[str]) -> dict[str, Claim]:
    """The rows by message id. On PostgreSQL one plain statement over an array (the ORM's
    query with a placeholder per id cost more than the query); psycopg gives UUIDs and aware
    datetimes as the ORM would."""
    if not ids:
        return {}
    if not sql.postgres():
        return {str(r.message_id): r for r in Claim.objects.filter(message_id__in=ids)}
    where, params = sql.in_list("message_id", [sql.uid(m) for m in ids])
    with sql.cursor() as cur:
        cur.execute(f"SELECT {', '.join(ROW_FIELDS)} FROM msgd_claim WHERE {where}", params)
        found = cur.fetchall()
    rows = [Claim.from_db("default", ROW_FIELDS, list(values)) for values in found]
    return {str(r.message_id): r for r in rows}


def rows(ids: Sequence[str]) -> dict[str, Claim]:
    """The current rows of these messages, by message id (absent when never claimed)."""
    return _rows(list(ids))


def progress(owner: str, done: list[Finish], starting: Sequence[str]) -> set[str]:
    """One transaction: record finished outcomes, then mark ``starting`` (reserved by ``owner``)
    as ``sending``. Returns the message ids started: those still reserved by ``owner``; one
    taken over by another sender is not among them and must not be sent."""
    if not done and not starting:
        return set()
    now = sql.when(timezone.now())
    started: set[str] = set()
    with _together(bool(done) + bool(starting), len(done)):
        _finish(done, now)
        if starting:
            ids = [sql.uid(m) for m in starting]
            where, params = sql.in_list("message_id", ids)
            with sql.cursor() as cur:
                cur.execute(START + where, [now, owner, *params])
                if cur.rowcount == len(ids):
                    started = set(starting)
                else:
                    cur.execute(STARTED + where, [owner, *params])
                    found = {uuid.UUID(str(v)) for (v,) in cur.fetchall()}
                    started = {m for m in starting if uuid.UUID(m) in found}
    return started


def finish(done: list[Finish]) -> None:
    """Record final (or retry) outcomes in one transaction."""
    if not done:
        return
    with _together(1, len(done)):  # one commit for the batch, not one per message
        _finish(done, sql.when(timezone.now()))


def _together(statements: int, rows: int) -> contextlib.AbstractContextManager[object]:
    """One transaction around writes that take several statements (one commit for them all);
    a single statement commits on its own, two round trips (BEGIN, COMMIT) sooner: a password
    reset's claim, start and outcome are one statement each. ``rows`` of a multi-row INSERT
    over ``sql.insert_many``'s chunk are more than one statement."""
    if statements > 1 or rows > sql.INSERT_CHUNK:
        atomic: contextlib.AbstractContextManager[object] = transaction.atomic()
        return atomic
    return contextlib.nullcontext()


def _finish(done: list[Finish], now: object) -> None:
    values = {
        sql.uid(f.message_id): (sql.uid(f.message_id), f.state, 0, "", f.outcome, storable(f.reason[:4000]),
                                storable(f.gateway_message_id[:200]), f.fault, f.code, now)
        for f in done
    }
    sql.insert_many(FINISH[0], PLACEHOLDERS, FINISH[1], list(values.values()))
