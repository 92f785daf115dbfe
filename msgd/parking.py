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
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from msgd import safejson
from msgd import topology as topo
from msgd.broker.base import Broker, Delivery, Outgoing, body_bytes
from msgd.broker.packs import PACK_HEADER
from msgd.printable import ESCAPES as _ESCAPES
from msgd.redact import redact, redact_head, redact_text
from msgd.settings import Settings
from msgd.topology import parking_queue

__all__ = ["Parked", "parking_queue", "peek", "replay", "shown_body", "shown_text"]

MSGD_HEADERS = ("x-msgd-reason", "x-msgd-stage", "x-msgd-source-queue", "x-msgd-parked-at")
# A JSON body up to this size is shown re-indented with secret fields masked; a larger one as text.
PRETTY_MAX_BYTES = 256 * 1024


def header_text(value: Any) -> str:
    """A header value as text, whatever its AMQP type (bytes, nested table, number, None)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def shown_body(body: bytes, limit: int = 2000) -> str:
    """A parked body for a person: at most ``limit`` characters, secrets masked, control
    characters escaped.  JSON up to ``PRETTY_MAX_BYTES`` is re-indented with secret fields
    masked; text is shown as text; a body that is not UTF-8 as an escaped excerpt
    (``\\xff``); an empty one as "(empty body)".  A cut body says its full size."""
    size = len(body)
    if not size:
        return "(empty body)"
    head = body[: (limit + 1) * 4]  # enough bytes for more than ``limit`` characters
    prefix = ""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) < size and exc.start >= len(head) - 3:  # only cut inside a character
            text = head[: exc.start].decode("utf-8")
        else:
            text = head[: limit + 1].decode("utf-8", "backslashreplace")
            prefix = f"({size} bytes, not UTF-8 text) "
    if not prefix and size <= PRETTY_MAX_BYTES and (pretty := _pretty_json(body)) is not None:
        text = pretty
    text = text.translate(_ESCAPES)
    shown = redact_head(text, limit)
    if len(head) < size or len(text) > limit:
        shown += f" … ({size} bytes in all)"
    return prefix + shown


def shown_text(text: str, limit: int) -> str:
    """A header's text for a person: secrets masked, at most ``limit`` characters, control
    characters escaped."""
    return redact_text(text[: limit * 2].translate(_ESCAPES), limit=limit)


def _pretty_json(body: bytes) -> str | None:
    try:
        value = safejson.loads(body, max_bytes=PRETTY_MAX_BYTES, max_depth=64)
    except safejson.InvalidJSON:
        return None
    return json.dumps(redact(value), ensure_ascii=False, indent=1)


@dataclass
class Parked:
    delivery: Delivery

    @property
    def headers(self) -> dict[str, Any]:
        h = self.delivery.headers
        return h if isinstance(h, dict) else {}

    def _deaths(self) -> list[dict[str, Any]]:
        """RabbitMQ's ``x-death``: a list of tables, newest first (any other shape: none)."""
        deaths = self.headers.get("x-death")
        if isinstance(deaths, dict):
            deaths = [deaths]
        return [d for d in deaths if isinstance(d, dict)] if isinstance(deaths, list) else []

    @property
    def source_queue(self) -> str:
        src = header_text(self.headers.get("x-msgd-source-queue"))
        if not src:
            deaths = self._deaths()
            src = header_text(deaths[0].get("queue")) if deaths else ""
        return src

    @property
    def reason(self) -> str:
        reason = header_text(self.headers.get("x-msgd-reason"))
        if reason:
            return reason
        deaths = self._deaths()
        if deaths:
            d = deaths[0]
            pack = self.headers.get(PACK_HEADER)
            whole = f"; a pack of {header_text(pack)} messages, replayed together" if pack is not None else ""
            return (f"dead-lettered by RabbitMQ ({header_text(d.get('reason'))},"
                    f" count {header_text(d.get('count'))}){whole}")
        return "no reason recorded"

    @property
    def stage(self) -> str:
        return header_text(self.headers.get("x-msgd-stage"))

    @property
    def parked_at(self) -> str:
        return header_text(self.headers.get("x-msgd-parked-at"))

    @property
    def key(self) -> str:
        """A stable name for this parked message (the admin selects by it): body, origin and time."""
        h = self.headers
        raw = b"|".join([body_bytes(self.delivery.body), self.source_queue.encode("utf-8", "replace"),
                         self.parked_at.encode("utf-8", "replace"),
                         header_text(h.get("x-death")).encode("utf-8", "replace")])
        return hashlib.sha256(raw).hexdigest()[:20]

    def shown_body(self, limit: int = 2000) -> str:
        return shown_body(body_bytes(self.delivery.body), limit)

    def replay(self, ns: str) -> Outgoing | None:
        """Where to publish it again (the whole body, as it was); None when the source is unknown."""
        src = self.source_queue
        prefix = f"{ns}."
        if not src.startswith(prefix):
            return None
        route = src[len(prefix):]
        headers = {k: v for k, v in self.headers.items() if k not in MSGD_HEADERS and k != "x-death"}
        ctype = self.delivery.content_type or "application/json"
        body = body_bytes(self.delivery.body)
        if route.startswith("router."):
            return Outgoing(route=self.delivery.routing_key, body=body, exchange="events",
                            headers=headers, content_type=ctype)
        return Outgoing(route=route, body=body, headers=headers, content_type=ctype)


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
            headers = props.get("application_headers")
            out.append(Parked(Delivery(body=body_bytes(msg.body, props.get("content_encoding")), queue=queue,
                                       routing_key=msg.delivery_info.get("routing_key", ""),
                                       headers=dict(headers) if isinstance(headers, dict) else {},
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
    return Outgoing(route=d.routing_key, body=body_bytes(d.body), exchange="parking",
                    headers=d.headers if isinstance(d.headers, dict) else {},
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
