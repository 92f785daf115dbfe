"""An example billing-side consumer of msgd's feedback, in plain pika (README "Feedback to billing").

    python examples/feedback_consumer.py amqp://guest:guest@127.0.0.1:5672/ [namespace]

Declares billing's own durable queue, binds it to the topic exchange ``msgd.feedback`` for dead
contacts (and final states, when the operator has ``feedback_messages: true``), and acknowledges
each event after handling it. ``id`` is the idempotency key: remember the ids you handled.
"""

from __future__ import annotations

import json
import sys

import pika


def handle(event: dict) -> None:
    if event["type"] == "contact.invalid":
        # e.g. UPDATE contacts SET broken = true WHERE abonent_id = ... AND value = ...
        print(f"operator {event['operator']}: subscriber {event['subscriber_id']}'s {event['channel']}"
              f" contact is dead ({event['cause']}): {event['reason']}")
    else:
        print(f"message {event['message_id']} of subscriber {event['subscriber_id']}: {event['state']}")


def main(url: str, namespace: str = "msgd") -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    exchange = f"{namespace}.feedback"
    ch.exchange_declare(exchange, exchange_type="topic", durable=True)  # msgd declares it too
    queue = "billing.msgd-feedback"
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind(queue, exchange, routing_key="contact.invalid.*")
    ch.queue_bind(queue, exchange, routing_key="message.*")
    ch.basic_qos(prefetch_count=50)

    def on_message(channel, method, properties, body: bytes) -> None:  # type: ignore[no-untyped-def]
        handle(json.loads(body))
        channel.basic_ack(method.delivery_tag)

    ch.basic_consume(queue, on_message)
    try:
        ch.start_consuming()
    finally:
        conn.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
