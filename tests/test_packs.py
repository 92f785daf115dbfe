"""Packs: an internal route's messages of one batch travel as one RabbitMQ message.

Stages must not notice: each message of a pack is its own delivery (parked alone when it is
bad), a pack is acknowledged once all of its messages are handled, and a parked pack is
replayed whole.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgd import topology as topo
from msgd.broker import Delivery, Outgoing, make_broker
from msgd.broker.packs import PACK_CONTENT_TYPE, PACK_HEADER, pack, prefetch, unpack
from msgd.settings import Settings
from msgd.stage import Received, batch_handler
from tests.support import wait_for


def _plain(route: str, n: int) -> Outgoing:
    return Outgoing(route=route, body=json.dumps({"n": n}).encode())


def test_plain_messages_of_a_route_are_packed_in_order_and_the_rest_pass_unchanged() -> None:
    delayed = Outgoing(route="send.sms.bulk", body=b'{"late":1}', delay=5)
    parked = Outgoing(route="x", body=b"{}", exchange="parking", headers={"x-msgd-reason": "r"})
    event = Outgoing(route="low_balance", body=b"{}", exchange="events")
    with_newline = Outgoing(route="status", body=b'{"a":\n1}')
    items = [_plain("status", 1), delayed, _plain("send.sms.bulk", 1), parked, _plain("status", 2),
             event, with_newline, _plain("status", 3)]
    out = pack(items)
    packs = [o for o in out if o.headers.get(PACK_HEADER)]
    assert [(p.route, p.body, p.headers[PACK_HEADER], p.content_type) for p in packs] == [
        ("status", b'{"n": 1}\n{"n": 2}\n{"n": 3}', 3, PACK_CONTENT_TYPE)]
    assert [o for o in out if o not in packs] == [delayed, parked, event, with_newline, _plain("send.sms.bulk", 1)]


def test_packs_are_bounded_by_count_and_bytes() -> None:
    out = pack([_plain("r", n) for n in range(25)], max_items=10)
    assert [o.headers[PACK_HEADER] for o in out] == [10, 10, 5]
    big = [Outgoing(route="r", body=b'"' + b"x" * 98 + b'"') for _ in range(5)]  # 100 bytes each
    out = pack(big, max_bytes=250)
    assert [o.headers.get(PACK_HEADER, 1) for o in out] == [2, 2, 1]
    assert all(len(o.body) <= 250 for o in out)


def test_a_pack_whose_count_does_not_match_its_lines_is_one_body() -> None:
    body = b'{"a":1}\n{"b":2}'
    assert unpack(body, {PACK_HEADER: 3}, PACK_CONTENT_TYPE) == [body]
    assert unpack(body, {PACK_HEADER: "2"}, PACK_CONTENT_TYPE) == [body]
    assert unpack(body, {PACK_HEADER: 2}, "application/json") is None
    assert unpack(body, {}, PACK_CONTENT_TYPE) is None
    assert unpack(body, {PACK_HEADER: 2}, PACK_CONTENT_TYPE) == [b'{"a":1}', b'{"b":2}']


def test_a_consumer_of_packs_holds_no_more_messages_than_one_of_single_messages() -> None:
    """Two batches of single messages, or a tenth as many packs (memory stays flat under a
    backlog of packs: a full prefetch of them would hold up to 100 times the messages)."""
    assert prefetch(200, packed=False) == 400
    assert prefetch(200, packed=True) == 40
    assert prefetch(1, packed=True) == 2


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), json_values), max_size=40),
       st.integers(min_value=1, max_value=7))
def test_unpacking_gives_back_every_route_s_bodies_in_order(items: list[tuple[str, Any]], max_items: int) -> None:
    sent = [Outgoing(route=r, body=json.dumps(v).encode()) for r, v in items]
    got: dict[str, list[bytes]] = {}
    for o in pack(sent, max_items=max_items):
        bodies = unpack(o.body, o.headers, o.content_type) or [o.body]
        assert len(bodies) <= max_items
        got.setdefault(o.route, []).extend(bodies)
    want: dict[str, list[bytes]] = {}
    for o in sent:
        want.setdefault(o.route, []).append(o.body)
    assert got == want


# -- on RabbitMQ ----------------------------------------------------------------


@pytest.fixture
def settings(rabbit_url: str, namespace: str) -> Settings:
    return Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace,
                              "MSGD_DELIVERY_LIMIT": "2"})


class Boom:
    """Forwards each message to the SMS send queue; raises on {"boom": ...}."""

    name = "boom"

    def handle(self, items: list[Received]) -> list[Outgoing]:
        if any("boom" in i.payload for i in items):
            raise ValueError("boom in handler")
        return [Outgoing(route=topo.send_route("sms", "bulk"), body=json.dumps(i.payload).encode()) for i in items]


def _drain(settings: Settings, queue: str, want: int, handler: Any = None) -> list[Delivery]:
    """Consume ``queue`` until ``want`` deliveries were handled (by ``handler`` too, if given)."""
    got: list[Delivery] = []
    stop = threading.Event()
    broker = make_broker(settings)

    def handle(batch: list[Delivery]) -> list[Outgoing]:
        out = list(handler(batch)) if handler else []
        got.extend(batch)
        if len(got) >= want:
            stop.set()
        return out

    thread = threading.Thread(target=broker.consume, args=([queue], handle, stop),
                              kwargs={"batch_size": 10, "batch_wait": 0.01}, daemon=True)
    thread.start()
    thread.join(20)
    stop.set()
    thread.join(5)
    broker.close()
    assert len(got) >= want, f"got {len(got)} of {want}"
    return got


def test_rabbitmq_carries_a_batch_as_packs_and_delivers_each_message(settings: Settings) -> None:
    broker = make_broker(settings)
    broker.setup(["sms"])
    queue = topo.status_queue(settings.namespace)
    broker.publish([_plain("status", n) for n in range(250)])
    assert broker.queue_depths([queue])[queue] == 3, "250 messages as packs of 100, 100 and 50"
    got = _drain(settings, queue, 250)
    assert [json.loads(d.body)["n"] for d in got] == list(range(250))
    assert all(PACK_HEADER not in d.headers and d.content_type == "application/json" for d in got)
    assert broker.queue_depths([queue])[queue] == 0, "every pack acknowledged"
    broker.close()


def test_a_bad_message_in_a_pack_is_parked_alone(settings: Settings) -> None:
    broker = make_broker(settings)
    broker.setup(["sms"])
    ns = settings.namespace
    render = topo.queue_for_route(ns, topo.render_route("bulk"))
    bodies = [b'{"n":1}', b'{"boom":2}', b"[3]", b'{"n":4}']
    broker.publish([Outgoing(route=topo.render_route("bulk"), body=b) for b in bodies])
    assert broker.queue_depths([render])[render] == 1
    _drain(settings, render, 4, batch_handler(Boom()))
    forwarded = _drain(settings, topo.queue_for_route(ns, topo.send_route("sms", "bulk")), 2)
    assert sorted(json.loads(d.body)["n"] for d in forwarded) == [1, 4]
    parked = _drain(settings, topo.parking_queue(ns), 2)
    reasons = {d.body: d.headers["x-msgd-reason"] for d in parked}
    assert set(reasons) == {b'{"boom":2}', b"[3]"}, "each bad message parked on its own body"
    assert "ValueError: boom in handler" in reasons[b'{"boom":2}']
    assert all(PACK_HEADER not in d.headers for d in parked)
    broker.close()


def test_a_pack_is_acked_only_when_all_its_messages_are_handled(settings: Settings) -> None:
    """Stopped part-way (an outage, then SIGTERM), the consumer acks the lone message it handled
    but not the pack one of whose messages it did not: the pack comes back whole."""
    from msgd.broker.base import PublishError

    broker = make_broker(settings)
    broker.setup(["sms"])
    ns = settings.namespace
    tx, bulk = (topo.queue_for_route(ns, topo.send_route("sms", lane)) for lane in ("tx", "bulk"))
    broker.publish([Outgoing(route=topo.send_route("sms", "tx"), body=b'{"lone":1}')])
    broker.publish([Outgoing(route=topo.send_route("sms", "bulk"), body=b) for b in (b'{"a":1}', b'{"down":1}')])
    stop = threading.Event()
    consumer = make_broker(settings)

    class StoreDown:
        """Fails on the batches holding {"down":1} as an outage; its store never answers."""

        def dependencies_up(self) -> bool:
            return False

        def __call__(self, batch: list[Delivery]) -> list[Outgoing]:
            if any(d.body == b'{"down":1}' for d in batch):
                if len(batch) == 1:
                    stop.set()  # SIGTERM while the store is down
                raise PublishError("the store is down")  # an outage: retried, never parked
            return []

    handle = StoreDown()
    consumer.consume([tx, bulk], handle, stop, batch_size=10, batch_wait=0.01)
    consumer.close()
    depths = wait_for(lambda: (d := broker.queue_depths([tx, bulk]))[bulk] == 1 and d,
                      what="the unfinished pack back in its queue")
    assert depths == {tx: 0, bulk: 1}
    again = _drain(settings, bulk, 2)
    assert sorted(d.body for d in again) == [b'{"a":1}', b'{"down":1}']
    broker.close()


def test_a_dead_lettered_pack_is_parked_whole_and_replayed_as_its_messages(settings: Settings,
                                                                            tmp_path: Path) -> None:
    import pika

    from msgd import parking
    from tests.support import pika_params

    broker = make_broker(settings)
    broker.setup(["sms"])
    ns = settings.namespace
    render = topo.queue_for_route(ns, topo.render_route("bulk"))
    broker.publish([Outgoing(route=topo.render_route("bulk"), body=json.dumps({"n": n}).encode()) for n in range(3)])
    conn = pika.BlockingConnection(pika_params(settings.broker_url))
    try:
        ch = conn.channel()

        def parked() -> bool:  # a consumer that dies on the pack every time
            method, _, _ = ch.basic_get(render)
            if method is not None:
                ch.basic_nack(method.delivery_tag, requeue=True)
            return broker.queue_depths([topo.parking_queue(ns)])[topo.parking_queue(ns)] == 1

        wait_for(parked, what="the pack in the parking queue")
    finally:
        conn.close()
    [shown] = parking.peek(broker, settings, 10)
    assert shown.source_queue == render and shown.shown_body().count('"n"') == 3
    assert shown.reason.endswith("; a pack of 3 messages, replayed together")
    assert parking.replay(broker, settings) == (1, 0)
    got = _drain(settings, render, 3)
    assert sorted(json.loads(d.body)["n"] for d in got) == [0, 1, 2]
    broker.close()
