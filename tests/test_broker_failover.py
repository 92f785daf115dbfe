"""MSGD_BROKER_URL as a list of RabbitMQ nodes (kombu failover), on the shared broker.

Each "node" here is a TCP relay to the one shared RabbitMQ that the test can switch between
refusing (a dead node: it accepts and drops the connection) and forwarding, and that counts
the connections it was asked for. The real multi-node case, with quorum queue leaders lost,
is tests/test_cluster_failover.py.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from msgd import topology as topo
from msgd.broker import Delivery, Outgoing
from msgd.broker.amqp import AmqpBroker
from msgd.redact import redact_url
from msgd.settings import Settings
from tests.support import free_port, wait_for


class Relay:
    """127.0.0.1:<port> -> the shared RabbitMQ, or a node that drops every connection."""

    def __init__(self, upstream: int = 5672, forwarding: bool = True) -> None:
        self.forwarding, self.upstream, self.attempts = forwarding, upstream, 0
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                relay.attempts += 1
                if not relay.forwarding:
                    return  # closed at once: the AMQP handshake fails
                with socket.create_connection(("127.0.0.1", relay.upstream)) as up:
                    back = threading.Thread(target=_pipe, args=(up, self.request), daemon=True)
                    back.start()
                    _pipe(self.request, up)
                    back.join()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.server.server_address[1]}//"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):  # either side closing ends the relay
        while data := src.recv(65536):
            dst.sendall(data)
    for s in (src, dst):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relays(rabbit_url: str) -> Iterator[list[Relay]]:
    made = [Relay(), Relay()]
    yield made
    for r in made:
        r.close()


def _settings(urls: list[str], ns: str) -> Settings:
    return Settings.from_env({"MSGD_BROKER_URL": ";".join(urls), "MSGD_NAMESPACE": ns})


def test_the_list_is_parsed_and_every_password_is_masked() -> None:
    s = Settings.from_env({"MSGD_BROKER_URL": " amqp://u:Secret-1@h1:5672/v ; amqp://u:Secret-2@h2:5672/v; "})
    assert s.broker_urls == ("amqp://u:Secret-1@h1:5672/v", "amqp://u:Secret-2@h2:5672/v")
    assert not s.embedded
    shown = [redact_url(s.broker_url), AmqpBroker(s).describe()]
    for text in shown:
        assert "Secret-1" not in text and "Secret-2" not in text
        assert "u:***@h1:5672/v" in text and "u:***@h2:5672/v" in text
    with pytest.raises(ValueError, match="RabbitMQ nodes only"):
        Settings.from_env({"MSGD_BROKER_URL": "amqp://h1//;sqlite:///var/broker.sqlite3"})


def test_a_dead_first_node_is_skipped_by_the_stages_the_metrics_and_the_doctor(
    relays: list[Relay], namespace: str
) -> None:
    """metrics.quick_broker and the doctor make one connection attempt: one per node of the list."""
    from msgd import doctor, metrics
    from services.senders.registry import live_channels

    dead, alive = relays
    dead.forwarding = False
    settings = _settings([dead.url(), alive.url()], namespace)
    broker = AmqpBroker(settings)
    try:
        broker.setup(live_channels())
        broker.publish([Outgoing(route=topo.STATUS_ROUTE, body=b"{}")])
    finally:
        broker.close()
    scrape = metrics.quick_broker(settings)
    try:
        assert scrape.queue_depths([topo.status_queue(namespace)]) == {topo.status_queue(namespace): 1}
    finally:
        scrape.close()
    found = doctor.check_broker(settings)
    assert found[0].level == doctor.OK, found
    (warning,) = [f for f in found if f.level == doctor.WARN and "does not answer" in f.text]
    assert f"127.0.0.1:{dead.server.server_address[1]}" in warning.text
    assert "guest:guest" not in " ".join(f.text for f in found)


def test_after_a_broken_connection_the_next_node_is_tried_first(relays: list[Relay], namespace: str) -> None:
    first, second = relays
    broker = AmqpBroker(_settings([first.url(), second.url()], namespace))
    try:
        broker.setup([])
        assert (first.attempts, second.attempts) == (1, 0)
        broker.close()  # as a lost connection does
        broker.setup([])
        assert (first.attempts, second.attempts) == (1, 1), "went back to the node that just failed"
    finally:
        broker.close()


def test_consuming_outlives_an_outage_of_every_node(relays: list[Relay], rabbit_url: str, namespace: str) -> None:
    """No node answers for longer than kombu's connect retries: the consume loop keeps trying
    (kombu gives up with OperationalError) and consumes once a node is back."""
    queue = topo.status_queue(namespace)
    setup = AmqpBroker(_settings([rabbit_url], namespace))
    setup.setup([])
    for relay in relays:
        relay.forwarding = False
    consumer = AmqpBroker(_settings([r.url() for r in relays], namespace))
    consumer.connect_retries, consumer.connect_timeout = 0, 2  # kombu gives up after one round
    got: list[Delivery] = []
    stop = threading.Event()
    crashed: list[BaseException] = []

    def handler(batch: list[Delivery]) -> list[Outgoing]:
        got.extend(batch)
        stop.set()
        return []

    def consume() -> Any:
        try:
            consumer.consume([queue], handler, stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            crashed.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        wait_for(lambda: crashed or all(r.attempts >= 2 for r in relays), timeout=30,
                 what="every node tried twice")
        assert not crashed, f"the consume loop gave up: {crashed[0]!r}"
        relays[1].forwarding = True
        setup.publish([Outgoing(route=topo.STATUS_ROUTE, body=b'{"back": true}')])
        thread.join(30)
        assert [d.body for d in got] == [b'{"back": true}']
    finally:
        stop.set()
        thread.join(10)
        consumer.close()
        setup.close()


def test_a_list_of_closed_ports_fails_with_a_clear_connection_error() -> None:
    broker = AmqpBroker(_settings([f"amqp://guest:guest@127.0.0.1:{free_port()}//" for _ in range(2)], "x"))
    broker.connect_retries, broker.connect_timeout = 0, 1
    with pytest.raises(Exception, match="(?i)refused") as caught:
        broker.setup([])
    assert isinstance(caught.value, broker._connection_errors)
