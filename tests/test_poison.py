"""One bad message never stalls a stage: what breaks decoding or its handler is parked with its
reason; only a named dependency failure is an outage, retried in place, and the stop event
(SIGTERM) ends even that.  In-process on both brokers; end to end in test_poison_e2e.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from msgd import parking
from msgd import topology as topo
from msgd.broker import Broker, Delivery, Outgoing, make_broker
from msgd.envelope import dumps
from msgd.settings import Settings
from msgd.stage import Received, StageBatchHandler, batch_handler
from tests.support import wait_for
from tests.test_broker import Collector, broker, settings  # noqa: F401 - fixtures: both brokers

OUT = "send.sms.bulk"  # where the test stages forward what they accept


def out_queue(ns: str) -> str:
    return topo.queue_for_route(ns, OUT)


BOMB = b"[" * 10000 + b"]" * 10000  # the body of the issue: json.loads raises RecursionError


def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


class Picky:
    """A stage that forwards each payload to ``OUT`` and fails on {"raise": kind}."""

    name = "picky"

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, items: list[Received]) -> list[Outgoing]:
        self.calls += 1
        for item in items:
            kind = item.payload.get("raise")
            if kind == "recursion":
                _recurse(0)
            if kind == "key":
                raise KeyError("k" * 500_000)
            if kind == "memory":
                raise MemoryError()
            if kind == "type":
                int(item.payload)  # type: ignore[call-overload]
            if kind == "outage-like":
                from django.db import OperationalError

                raise OperationalError("canceling statement due to statement timeout")
        return [Outgoing(route=OUT, body=dumps(i.payload)) for i in items]


class Consumer:
    """``broker.consume`` on its own thread with its own broker, until stopped."""

    def __init__(self, where: Settings, queues: list[str], handler: Callable[[list[Delivery]], Any]) -> None:
        self.broker = make_broker(where)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.broker.consume, args=(queues, handler, self.stop),
                                       kwargs={"batch_size": 50, "batch_wait": 0.1}, daemon=True)
        self.thread.start()

    def close(self, within: float = 10.0) -> float:
        """Set the stop event; returns how long the consumer took to end."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(within)
        took = time.monotonic() - started
        assert not self.thread.is_alive(), f"the consumer did not stop within {within} s"
        self.broker.close()
        return took


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for c in started:
        if c.thread.is_alive():
            c.close()


def depth(broker: Broker, queue: str) -> int:  # noqa: F811 - ``broker`` is also a fixture here
    return broker.queue_depths([queue])[queue]


def parked_reasons(broker: Broker, settings: Settings) -> dict[bytes, str]:  # noqa: F811
    return {p.delivery.body: p.reason for p in parking.peek(broker, settings, 100)}


UNDECODABLE = {
    BOMB: "nests objects or arrays deeper than 32 levels",
    b"": "body is empty",
    b"\xff\xfe{}": "not UTF-8 text",
    b'{"event_id": "\\ud800"}': "lone surrogate",
    b"1" * 5000: "not valid JSON",
    b'{"balance": NaN}': "NaN, which JSON has no number for",
    b'{"text": "' + b"a" * 40000 + b'"}': "more than the limit of 32768 bytes",
    b"[1, 2]": "must be a JSON object, got list",
}


def test_every_kind_of_undecodable_body_is_parked_and_the_batch_goes_on(
        broker: Broker, settings: Settings, consumers: list[Consumer]) -> None:  # noqa: F811
    ns = settings.namespace
    good = [b'{"good": %d}' % i for i in range(5)]
    bodies: list[bytes] = []
    for i, bad in enumerate(UNDECODABLE):
        bodies += [bad, *good[i:i + 1]]
    broker.publish([Outgoing(route="low_balance", body=b, exchange="events") for b in bodies])
    handler = batch_handler(Picky(), max_body_bytes=32768, max_depth=32)
    consumers.append(Consumer(settings, topo.router_queues(ns), handler))
    # The forwarded ones travel as packs (msgd.broker.packs): their queue's depth counts packs.
    wait_for(lambda: depth(broker, topo.parking_queue(ns)) == len(UNDECODABLE)
             and depth(broker, out_queue(ns)) >= 1, what="every bad body parked, the good ones forwarded")
    consumers[0].close()
    reasons = parked_reasons(broker, settings)
    for body, words in UNDECODABLE.items():
        assert words in reasons[body], (body[:20], reasons[body])
    forwarded = Collector(settings, [out_queue(ns)], len(good)).run()
    assert sorted(d.body for d in forwarded) == sorted(b'{"good":%d}' % i for i in range(5))


