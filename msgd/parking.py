"""``msgd parking list|replay``: read why messages were parked, and send them back where they came from.

A parked copy keeps its body and headers plus ``x-msgd-reason`` and
``x-msgd-source-queue`` (or, when a quorum queue dead-lettered it, ``x-death``).
Replay publishes it again to the queue it was taken from (an event goes back
through the events exchange) with publisher confirms, and only then removes
it from parking. Fix the cause first: a replayed message that fails again is
parked again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from msgd import topology as topo
from msgd.broker.base import Broker, Delivery, Outgoing
from msgd.settings import Settings
from msgd.topology import parking_queue

__all__ = ["Parked", "parking_queue", "peek", "replay"]

MSGD_HEADERS = ("x-msgd-reason", "x-msgd-stage", "x-msgd-source-queue", "x-msgd-parked-at")


@dataclass
class Parked:
    delivery: Delivery

    @property
    def headers(self) -> dict[str, Any]:
        return self.delivery.headers or {}

    @property
    def source_queue(self) -> str:
        src = self.headers.get("x-msgd-source-queue")
        if not src:
            deaths = self.headers.get("x-death") or []
            if deaths and isinstance(deaths[0], dict):
                src = deaths[0].get("queue")
        return str(src or "")

    @property
    def reason(self) -> str:
        reason = self.headers.get("x-msgd-reason")
        if reason:
            return str(reason)
        deaths = self.headers.get("x-death") or []
        if deaths and isinstance(deaths[0], dict):
            return f"dead-lettered by RabbitMQ ({deaths[0].get('reason')}, count {deaths[0].get('count')})"
        return "no reason recorded"

    @property
    def key(self) -> str:
        """A stable name for this parked message (the admin selects by it): body, origin and time."""
        h = self.headers
        raw = b"|".join([self.delivery.body, str(h.get("x-msgd-source-queue", "")).encode(),
                         str(h.get("x-msgd-parked-at", "")).encode(), str(h.get("x-death", "")).encode()])
        return hashlib.sha256(raw).hexdigest()[:20]

    def replay(self, ns: str) -> Outgoing | None:
        """Where to publish it again; None when the source is unknown."""
        src = self.source_queue
        prefix = f"{ns}."
        if not src.startswith(prefix):
            return None
        route = src[len(prefix):]
        headers = {k: v for k, v in self.headers.items() if k not in MSGD_HEADERS and k != "x-death"}
        ctype = self.delivery.content_type or "application/json"
        if route.startswith("router."):
            return Outgoing(route=self.delivery.routing_key, body=self.delivery.body, exchange="events",
                            headers=headers, content_type=ctype)
        return Outgoing(route=route, body=self.delivery.body, headers=headers, content_type=ctype)


def peek(broker: Broker, settings: Settings, limit: int) -> list[Parked]:
    """Parked messages without taking them (they stay in the queue)."""
    queue = topo.parking_queue(settings.namespace)
    if broker.embedded:
        return [Parked(d) for d in broker.messages(queue)[:limit]]  # type: ignore[attr-defined]
    conn: Any = broker.conn  # type: ignore[attr-defined]
    ch = conn.channel()
    out: list[Parked] = []
    tags = []
    try:
        for _ in range(limit):
            msg = ch.basic_get(queue, no_ack=False)
            if msg is None:
                break
            tags.append(msg.delivery_tag)
            props = msg.properties or {}
            out.append(Parked(Delivery(body=bytes(msg.body), queue=queue,
                                       routing_key=msg.delivery_info.get("routing_key", ""),
                                       headers=dict(props.get("application_headers") or {}),
                                       content_type=props.get("content_type"))))
        for tag in tags:
            ch.basic_reject(tag, requeue=True)
    finally:
        ch.close()  # anything still unacked goes back to the queue
    _settle(broker, queue, len(tags))
    return out


def _settle(broker: Broker, queue: str, expected: int) -> None:
    """Requeueing on RabbitMQ is asynchronous: wait (bounded) until the queue shows ``expected``
    messages again, so that a `replay` or `list` right after this one finds them. A consumer
    elsewhere may take them meanwhile, hence the bound rather than a promise."""
    deadline = time.monotonic() + 3.0
    while expected > 0 and time.monotonic() < deadline:
        if broker.queue_depths([queue])[queue] >= expected:
            return
        time.sleep(0.02)


def _unchanged(d: Delivery) -> Outgoing:
    """A parked message put back to parking as it was."""
    return Outgoing(route=d.routing_key, body=d.body, exchange="parking", headers=d.headers,
                    content_type=d.content_type or "application/json")


def replay(broker: Broker, settings: Settings, limit: int | None = None,
           keys: set[str] | None = None) -> tuple[int, int]:
    """Send up to ``limit`` parked messages back — or only those named in ``keys`` (the rest
    go back to parking unchanged); returns (replayed, kept because the source is unknown)."""
    queue = topo.parking_queue(settings.namespace)
    waiting = broker.queue_depths([queue])[queue]
    todo = waiting if limit is None else min(limit, waiting)
    if todo <= 0:
        return 0, 0
    stop = threading.Event()
    seen = [0, 0, 0]  # taken, replayed, kept

    def handle(batch: list[Delivery]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for d in batch:
            if seen[0] >= todo:  # over the limit: put it back unchanged
                out.append(_unchanged(d))
                continue
            seen[0] += 1
            parked = Parked(d)
            if keys is not None and parked.key not in keys:  # not chosen: back to parking
                out.append(_unchanged(d))
                continue
            target = parked.replay(settings.namespace)
            if target is None:
                seen[2] += 1
                out.append(_unchanged(d))
            else:
                seen[1] += 1
                out.append(target)
        if seen[0] >= todo:
            stop.set()
        return out

    broker.consume([queue], handle, stop, batch_size=min(100, todo), batch_wait=0.05)
    if not broker.embedded:
        # Copies put back to parking may have been prefetched again before consuming stopped;
        # closing the channel returns them, asynchronously.
        _settle(broker, queue, waiting - seen[1])
    return seen[1], seen[2]
