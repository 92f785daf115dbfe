"""The atomic claim per message (event, template, channel, recipient).

A sender must hold the claim for attempt N before it contacts the far side,
so a redelivered message or a duplicate publish is never sent twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from msgd.storable import storable
from msgd.store import sql
from msgd.store.models import Claim

SENDING, RETRY, DONE = "sending", "retry", "done"


@dataclass
class Finish:
    message_id: str
    state: str  # RETRY or DONE
    outcome: str = ""
    reason: str = ""
    gateway_message_id: str = ""


COLUMNS = "(message_id, state, attempt, owner, outcome, reason, gateway_message_id, updated_at)"
CLAIM_FIRST = (f"INSERT INTO msgd_claim {COLUMNS} VALUES ", " ON CONFLICT (message_id) DO NOTHING")
CLAIM_NEXT = (
    "UPDATE msgd_claim SET state = 'sending', attempt = %s, owner = %s, updated_at = %s"
    " WHERE message_id = %s AND state = 'retry' AND attempt = %s"
)
# The rows exist (we hold their claims): the upsert is a multi-row UPDATE both backends accept.
# Its INSERT half never takes effect, so its values only fill the NOT NULL columns (the attempt
# stays the one claimed, as owner does).
FINISH = (
    f"INSERT INTO msgd_claim {COLUMNS} VALUES ",
    " ON CONFLICT (message_id) DO UPDATE SET state = excluded.state, outcome = excluded.outcome,"
    " reason = excluded.reason, gateway_message_id = excluded.gateway_message_id, updated_at = excluded.updated_at",
)
PLACEHOLDERS = ["%s"] * 8


def claim(wanted: list[tuple[str, int]]) -> tuple[str, dict[str, Claim]]:
    """Try to claim (message_id, attempt) pairs; returns our owner token and every row.

    A pair is ours when its row's owner is the returned token: attempt 1 by
    inserting the row, attempt N by moving it from ``retry`` of attempt N-1.
    """
    owner = uuid.uuid4().hex
    now = sql.when(timezone.now())
    firsts = {sql.uid(m): (sql.uid(m), SENDING, 1, owner, "", "", "", now) for m, a in wanted if a == 1}
    with transaction.atomic():
        sql.insert_many(CLAIM_FIRST[0], PLACEHOLDERS, CLAIM_FIRST[1], list(firsts.values()))
        sql.executemany(CLAIM_NEXT, [(a, owner, now, sql.uid(m), a - 1) for m, a in wanted if a > 1])
    rows = Claim.objects.filter(message_id__in=[m for m, _ in wanted])
    return owner, {str(r.message_id): r for r in rows}


def finish(done: list[Finish]) -> None:
    if not done:
        return
    now = sql.when(timezone.now())
    rows = {
        sql.uid(f.message_id): (sql.uid(f.message_id), f.state, 0, "", f.outcome, storable(f.reason[:4000]),
                                storable(f.gateway_message_id[:200]), now)
        for f in done
    }
    with transaction.atomic():  # one commit for the batch, not one per message
        sql.insert_many(FINISH[0], PLACEHOLDERS, FINISH[1], list(rows.values()))
