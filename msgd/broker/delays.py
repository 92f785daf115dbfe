"""The delay ladder for retries and quiet hours: kombu's native delayed delivery,
declared here with one addition.

kombu's ladder (28 quorum queues whose TTLs are powers of two, each
dead-lettering into the next; the routing key spells the delay in binary) ends
in a topic exchange bound to the target queues.  Its queues dead-letter
"at least once": a message whose target queue no longer exists is kept at the
head of the last queue and retried forever, and every delayed message behind
it waits too.  The delivery exchange here has an alternate exchange, so such a
message lands in ``msgd.delay.unroutable`` (bounded, kept a week) instead of
blocking the ladder.  Names and routing keys stay kombu's, so
``kombu.transport.native_delayed_delivery`` computes routing keys and binds
queues as usual.
"""

from __future__ import annotations

from typing import Any

from kombu.entity import Exchange, Queue
from kombu.transport import native_delayed_delivery as ndd

PREFIX = "msgd_delay"
UNROUTABLE = "msgd.delay.unroutable"


def declare_ladder(channel: Any) -> None:
    lost = Exchange(UNROUTABLE, "fanout", durable=True, channel=channel)
    lost.declare()
    Queue(UNROUTABLE, lost, durable=True, channel=channel, queue_arguments={
        "x-queue-type": "quorum", "x-max-length": 100_000, "x-message-ttl": 7 * 24 * 3600 * 1000,
    }).declare()
    delivery = Exchange(ndd._celery_delayed_delivery_exchange(PREFIX), "topic", durable=True, channel=channel,
                        arguments={"alternate-exchange": UNROUTABLE})
    delivery.declare()
    routing_key = "1.#"
    for level in range(ndd.MAX_LEVEL, -1, -1):
        name = ndd.level_name(level, PREFIX)
        Exchange(name, "topic", durable=True, channel=channel).declare()
        queue = Queue(name, durable=True, channel=channel, queue_arguments={
            "x-queue-type": "quorum",
            "x-overflow": "reject-publish",
            "x-message-ttl": pow(2, level) * 1000,
            "x-dead-letter-exchange": ndd.level_name(level - 1, PREFIX) if level > 0 else delivery.name,
            "x-dead-letter-strategy": "at-least-once",
        })
        queue.declare()
        queue.bind_to(name, routing_key)
        routing_key = "*." + routing_key
    routing_key = "0.#"
    for level in range(ndd.MAX_LEVEL, 0, -1):
        Exchange(ndd.level_name(level - 1, PREFIX), "topic", channel=channel).bind_to(
            ndd.level_name(level, PREFIX), routing_key)
        routing_key = "*." + routing_key
    delivery.bind_to(ndd.level_name(0, PREFIX), routing_key)


def bind(connection: Any, queue: Any) -> None:
    ndd.bind_queue_to_native_delayed_delivery_exchange(connection, queue, prefix=PREFIX)


def route(delay: float, routing_key: str) -> tuple[str, str]:
    """(exchange, routing key) that delivers to ``routing_key`` after ``delay`` seconds (1 s steps)."""
    seconds = max(1, int(-(-delay // 1)))
    return ndd.level_name(ndd.MAX_LEVEL, PREFIX), ndd.calculate_routing_key(seconds, routing_key)
