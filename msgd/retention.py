"""Retention: the message log is an audit trail, so old rows leave it only through
``msgd purge --older-than 180d``, which says what it removes: messages created before the
cut-off, their attempts, and the send claims of those messages (or as old). Nothing else."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

BATCH = 2000  # rows per transaction: a large purge never holds one huge lock


@dataclass
class Purged:
    """Counts of what a purge removed (or, dry, would remove)."""

    messages: int = 0
    attempts: int = 0
    claims: int = 0


def purge(cutoff: dt.datetime, *, dry_run: bool = False) -> Purged:
    """Remove message-log rows created before ``cutoff`` (aware), with their attempts and
    claims, in batches of ``BATCH``; a resend whose original is removed keeps its own row
    (its link is cleared). ``dry_run`` counts only."""
    from django.db import transaction
    from django.db.models import Q

    from msgd.store.models import Attempt, Claim, Message

    old = Message.objects.filter(created_at__lt=cutoff)
    if dry_run:
        ids = old.values("id")
        return Purged(messages=old.count(), attempts=Attempt.objects.filter(message_id__in=ids).count(),
                      claims=Claim.objects.filter(Q(message_id__in=ids) | Q(updated_at__lt=cutoff)).count())
    done = Purged()
    while True:
        with transaction.atomic():
            ids = list(old.order_by("created_at").values_list("id", flat=True)[:BATCH])
            if not ids:
                break
            done.claims += Claim.objects.filter(message_id__in=ids).delete()[0]
            # attempts go with their message; a resend's link to a removed original is cleared
            _total, per_model = Message.objects.filter(id__in=ids).delete()
            done.messages += per_model.get(Message._meta.label, 0)
            done.attempts += per_model.get(Attempt._meta.label, 0)
    done.claims += Claim.objects.filter(updated_at__lt=cutoff).delete()[0]  # as old, message never logged
    return done
