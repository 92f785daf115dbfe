"""Both brokers behind the one interface: the same behaviour on RabbitMQ and embedded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msgd import topology as topo
from msgd.broker import Broker, Delivery, Outgoing, PublishError, make_broker
from msgd.settings import Settings
from msgd.stage import Received, batch_handler


@pytest.fixture(params=["embedded", "rabbitmq"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "rabbitmq":
        url = request.getfixturevalue("rabbit_url")
        ns = request.getfixturevalue("namespace")
        return Settings.from_env({"MSGD_BROKER_URL": url, "MSGD_NAMESPACE": ns, "MSGD_DELIVERY_LIMIT": "3"})
    return Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_NAMESPACE": "emb", "MSGD_DELIVERY_LIMIT": "3"})


@pytest.fixture
def broker(settings: Settings) -> Iterator[Broker]:
    b = make_broker(settings)
    b.setup(["sms"])
    yield b
    b.close()


class Collector:
    """A consumer on its own thread that stops after ``want`` messages."""

    def __init__(self, settings: Settings, queues: list[str], want: int,
                 handler: Any = None) -> None:
        self.got: list[tuple[Delivery, float]] = []
        self.stop = threading.Event()
        self.want = want
        self.handler = handler
        self.broker = make_broker(settings)
        self.thread = threading.Thread(target=self.broker.consume, args=(queues, self._handle, self.stop),
                                       kwargs={"batch_size": 10, "batch_wait": 0.01}, daemon=True)

    def _handle(self, batch: list[Delivery]) -> list[Outgoing]:
        out = self.handler(batch) if self.handler else []
        self.got.extend((d, time.monotonic()) for d in batch)
        if len(self.got) >= self.want:
            self.stop.set()
        return out

    def run(self, timeout: float = 20) -> list[Delivery]:
        self.thread.start()
        self.thread.join(timeout)
        self.stop.set()
        self.thread.join(5)
        self.broker.close()
        assert len(self.got) >= self.want, f"got {len(self.got)} of {self.want}"
        return [d for d, _ in self.got]


def test_events_are_routed_by_type_into_lanes(broker: Broker, settings: Settings) -> None:
    broker.publish([
        Outgoing(route="low_balance", body=b'{"n":1}', exchange="events"),
        Outgoing(route="some_new_type", body=b'{"n":2}', exchange="events"),
        Outgoing(route="password_reset", body=b'{"n":3}', exchange="events"),
    ])
    depths = broker.queue_depths(topo.router_queues(settings.namespace))
    assert depths == {f"{settings.namespace}.router.tx": 1, f"{settings.namespace}.router.bulk": 2}


def test_transactional_lane_is_served_first(broker: Broker, settings: Settings) -> None:
    broker.publish([Outgoing(route="low_balance", body=b"{}", exchange="events") for _ in range(30)])
    broker.publish([Outgoing(route="password_reset", body=b'{"tx":1}', exchange="events")])
    got = Collector(settings, topo.router_queues(settings.namespace), 31).run()
    first_tx = next(i for i, d in enumerate(got) if d.body == b'{"tx":1}')
    assert first_tx < 11, "the password reset waited behind the bulk backlog"


def test_delayed_message_arrives_after_its_delay(broker: Broker, settings: Settings) -> None:
    queue = topo.queue_for_route(settings.namespace, "send.sms.bulk")
    collector = Collector(settings, [queue], 2)
    start = time.monotonic()
    broker.publish([Outgoing(route="send.sms.bulk", body=b'{"late":1}', delay=2),
                    Outgoing(route="send.sms.bulk", body=b'{"now":1}')])
    collector.run()
    arrivals = {d.body: at - start for d, at in collector.got}
    assert arrivals[b'{"now":1}'] < 1.5
    assert arrivals[b'{"late":1}'] >= 1.9


def test_unroutable_internal_publish_is_an_error(rabbit_url: str, namespace: str) -> None:
    """RabbitMQ returns a mandatory message no queue takes; the embedded broker creates queues on demand."""
    broker = make_broker(Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace}))
    broker.setup(["sms"])
    with pytest.raises(PublishError, match="no queue is bound"):
        broker.publish([Outgoing(route="send.nochannel.bulk", body=b"{}")])


class Echo:
    """A stage that forwards each message to the status queue, and crashes on {"boom": ...}."""

    name = "echo"

    def handle(self, items: list[Received]) -> list[Outgoing]:
        for item in items:
            if "boom" in item.payload:
                raise ValueError("boom in handler")
        return [Outgoing(route="status", body=json.dumps(i.payload).encode()) for i in items]


def test_bad_messages_are_parked_with_reason_and_good_ones_pass(broker: Broker, settings: Settings) -> None:
    ns = settings.namespace
    broker.publish([
        Outgoing(route="low_balance", body=b"\xff not json", exchange="events"),
        Outgoing(route="low_balance", body=b"[1, 2]", exchange="events"),
        Outgoing(route="low_balance", body=b'{"boom": 1}', exchange="events"),
        Outgoing(route="low_balance", body=b'{"good": 1}', exchange="events"),
    ])
    Collector(settings, topo.router_queues(ns), 4, handler=batch_handler(Echo())).run()
    forwarded = Collector(settings, [topo.status_queue(ns)], 1).run()
    assert [d.body for d in forwarded] == [b'{"good": 1}']
    parked = Collector(settings, [topo.parking_queue(ns)], 3).run()
    reasons = {d.body: d.headers["x-msgd-reason"] for d in parked}
    assert "not UTF-8 text" in reasons[b"\xff not json"]
    assert "must be a JSON object" in reasons[b"[1, 2]"]
    assert "ValueError: boom in handler" in reasons[b'{"boom": 1}']
    assert all(d.headers["x-msgd-source-queue"] == f"{ns}.router.bulk" for d in parked)


def test_batch_is_not_acked_when_the_handler_fails(broker: Broker, settings: Settings) -> None:
    """An outage (handler raising past the stage) keeps the batch; it is processed again."""
    ns = settings.namespace
    broker.publish([Outgoing(route="status", body=b'{"x":1}')])
    calls: list[int] = []

    def flaky(batch: list[Delivery]) -> list[Outgoing]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("store is down")
        return []

    Collector(settings, [topo.status_queue(ns)], 1, handler=flaky).run()
    assert len(calls) >= 2
    assert broker.queue_depths([topo.status_queue(ns)])[topo.status_queue(ns)] == 0


def test_rabbitmq_parks_a_message_that_keeps_coming_back(rabbit_url: str, namespace: str) -> None:
    """A consumer that dies on a message every time (here: rejects it) does not loop forever:
    the quorum queue's delivery limit dead-letters it into the parking queue."""
    import pika

    from tests.support import pika_params, wait_for

    settings = Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace,
                                  "MSGD_DELIVERY_LIMIT": "2"})
    broker = make_broker(settings)
    broker.setup(["sms"])
    broker.publish([Outgoing(route="low_balance", body=b'{"poison":1}', exchange="events")])
    conn = pika.BlockingConnection(pika_params(rabbit_url))
    try:
        ch = conn.channel()
        bounces = 0

        def parked() -> Any:
            nonlocal bounces
            method, _, _ = ch.basic_get(f"{namespace}.router.bulk")
            if method is not None:
                bounces += 1
                ch.basic_nack(method.delivery_tag, requeue=True)
            return ch.basic_get(f"{namespace}.parking", auto_ack=True)[0] is not None

        wait_for(parked, what="the poison message in the parking queue")
    finally:
        conn.close()
    assert bounces == 3, "delivered once plus the two redeliveries the limit allows"


