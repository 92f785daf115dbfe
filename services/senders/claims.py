"""The atomic claim per message (event, template, channel, recipient).

A sender must hold the claim for attempt N before it contacts the far side,
so a redelivered message or a duplicate publish is never sent twice.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from msgd.store.models import Claim

SENDING, RETRY, DONE = "sending", "retry", "done"


@dataclass
class Finish:
    message_id: str
    state: str  # RETRY or DONE
    outcome: str = ""
    reason: str = ""
    gateway_message_id: str = ""


def claim(wanted: list[tuple[str, int]]) -> tuple[str, dict[str, Claim]]:
    """Try to claim (message_id, attempt) pairs; returns our owner token and every row.

    A pair is ours when its row's owner is the returned token.
    """
    owner = uuid.uuid4().hex
    now = timezone.now()
    by_attempt: dict[int, list[str]] = defaultdict(list)
    for mid, attempt in wanted:
        by_attempt[attempt].append(mid)
    with transaction.atomic():
        firsts = by_attempt.pop(1, [])
        if firsts:
            Claim.objects.bulk_create(
                [Claim(message_id=m, state=SENDING, attempt=1, owner=owner, updated_at=now) for m in firsts],
                ignore_conflicts=True,
            )
        for attempt, mids in by_attempt.items():
            Claim.objects.filter(message_id__in=mids, state=RETRY, attempt=attempt - 1).update(
                state=SENDING, attempt=attempt, owner=owner, updated_at=now
            )
    rows = Claim.objects.filter(message_id__in=[m for m, _ in wanted])
    return owner, {str(r.message_id): r for r in rows}


def finish(done: list[Finish]) -> None:
    if not done:
        return
    now = timezone.now()
    rows = [
        Claim(message_id=f.message_id, state=f.state, outcome=f.outcome, reason=f.reason[:4000],
              gateway_message_id=f.gateway_message_id[:200], updated_at=now)
        for f in done
    ]
    Claim.objects.bulk_update(rows, ["state", "outcome", "reason", "gateway_message_id", "updated_at"])
