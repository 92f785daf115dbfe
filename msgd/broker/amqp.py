"""RabbitMQ through kombu: quorum queues, pipelined publisher confirms, batch acks.

One ``AmqpBroker`` belongs to one thread (py-amqp connections are not
thread-safe); ``msgd run all`` gives every stage its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import amqp
import structlog
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError

from msgd import topology as topo
from msgd.broker import delays
from msgd.broker.base import BatchHandler, Broker, Delivery, Outgoing, PublishError
from msgd.broker.batches import run_batch
from msgd.broker.packs import deliveries, pack, prefetch
from msgd.redact import redact_url
from msgd.settings import Settings

log = structlog.get_logger("msgd.broker")

CONFIRM_TIMEOUT = 30.0
RECONNECT_MAX_DELAY = 30.0
# After the stop event is set, confirms of a publish in progress are awaited this long at
# most; then the batch is left unacknowledged (it comes back) and the consumer ends.
STOP_GRACE = 5.0


class _Stopping(Exception):
    """The stop event was set while connecting: give up at once."""


class AmqpBroker(Broker):
    embedded = False

    # A metrics scrape sets these lower: it must answer quickly when the broker is down.
    connect_retries = 3
    connect_timeout: float = 10

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.ns = settings.namespace
        self._conn: Connection | None = None
        self._pub: Any = None
        self._inspect: Any = None  # the channel queue_depths reuses
        self._pending: set[int] = set()
        self._failed: list[str] = []
        self._next_tag = 1
        self._stop: threading.Event | None = None  # set by consume(): SIGTERM ends waits
        self._first_node = 0  # index in settings.broker_urls tried first on the next connect
        probe = Connection(list(settings.broker_urls))
        # kombu raises OperationalError when no node of the list answers within the retries:
        # an outage like any other, so the consume loop keeps trying (with its own backoff).
        self._connection_errors: tuple[type[BaseException], ...] = (
            *probe.connection_errors, OSError, OperationalError,
        )
        self._conn_errors: tuple[type[BaseException], ...] = (
            *self._connection_errors, *probe.channel_errors,
        )

    # -- connection -------------------------------------------------------
    @property
    def conn(self) -> Connection:
        """The connection, opened on first use: kombu fails over along the node list.

        The list is tried from the node after the one last used (the one whose connection
        just broke is most likely down); each retry round tries every node once.
        """
        if self._conn is None:
            urls = self.s.broker_urls
            order = [*urls[self._first_node:], *urls[:self._first_node]]
            conn = Connection(order, heartbeat=self.s.heartbeat, connect_timeout=self.connect_timeout)
            conn.ensure_connection(max_retries=(self.connect_retries + 1) * len(order) - 1,
                                   callback=self._connect_tick)
            node = self._node_index(conn)
            self._first_node = (node + 1) % len(urls)
            if len(urls) > 1:
                log.info("connected to a RabbitMQ node", node=redact_url(urls[node]))
            self._conn = conn
        return self._conn

    def _node_index(self, conn: Connection) -> int:
        """Which URL of the list kombu ended up connected to (matched by host and port)."""
        for i, url in enumerate(self.s.broker_urls):
            other = Connection(url)
            if (other.hostname, other.port) == (conn.hostname, conn.port):
                return i
        return 0

    def _connect_tick(self) -> None:
        """Called by kombu about once a second between connection attempts."""
        if self._stop is not None and self._stop.is_set():
            raise _Stopping()

    def _publisher(self) -> Any:
        if self._pub is None:
            ch = self.conn.channel()
            ch.confirm_select()
            ch.events["basic_ack"].add(self._on_ack)
            ch.events["basic_nack"].add(self._on_nack)
            ch.events["basic_return"].add(self._on_return)
            self._pub, self._next_tag = ch, 1
            self._pending.clear()
        return self._pub

    def _reset(self) -> None:
        conn, self._conn, self._pub, self._inspect = self._conn, None, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken; nothing to save
                conn.release()

    def close(self) -> None:
        self._reset()

    def describe(self) -> str:
        return f"RabbitMQ at {redact_url(self.s.broker_url)}"

    # -- topology ---------------------------------------------------------
    def _queue_args(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.s.delivery_limit,
            "x-dead-letter-exchange": topo.parking_exchange(self.ns),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def setup(self, channels: list[str]) -> None:
        ns, conn = self.ns, self.conn
        ch = conn.channel()
        try:
            parking_x = Exchange(topo.parking_exchange(ns), "fanout", durable=True, channel=ch)
            parking_x.declare()
            Queue(
                topo.parking_queue(ns), parking_x, durable=True, channel=ch,
                queue_arguments={"x-queue-type": "quorum"},
            ).declare()
            fallback = Exchange(topo.events_fallback_exchange(ns), "fanout", durable=True, channel=ch)
            fallback.declare()
            events = Exchange(
                topo.events_exchange(ns), "topic", durable=True, channel=ch,
                arguments={"alternate-exchange": fallback.name},
            )
            events.declare()
            args = self._queue_args()
            Queue(
                topo.queue_for_route(ns, topo.router_route("bulk")), fallback,
                durable=True, channel=ch, queue_arguments=args,
            ).declare()
            tx_queue = Queue(
                topo.queue_for_route(ns, topo.router_route("tx")), durable=True,
                channel=ch, queue_arguments=args,
            )
            tx_queue.declare()
            for event_type in self.s.transactional_types:
                tx_queue.bind_to(events, routing_key=event_type)
            internal = Exchange(topo.internal_exchange(ns), "topic", durable=True, channel=ch)
            internal.declare()
            # For billing (README "Feedback to billing"): billing binds its own queues.
            Exchange(topo.feedback_exchange(ns), "topic", durable=True, channel=ch).declare()
            delays.declare_ladder(ch)
            for route in topo.internal_routes(channels):
                name = topo.queue_for_route(ns, route)
                q = Queue(name, internal, routing_key=name, durable=True, channel=ch, queue_arguments=args)
                q.declare()
                delays.bind(conn, q)
        finally:
            ch.close()

    # -- publishing with pipelined confirms --------------------------------
    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._pending.difference_update([t for t in self._pending if t <= tag])
        else:
            self._pending.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._failed.append(f"broker refused message {tag} (queue full or not replicated)")
        self._on_ack(tag, multiple)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._failed.append(f"no queue is bound to {exchange!r} for route {routing_key!r}")

    def _target(self, item: Outgoing) -> tuple[str, str]:
        if item.exchange == "events":
            return topo.events_exchange(self.ns), item.route
        if item.exchange == "parking":
            return topo.parking_exchange(self.ns), item.route
        if item.exchange == "feedback":
            return topo.feedback_exchange(self.ns), item.route
        key = topo.queue_for_route(self.ns, item.route)
        if item.delay > 0:
            return delays.route(item.delay, key)
        return topo.internal_exchange(self.ns), key

    def publish(self, items: Sequence[Outgoing]) -> None:
        """Publish ``items`` (an internal route's plain messages joined into packs,
        ``msgd.broker.packs``) and wait for every confirm; PublishError when one is refused,
        unroutable or not confirmed within ``CONFIRM_TIMEOUT`` seconds."""
        if not items:
            return
        items = pack(items)
        try:
            ch = self._publisher()
            self._failed.clear()
            for item in items:
                exchange, key = self._target(item)
                msg = amqp.Message(
                    item.body, content_type=item.content_type, delivery_mode=2,
                    application_headers=item.headers or None,
                )
                ch.basic_publish(msg, exchange=exchange, routing_key=key,
                                 mandatory=item.exchange == "internal")
                self._pending.add(self._next_tag)
                self._next_tag += 1
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while self._pending:
                if self._stop is not None and self._stop.is_set():
                    deadline = min(deadline, time.monotonic() + STOP_GRACE)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishError(f"{len(self._pending)} publishes not confirmed in time")
                try:
                    self.conn.drain_events(timeout=min(left, 1.0))
                except TimeoutError:
                    self.conn.heartbeat_check()
        except PublishError:
            self._reset()
            raise
        except self._conn_errors as exc:
            self._reset()
            raise PublishError(f"broker connection lost while publishing: {exc}") from exc
        if self._failed:
            reasons = "; ".join(sorted(set(self._failed)))
            self._failed.clear()
            raise PublishError(reasons)

    # -- consuming ----------------------------------------------------------
    def consume(
        self,
        queues: Sequence[str],
        handler: BatchHandler,
        stop: threading.Event,
        batch_size: int = 100,
        batch_wait: float = 0.02,
    ) -> None:
        delay = 1.0
        self._stop = stop
        while not stop.is_set():
            try:
                self._consume_connected(queues, handler, stop, batch_size, batch_wait)
                delay = 1.0
            except _Stopping:
                return
            except (*self._conn_errors, PublishError) as exc:  # type: ignore[misc]
                if stop.is_set():
                    return  # the batch in hand was not acked: it comes back to the queue
                log.warning("broker connection problem; reconnecting", error=str(exc), retry_in=delay)
                self._reset()
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def _consume_connected(
        self,
        queues: Sequence[str],
        handler: BatchHandler,
        stop: threading.Event,
        batch_size: int,
        batch_wait: float,
    ) -> None:
        conn = self.conn
        buffers: dict[str, list[amqp.Message]] = {q: [] for q in queues}
        consumers: list[tuple[Any, str]] = []
        events = topo.router_queues(self.ns)  # billing's events: never packs
        for name in queues:
            # py-amqp's own messages, not kombu's Consumer: kombu wraps each in a Message of its
            # own (its __init__ was the router's largest self time) and decodes nothing we use.
            ch = conn.channel()
            ch.basic_qos(0, prefetch(batch_size, packed=name not in events), False)
            tag = ch.basic_consume(queue=name, callback=buffers[name].append, no_ack=False)
            consumers.append((ch, tag))
        first_at: float | None = None
        try:
            while not stop.is_set():
                waiting = sum(len(b) for b in buffers.values())
                if waiting and first_at is None:
                    first_at = time.monotonic()
                if waiting >= batch_size or (
                    waiting and first_at is not None and time.monotonic() - first_at >= batch_wait
                ):
                    self._process(buffers, handler, batch_size, stop)
                    first_at = None
                    continue
                timeout = batch_wait if waiting else 0.25
                try:
                    conn.drain_events(timeout=timeout)
                except TimeoutError:
                    conn.heartbeat_check()
        finally:
            for ch, tag in consumers:
                with contextlib.suppress(Exception):  # closing anyway
                    ch.basic_cancel(tag)
                # Closing the channel returns what was delivered but not processed to the
                # queue now, not when this connection ends (replay reuses the connection).
                with contextlib.suppress(Exception):
                    ch.close()

    def _process(self, buffers: dict[str, list[amqp.Message]], handler: BatchHandler, limit: int,
                 stop: threading.Event) -> None:
        """Hand the handler whole received messages (transactional lane first) until they hold
        ``limit`` deliveries (a pack holds several), then publish its output and ack."""
        taken: list[tuple[str, amqp.Message]] = []
        batch: list[Delivery] = []
        parking = topo.parking_queue(self.ns)  # a parked pack stays one message (replayed whole)
        for name, buf in buffers.items():
            n = 0
            while n < len(buf) and len(batch) < limit:
                batch.extend(deliveries(name, buf[n], split=name != parking))
                taken.append((name, buf[n]))
                n += 1
            del buf[:n]
        outcome = run_batch(handler, batch, stop, lambda seconds: self._pause(seconds, stop))
        self.publish(outcome.out)
        if len(outcome.done) == len(batch):
            # Each queue has its own channel and we took a prefix of its buffer,
            # so one multiple-ack per channel acks exactly this batch.
            last: dict[int, amqp.Message] = {}
            for _, m in taken:
                last[id(m.channel)] = m
            for m in last.values():
                m.channel.basic_ack(m.delivery_tag, multiple=True)
            return
        # Stopped part-way: ack the messages whose deliveries were all handled (a pack only
        # once all of its are); the rest come back when the channels close.
        left: dict[int, int] = {}
        for d in batch:
            left[id(d.tag)] = left.get(id(d.tag), 0) + 1
        for d in outcome.done:
            left[id(d.tag)] -= 1
            if not left[id(d.tag)]:
                d.tag.channel.basic_ack(d.tag.delivery_tag)

    def _pause(self, seconds: float, stop: threading.Event) -> bool:
        """Wait while a batch is retried, serving the connection (heartbeats) and watching ``stop``;
        False when stopping."""
        end = time.monotonic() + seconds
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=min(left, 0.5))
            self.conn.heartbeat_check()
        return False

    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        """Passive declares on one inspection channel, kept open between calls.

        A missing queue makes RabbitMQ close the channel (404 NOT_FOUND): that error is
        raised to the caller (``msgd doctor`` reports the queue as missing) and the
        channel is opened again on the next call; a connection error drops the connection.
        """
        try:
            if self._inspect is None or not self._inspect.is_open:
                self._inspect = self.conn.channel()
            out = {}
            for name in queues:
                ok = self._inspect.queue_declare(queue=name, passive=True)
                out[name] = int(ok.message_count)
            return out
        except Exception as exc:
            ch, self._inspect = self._inspect, None
            if ch is not None:
                with contextlib.suppress(Exception):  # closed by the broker already, most likely
                    ch.close()
            if isinstance(exc, self._connection_errors):
                self._reset()
            raise

