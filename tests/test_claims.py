"""The atomic claim: one sender per message and attempt, whatever the redeliveries."""

from __future__ import annotations

import threading
import uuid

import pytest

pytestmark = pytest.mark.store


def test_only_one_of_two_claims_sends(db: str) -> None:
    """Both copies may reserve in turn, but only one of them can start (send) the message."""
    from services.senders import claims

    mid = str(uuid.uuid4())
    owner_a, rows_a = claims.claim([(mid, 1)])
    owner_b, rows_b = claims.claim([(mid, 1)])
    assert rows_a[mid].owner == owner_a
    started = [claims.progress(owner_b, [], [mid]), claims.progress(owner_a, [], [mid])]
    assert started == [{mid}, set()]


def test_retry_attempt_claims_only_after_the_previous_attempt_released(db: str) -> None:
    from services.senders import claims

    mid = str(uuid.uuid4())
    first, _ = claims.claim([(mid, 1)])
    claims.progress(first, [], [mid])
    owner, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner != owner, "attempt 2 claimed while attempt 1 was still sending"
    claims.finish([claims.Finish(mid, claims.RETRY, "retrying", "503")])
    owner, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner == owner and rows[mid].attempt == 2
    assert claims.progress(owner, [], [mid]) == {mid}
    other, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner == owner != other


def test_concurrent_claims_from_threads_have_one_winner(db: str) -> None:
    """Four senders reserve and start the same 50 messages at once: each starts exactly once."""
    from django.db import connection

    from services.senders import claims

    ids = [str(uuid.uuid4()) for _ in range(50)]
    wins: list[set[str]] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            owner, rows = claims.claim([(m, 1) for m in ids])
            started = claims.progress(owner, [], [m for m, r in rows.items() if r.owner == owner])
            with lock:
                wins.append(started)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_wins = [m for w in wins for m in w]
    assert sorted(all_wins) == sorted(ids)


def test_a_reservation_never_started_is_taken_over_and_its_holder_cannot_start_it(db: str) -> None:
    """A batch reserved the message and its sender died before the request: the next copy takes
    the claim at once; the old holder, were it still alive, can no longer start it."""
    from msgd.store.models import Claim
    from services.senders import claims

    mid = str(uuid.uuid4())
    dead, _ = claims.claim([(mid, 1)])
    assert Claim.objects.get(message_id=mid).state == claims.RESERVED
    owner, rows = claims.claim([(mid, 1)])
    assert rows[mid].owner == owner != dead
    assert claims.progress(dead, [], [mid]) == set(), "the old holder started a message taken from it"
    assert claims.progress(owner, [], [mid]) == {mid}
    assert Claim.objects.get(message_id=mid).state == claims.SENDING


def test_a_started_message_is_never_taken_over(db: str) -> None:
    from services.senders import claims

    mid = str(uuid.uuid4())
    first, _ = claims.claim([(mid, 1)])
    assert claims.progress(first, [], [mid]) == {mid}
    owner, rows = claims.claim([(mid, 1)])
    assert rows[mid].owner == first and rows[mid].state == claims.SENDING
    assert claims.progress(owner, [], [mid]) == set()


def test_progress_records_outcomes_and_starts_the_next_wave_together(db: str) -> None:
    from msgd.store.models import Claim
    from services.senders import claims

    ids = [str(uuid.uuid4()) for _ in range(6)]
    owner, _ = claims.claim([(m, 1) for m in ids])
    assert claims.progress(owner, [], ids[:3]) == set(ids[:3])
    done = [claims.Finish(ids[0], claims.DONE, "sent", "OK", "gw-1"),
            claims.Finish(ids[1], claims.RETRY, "retrying", "503")]
    assert claims.progress(owner, done, ids[3:5]) == set(ids[3:5])
    state = {str(r.message_id): (r.state, r.outcome, r.gateway_message_id) for r in Claim.objects.all()}
    assert state[ids[0]] == ("done", "sent", "gw-1")
    assert state[ids[1]][0] == "retry"
    assert [state[m][0] for m in ids[2:]] == ["sending", "sending", "sending", "reserved"]


def test_a_write_of_one_statement_commits_on_its_own_and_several_share_one_transaction() -> None:
    """A password reset's claim, start and outcome are one statement each: no BEGIN and COMMIT
    round trips around them; a batch's several statements still commit once."""
    from django.db.transaction import Atomic

    from msgd.store import sql
    from services.senders.claims import _together

    assert not isinstance(_together(1, 1), Atomic)
    assert not isinstance(_together(1, sql.INSERT_CHUNK), Atomic)
    assert isinstance(_together(2, 1), Atomic)
    assert isinstance(_together(1, sql.INSERT_CHUNK + 1), Atomic), "a multi-row INSERT over one chunk is two statements"
