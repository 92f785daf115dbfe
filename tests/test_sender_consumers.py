"""A sender process works on several batches at once (MSGD_SENDER_CONSUMERS): its consumers share
one configuration snapshot, one sender (event loop, connection pool) and split the concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from msgd.settings import Settings
from tests import seed

pytestmark = pytest.mark.store


def test_threads_reading_a_fresh_snapshot_at_once_all_see_the_configuration(db: str) -> None:
    from django.db import connections

    from msgd.store.cache import ConfigCache

    seed.operator()
    seed.template()
    for _ in range(5):  # a race shows itself in some rounds, not all
        cache = ConfigCache(60)
        start = threading.Barrier(8)
        seen: list[object] = []

        def read(cache: ConfigCache = cache, start: threading.Barrier = start, seen: list[object] = seen) -> None:
            try:
                start.wait(5)
                seen.append((cache.operator("best") is not None, len(cache.templates_for("low_balance"))))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert seen == [(True, 1)] * 8, "a thread saw the snapshot before it was loaded"


def test_consumers_share_the_sender_the_snapshot_and_the_concurrency(db: str, tmp_path: Path) -> None:
    from services.senders.stage import SenderStage

    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_SENDER_CONCURRENCY": "10"})
    first = SenderStage(settings, "sms")
    try:
        stages = first.consumers(3)
        assert stages[0] is first
        assert {id(s.sender) for s in stages} == {id(first.sender)}
        assert {id(s.cache) for s in stages} == {id(first.cache)}
        assert {id(s.slots) for s in stages} == {id(first.slots)}
        assert first.slots.free() == 10 and first.slots.free(fast=True) == 12  # 2 more for the fast lane
    finally:
        first.close()


def test_slots_are_shared_and_a_batch_with_nothing_in_flight_waits_for_one() -> None:
    from services.senders.jobs import Slots

    slots = Slots(3)
    assert slots.take(2, wait=False) == 2
    assert slots.take(5, wait=False) == 1  # only what is free
    assert slots.take(5, wait=False) == 0
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(slots.take(2, wait=True)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not got, "nothing free: it waits"
    slots.give(2)
    waiter.join(5)
    assert got == [2]
    slots.give(3)
    assert slots.free() == 3


def test_settings_default_to_two_consumers() -> None:
    assert Settings.from_env({}).sender_consumers == 2
    assert Settings.from_env({"MSGD_SENDER_CONSUMERS": "4"}).sender_consumers == 4


def test_each_lane_has_its_own_consumer_on_rabbitmq_and_one_consumer_takes_both_embedded(
        db: str, tmp_path: Path) -> None:
    from msgd.runner import consumers
    from services.router.stage import RouterStage
    from services.senders.stage import SenderStage

    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_SENDER_CONSUMERS": "2"})
    router = RouterStage(settings)
    assert consumers("router", router, ["r.tx", "r.bulk"], settings, embedded=False) == [
        (router, ["r.tx"]), (router, ["r.bulk"])]
    assert consumers("router", router, ["r.tx", "r.bulk"], settings, embedded=True) == [
        (router, ["r.tx", "r.bulk"])]
    sender = SenderStage(settings, "sms")
    try:
        plan = consumers("sender", sender, ["s.tx", "s.bulk"], settings, embedded=False)
        assert [taken for _, taken in plan] == [["s.tx"], ["s.bulk"], ["s.bulk"]]
        assert plan[0][0] is sender and {id(one.slots) for one, _ in plan} == {id(sender.slots)}
    finally:
        sender.close()


def test_slots_kept_for_the_fast_lane_are_never_taken_by_a_bulk_batch() -> None:
    from services.senders.jobs import Slots

    slots = Slots(4, reserved=1)
    assert slots.free() == 3 and slots.free(fast=True) == 4
    assert slots.take(10, wait=False) == 3, "bulk takes all but the reserved slot"
    assert slots.take(1, wait=False) == 0
    assert slots.free() == 0 and slots.free(fast=True) == 1
    assert slots.take(5, wait=True, fast=True) == 1, "the fast lane finds its slot without waiting"
    assert slots.take(1, wait=False, fast=True) == 0
    slots.give(4)
    assert slots.take(10, wait=False, fast=True) == 4, "the fast lane may take every free slot"
    slots.give(4)


def test_reserved_slots_leave_at_least_one_for_bulk_and_come_from_the_settings(db: str, tmp_path: Path) -> None:
    from services.senders.jobs import Slots
    from services.senders.stage import SenderStage

    assert Slots(1, reserved=2).reserved == 0 and Slots(3, reserved=5).reserved == 2
    assert Settings.from_env({}).sender_fast_slots == 2
    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_SENDER_CONCURRENCY": "10",
                                  "MSGD_SENDER_FAST_SLOTS": "3"})
    stage = SenderStage(settings, "sms")
    try:
        assert (stage.slots.limit, stage.slots.reserved) == (13, 3)
    finally:
        stage.close()


def test_the_fast_lane_s_slots_come_on_top_of_the_bulk_concurrency(tmp_path: Path) -> None:
    """Bulk keeps its whole MSGD_SENDER_CONCURRENCY (a batch of that size goes out in one round
    trip); the fast lane's slots are extra, and the HTTP pool has room for both."""
    from services.senders.stage import SenderStage

    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_SENDER_CONCURRENCY": "200",
                                  "MSGD_SENDER_FAST_SLOTS": "2"})
    stage = SenderStage(settings, "sms")
    try:
        assert stage.slots.free() == 200 and stage.slots.free(fast=True) == 202
        assert stage.sender.http.limit == 202  # type: ignore[attr-defined]
    finally:
        stage.close()


