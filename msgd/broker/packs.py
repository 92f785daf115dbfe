"""Several internal messages in one RabbitMQ message (a pack), and back.

Most of RabbitMQ's work, and of py-amqp's on both sides, is per message: a quorum queue
appends each one to its Raft log, and a publish, a delivery and an ack are three frames
apiece.  A batch of 100 events becomes 100 render jobs, then 100 send jobs; moved one by
one, that is most of the CPU a delivered SMS costs (README "Benchmark").  So ``AmqpBroker``
publishes the plain internal messages of one batch that go to the same queue as one
message, and its consumer splits that message again before the stage sees it: stages,
their parking of a single bad message and the embedded broker are unchanged.

The format (a transport framing, not a message kind; README "Broker"):

* content type ``application/x-ndjson``, header ``x-msgd-pack`` = the number of messages;
* the body is the messages' bodies joined by ``\\n`` (NDJSON). msgd writes compact JSON,
  which has no raw newline; a body holding one is never packed.

A pack is acknowledged once every message in it is handled; one that keeps killing its
consumer is dead-lettered whole, and ``msgd parking replay`` sends it back as a pack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msgd.broker.base import Delivery, Outgoing, body_bytes

PACK_HEADER = "x-msgd-pack"
PACK_CONTENT_TYPE = "application/x-ndjson"
# Messages and bytes in one pack: a consumer takes whole packs, so this also bounds how far
# a batch can outgrow MSGD_BATCH_SIZE; far below RabbitMQ's 128 MiB message limit.
PACK_MAX_ITEMS = 100
PACK_MAX_BYTES = 1024 * 1024
# Unacknowledged messages a consumer holds per queue, in batches: while one batch is handled the
# next is already on its way, so no batch waits for RabbitMQ after the previous one's ack.
PREFETCH_BATCHES = 2
# On a queue that carries packs, a tenth of that many RabbitMQ messages: a full prefetch of
# packs would hold up to PACK_MAX_ITEMS times the messages (memory stays flat under a backlog).
PACKED_PREFETCH_SHARE = 10


def _packable(item: Outgoing) -> bool:
    return (item.exchange == "internal" and not item.delay and not item.headers
            and item.content_type == "application/json" and b"\n" not in item.body)


def pack(items: Sequence[Outgoing], max_items: int = PACK_MAX_ITEMS,
         max_bytes: int = PACK_MAX_BYTES) -> list[Outgoing]:
    """``items`` with the plain internal messages of each route joined into packs of at most
    ``max_items`` messages and ``max_bytes`` bytes; a route's messages keep their order.

    Anything else (parked copies, events, feedback, delayed messages, messages with headers)
    and a lone message are passed on as they are.
    """
    out: list[Outgoing] = []
    groups: dict[str, list[list[bytes]]] = {}
    sizes: dict[str, int] = {}
    for item in items:
        if not _packable(item):
            out.append(item)
            continue
        chunks = groups.setdefault(item.route, [[]])
        size = len(item.body) + 1
        if chunks[-1] and (len(chunks[-1]) >= max_items or sizes[item.route] + size > max_bytes):
            chunks.append([])
            sizes[item.route] = 0
        chunks[-1].append(item.body)
        sizes[item.route] = sizes.get(item.route, 0) + size
    for route, chunks in groups.items():
        for chunk in chunks:
            if len(chunk) == 1:
                out.append(Outgoing(route=route, body=chunk[0]))
            else:
                out.append(Outgoing(route=route, body=b"\n".join(chunk), headers={PACK_HEADER: len(chunk)},
                                    content_type=PACK_CONTENT_TYPE))
    return out


def prefetch(batch_size: int, packed: bool) -> int:
    """The prefetch count (RabbitMQ messages) of a consumer taking batches of ``batch_size``
    deliveries from a queue that carries packs (``packed``: render, send, status) or not
    (billing's events): two batches of single messages, or a tenth as many (at least 2) packs,
    which hold at most ten times as many messages."""
    whole = PREFETCH_BATCHES * max(1, batch_size)
    return max(PREFETCH_BATCHES, whole // PACKED_PREFETCH_SHARE) if packed else whole


def unpack(body: bytes, headers: dict[str, object], content_type: str | None) -> list[bytes] | None:
    """The bodies in a pack, or None when ``body`` is not one (a message as published).

    A pack whose count does not match its lines is returned whole as one body: the stage
    then parks it as not being JSON, with the rest of the queue going on.
    """
    count = headers.get(PACK_HEADER)
    if count is None or content_type != PACK_CONTENT_TYPE:
        return None
    bodies = body.split(b"\n")
    if not isinstance(count, int) or isinstance(count, bool) or count != len(bodies):
        return [body]
    return bodies


def deliveries(queue: str, m: Any, split: bool = True) -> list[Delivery]:
    """The deliveries in one message received from ``queue`` (a py-amqp ``Message``): itself, or
    (``split``) each message of a pack, all tagged with the received message (acked once)."""
    props = m.properties
    body = body_bytes(m.body, props.get("content_encoding"))
    raw_headers = props.get("application_headers")
    headers = dict(raw_headers) if isinstance(raw_headers, dict) else {}
    ctype = props.get("content_type")
    info = m.delivery_info
    key = info.get("routing_key", "")
    redelivered = bool(info.get("redelivered"))
    bodies = unpack(body, headers, ctype) if split else None
    if bodies is None or bodies == [body]:
        return [Delivery(body=body, queue=queue, routing_key=key, headers=headers, redelivered=redelivered,
                         content_type=ctype, tag=m)]
    headers.pop(PACK_HEADER, None)
    return [Delivery(body=b, queue=queue, routing_key=key, headers=dict(headers), redelivered=redelivered,
                     content_type="application/json", tag=m) for b in bodies]