def test_embedded_parks_a_message_whose_consumer_keeps_dying(tmp_path: Path) -> None:
    from msgd.broker.embedded import EmbeddedBroker

    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_DELIVERY_LIMIT": "2"})
    broker = EmbeddedBroker(settings)
    broker.publish([Outgoing(route="low_balance", body=b'{"poison":1}', exchange="events")])
    queue = topo.queue_for_route(settings.namespace, "router.bulk")
    for _ in range(3):  # taken, then the process dies before acking: the lease runs out
        assert broker._claim([queue], 10)
        broker._db.execute("UPDATE messages SET lease_until = 0")
    assert broker._claim([queue], 10) == []
    [parked] = broker.messages(topo.parking_queue(settings.namespace))
    assert parked.body == b'{"poison":1}'
    assert "delivery limit reached" in parked.headers["x-msgd-reason"]


def test_a_delayed_message_for_a_deleted_queue_does_not_block_the_delay_ladder(
    rabbit_url: str, namespace: str
) -> None:
    """Quorum dead-lettering is at-least-once: without somewhere to go, a delayed message
    would sit at the head of the ladder forever and every later retry behind it."""
    import pika

    from msgd.broker import delays
    from tests.support import delete_namespace, pika_params, wait_for

    gone = f"{namespace}x"
    for ns in (gone, namespace):
        b = make_broker(Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": ns}))
        b.setup(["sms"])
        b.publish([Outgoing(route="send.sms.bulk", body=f'{{"for":"{ns}"}}'.encode(), delay=1)])
        b.close()
    delete_namespace(rabbit_url, gone)  # its delayed message is now on its way to nowhere
    settings = Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace})
    got = Collector(settings, [topo.queue_for_route(namespace, "send.sms.bulk")], 1).run()
    assert [d.body for d in got] == [f'{{"for":"{namespace}"}}'.encode()]
    conn = pika.BlockingConnection(pika_params(rabbit_url))
    try:
        ch = conn.channel()

        def lost() -> bool:
            method, _, body = ch.basic_get(delays.UNROUTABLE, auto_ack=False)
            if method is None:
                return False
            found = body == f'{{"for":"{gone}"}}'.encode()
            ch.basic_ack(method.delivery_tag) if found else ch.basic_nack(method.delivery_tag, requeue=True)
            return found

        wait_for(lost, what="the orphaned delayed message in msgd.delay.unroutable")
    finally:
        conn.close()


def test_rabbitmq_connection_negotiates_the_configured_heartbeat(rabbit_url: str, namespace: str) -> None:
    """Heartbeats are on, so a dead peer is noticed instead of a consumer hanging forever."""
    broker = make_broker(Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace,
                                            "MSGD_HEARTBEAT": "7"}))
    try:
        assert broker.conn.connection.heartbeat == 7  # type: ignore[attr-defined]
    finally:
        broker.close()


def test_rabbitmq_queue_depths_reuse_one_channel_and_survive_a_missing_queue(rabbit_url: str,
                                                                             namespace: str) -> None:
    """One inspection channel for every call; a missing queue is an error (doctor reports it),
    after which the next call works on a new channel of the same connection."""
    import amqp

    broker: Any = make_broker(Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace}))
    broker.setup(["sms"])
    queues = topo.router_queues(namespace)
    try:
        broker.queue_depths(queues)
        first = broker._inspect
        broker.queue_depths(queues)
        assert broker._inspect is first and first.is_open
        with pytest.raises(amqp.exceptions.NotFound):
            broker.queue_depths([f"{namespace}.no.such.queue"])
        connection = broker.conn
        assert broker.queue_depths(queues) == {q: 0 for q in queues}
        assert broker._inspect is not first and broker.conn is connection
    finally:
        broker.close()