def test_a_batch_takes_a_slot_another_batch_gives_back_while_its_own_requests_still_wait(
        db: str, tmp_path: Path) -> None:
    """Two bulk batches of one sender share two slots: batch A's request holds one, batch B's
    first request the other. When A's request ends, B's second message goes out at once, not
    only after B's own first request has ended (which here is never, until the test says so)."""
    from django.db import connections

    from tests.support import Gateway
    from tests.test_sender_stage import item, make_stage, outbound

    fast_gw, slow_gw = Gateway(hold=threading.Event()).start(), Gateway(hold=threading.Event()).start()
    seed.sms_gateway(seed.operator("a"), fast_gw.url)
    seed.sms_gateway(seed.operator("b"), slow_gw.url)
    stage = make_stage(tmp_path, MSGD_SENDER_CONCURRENCY="2", MSGD_SENDER_FAST_SLOTS="0", MSGD_HTTP_TIMEOUT="120")
    first, second = stage.consumers(2)

    def run(one: object, payloads: list[dict[str, object]]) -> None:
        try:
            one.handle([item(p) for p in payloads])  # type: ignore[attr-defined]
        finally:
            connections.close_all()

    a = threading.Thread(target=run, args=(first, [outbound(1, operator_code="a")]))
    b = threading.Thread(target=run, args=(second, [outbound(2, operator_code="b"), outbound(3, operator_code="b")]))
    try:
        a.start()
        fast_gw.wait_count(1)  # A's request holds one slot
        b.start()
        slow_gw.wait_count(1)  # B's first request the other; B's second waits for a slot
        assert fast_gw.hold is not None and slow_gw.hold is not None
        fast_gw.hold.set()  # A's request ends: its slot is free
        slow_gw.wait_count(2, timeout=20)  # B's second message takes it while B's first is unanswered
    finally:
        for gw in (fast_gw, slow_gw):
            if gw.hold is not None:
                gw.hold.set()
        a.join(30)
        b.join(30)
        stage.close()
        fast_gw.stop()
        slow_gw.stop()
    assert sorted(slow_gw.received()) == ["Сообщение №2 & <ok>", "Сообщение №3 & <ok>"]
