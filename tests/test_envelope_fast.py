"""Message ids and timestamps written without ``uuid.UUID`` and ``datetime`` per call equal theirs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from msgd import envelope

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@settings(max_examples=500, deadline=None)
@given(st.text(), st.one_of(st.none(), st.integers()), st.one_of(st.none(), st.text(max_size=8)), st.text())
def test_message_and_outcome_ids_equal_uuid5(event_id: str, tid: int | None, channel: str | None,
                                             tail: str) -> None:
    for made, name in ((envelope.message_id, f"{event_id}|{tid}|{channel}|{tail}"),
                       (envelope.outcome_id, f"{event_id}|{tid}|{channel}|-|{tail}")):
        try:
            expected: str | type[Exception] = str(uuid.uuid5(envelope.NAMESPACE, name))
        except UnicodeEncodeError:  # a lone surrogate: both refuse it
            expected = UnicodeEncodeError
        try:
            got: str | type[Exception] = made(event_id, tid, channel, tail)
        except UnicodeEncodeError:
            got = UnicodeEncodeError
        assert got == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(min_value=0, max_value=253402300799 * 10**9),  # to 9999-12-31T23:59:59
                 st.integers(min_value=1_700_000_000, max_value=1_900_000_000).map(lambda s: s * 10**9),
                 st.integers(min_value=1_700_000_000 * 10**6, max_value=1_900_000_000 * 10**6).map(
                     lambda us: us * 1000 + 999)))
def test_iso_of_ns_equals_isoformat(ns: int) -> None:
    assert envelope.iso_of_ns(ns) == (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat()
    assert envelope.iso_of_ns(ns) == (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat()  # cached second


def test_now_iso_reads_the_clock_datetime_now_reads() -> None:
    before = datetime.now(UTC)
    now = datetime.fromisoformat(envelope.now_iso())
    assert before <= now <= datetime.now(UTC)