def test_a_message_that_crashes_its_handler_is_parked_with_the_exception(
        broker: Broker, settings: Settings, consumers: list[Consumer]) -> None:  # noqa: F811
    """RecursionError, MemoryError, KeyError, TypeError: the message's fault, not an outage."""
    ns = settings.namespace
    bad = {kind: dumps({"raise": kind}) for kind in ("recursion", "key", "memory", "type")}
    good = [dumps({"n": i}) for i in range(8)]
    broker.publish([Outgoing(route="low_balance", body=b, exchange="events")
                    for b in [good[0], bad["recursion"], *good[1:4], bad["key"], bad["memory"], *good[4:],
                              bad["type"]]])
    consumers.append(Consumer(settings, topo.router_queues(ns), batch_handler(Picky())))
    wait_for(lambda: depth(broker, topo.parking_queue(ns)) == 4 and depth(broker, out_queue(ns)) >= 1,
             what="the four bad messages parked")
    consumers[0].close()
    reasons = parked_reasons(broker, settings)
    assert "picky failed on this message: RecursionError" in reasons[bad["recursion"]]
    assert "picky failed on this message: MemoryError" in reasons[bad["memory"]]
    assert "picky failed on this message: TypeError" in reasons[bad["type"]]
    assert "KeyError: 'kkk" in reasons[bad["key"]] and len(reasons[bad["key"]]) <= 2100  # the key is cut
    forwarded = Collector(settings, [out_queue(ns)], len(good)).run()
    assert sorted(d.body for d in forwarded) == sorted(good)


def test_a_message_that_fails_like_an_outage_is_found_by_splitting_the_batch_and_parked(
        broker: Broker, settings: Settings, consumers: list[Consumer]) -> None:  # noqa: F811
    """A database error that only this message causes (a statement timeout, say) looks like an
    outage: the batch is retried, then split until the one message is found while the store answers."""
    ns = settings.namespace
    poison = dumps({"raise": "outage-like"})
    good = [dumps({"n": i}) for i in range(7)]
    broker.publish([Outgoing(route="low_balance", body=b, exchange="events") for b in [*good[:5], poison, *good[5:]]])
    consumers.append(Consumer(settings, topo.router_queues(ns), batch_handler(Picky())))
    wait_for(lambda: depth(broker, topo.parking_queue(ns)) == 1, timeout=40, what="the poison message parked")
    forwarded = Collector(settings, [out_queue(ns)], len(good)).run()
    consumers[0].close()
    assert sorted(d.body for d in forwarded) == sorted(good)
    (reason,) = parked_reasons(broker, settings).values()
    assert "picky kept failing on this message (OperationalError: canceling statement" in reason


class Flaky:
    """A stage whose dependency is down (every call raises an outage) until ``up`` is set."""

    name = "flaky"

    def __init__(self) -> None:
        self.up = threading.Event()
        self.failures = 0

    def handle(self, items: list[Received]) -> list[Outgoing]:
        if not self.up.is_set():
            from django.db import OperationalError

            self.failures += 1
            raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")
        return [Outgoing(route=OUT, body=dumps(i.payload)) for i in items]


class FlakyHandler(StageBatchHandler):
    """The stage's dependencies answer exactly when the stage works (what the store probe tells)."""

    def dependencies_up(self) -> bool:
        return self.stage.up.is_set()  # type: ignore[attr-defined, no-any-return]


def test_an_outage_is_retried_in_place_nothing_is_parked_and_stop_ends_it(
        broker: Broker, settings: Settings, consumers: list[Consumer]) -> None:  # noqa: F811
    ns = settings.namespace
    bodies = [dumps({"n": i}) for i in range(5)]
    broker.publish([Outgoing(route="low_balance", body=b, exchange="events") for b in bodies])
    stage = Flaky()
    handler = FlakyHandler(stage, None, 10**6, 32)
    consumers.append(Consumer(settings, topo.router_queues(ns), handler))
    wait_for(lambda: stage.failures >= 6, what="the batch retried and split during the outage")
    assert depth(broker, topo.parking_queue(ns)) == 0, "an outage parked messages"
    took = consumers[0].close()
    assert took < 3, f"stopping took {took:.1f} s during an outage retry"
    # Nothing was acknowledged: every message is back in its queue; once the store is up again
    # another consumer handles them all.
    wait_for(lambda: depth(broker, topo.queue_for_route(ns, "router.bulk")) == len(bodies),
             what="the batch back in the queue")
    stage.up.set()
    consumers.append(Consumer(settings, topo.router_queues(ns), handler))
    forwarded = Collector(settings, [out_queue(ns)], len(bodies)).run()
    consumers[1].close()
    assert sorted(d.body for d in forwarded) == sorted(bodies)
    assert depth(broker, topo.parking_queue(ns)) == 0


def test_an_output_the_embedded_broker_cannot_store_does_not_end_its_consumer(
        tmp_path: Any, consumers: list[Consumer]) -> None:
    """SQLite refuses a value over its length limit: the batch is rolled back and comes back
    after its lease; the consumer goes on with the next batches."""
    import sqlite3

    where = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_NAMESPACE": "emb"})
    publisher = make_broker(where)

    class Bloat:
        name = "bloat"

        def handle(self, items: list[Received]) -> list[Outgoing]:
            return [Outgoing(route=OUT, body=b"x" * (100_000 if "big" in i.payload else 10)) for i in items]

    consumer = Consumer(where, topo.router_queues("emb"), batch_handler(Bloat()))
    consumers.append(consumer)
    consumer.broker._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 50_000)  # type: ignore[attr-defined]
    publisher.publish([Outgoing(route="low_balance", body=b'{"big": 1}', exchange="events")])
    wait_for(lambda: depth(publisher, topo.queue_for_route("emb", "router.bulk")) == 0, what="the batch taken")
    publisher.publish([Outgoing(route="low_balance", body=b'{"small": 1}', exchange="events")])
    wait_for(lambda: depth(publisher, out_queue("emb")) == 1, what="the next batch handled")
    assert consumer.thread.is_alive()
    consumer.close()
    publisher.close()
