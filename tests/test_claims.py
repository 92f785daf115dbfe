"""The atomic claim: one sender per message and attempt, whatever the redeliveries."""

from __future__ import annotations

import threading
import uuid

import pytest

pytestmark = pytest.mark.store


def test_only_one_of_two_claims_wins(db: str) -> None:
    from services.senders import claims

    mid = str(uuid.uuid4())
    owner_a, rows_a = claims.claim([(mid, 1)])
    owner_b, rows_b = claims.claim([(mid, 1)])
    assert rows_a[mid].owner == owner_a
    assert rows_b[mid].owner != owner_b


def test_retry_attempt_claims_only_after_the_previous_attempt_released(db: str) -> None:
    from services.senders import claims

    mid = str(uuid.uuid4())
    claims.claim([(mid, 1)])
    owner, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner != owner, "attempt 2 claimed while attempt 1 was still sending"
    claims.finish([claims.Finish(mid, claims.RETRY, "retrying", "503")])
    owner, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner == owner and rows[mid].attempt == 2
    owner, rows = claims.claim([(mid, 2)])
    assert rows[mid].owner != owner


def test_concurrent_claims_from_threads_have_one_winner(db: str) -> None:
    from django.db import connection

    from services.senders import claims

    ids = [str(uuid.uuid4()) for _ in range(50)]
    wins: list[set[str]] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            owner, rows = claims.claim([(m, 1) for m in ids])
            with lock:
                wins.append({m for m, r in rows.items() if r.owner == owner})
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_wins = [m for w in wins for m in w]
    assert sorted(all_wins) == sorted(ids)
