"""msgd.store.sql: the multi-row upsert writes the same rows on both backends (PostgreSQL sends it
over arrays), across chunks, with awkward text and the conflict clause; errors are Django's.
(A placeholder inside a sub-select: tests/test_recorder.py, a report for a deleted template.)"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

pytestmark = pytest.mark.store

HEAD = "INSERT INTO msgd_claim (message_id, state, attempt, owner, outcome, reason, gateway_message_id, fault," \
       " updated_at) VALUES "
TAIL = " ON CONFLICT (message_id) DO UPDATE SET reason = excluded.reason"


def _row(mid: uuid.UUID, reason: str, when: dt.datetime) -> tuple[object, ...]:
    from msgd.store import sql

    return (sql.uid(mid), "done", 2, "owner-1", "sent", reason, "", "", sql.when(when))


def test_rows_in_several_chunks_are_all_written_and_conflicts_update(db: str) -> None:
    from msgd.store import sql
    from msgd.store.models import Claim

    when = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    ids = [uuid.uuid4() for _ in range(7)]
    texts = ["Баланс −12,50 ₽", "quote ' and \" and \\ and {braces}, commas", "", "NULL", "a\tb\nc", "😀", "x" * 5000]
    sql.insert_many(HEAD, ["%s"] * 9, TAIL, [_row(m, t, when) for m, t in zip(ids, texts, strict=True)], chunk=3)
    stored = {r.message_id: r for r in Claim.objects.all()}
    assert [stored[m].reason for m in ids] == texts
    assert {(r.state, r.attempt, r.owner, r.updated_at) for r in stored.values()} == {("done", 2, "owner-1", when)}
    sql.insert_many(HEAD, ["%s"] * 9, TAIL, [_row(ids[0], "second", when)])
    assert Claim.objects.get(message_id=ids[0]).reason == "second"
    assert Claim.objects.count() == 7


def test_a_failing_statement_raises_djangos_error_and_rolls_back(db: str) -> None:
    from django.db import IntegrityError, transaction

    from msgd.store import sql
    from msgd.store.models import Claim

    when = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    mid = uuid.uuid4()
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert_many(HEAD, ["%s"] * 9, "", [_row(uuid.uuid4(), "first", when)])
        sql.insert_many(HEAD, ["%s"] * 9, "", [_row(mid, "a", when), _row(mid, "b", when)])  # same key twice
    assert Claim.objects.count() == 0
