"""Broker selection: an AMQP URL means RabbitMQ, anything else the embedded one."""

from __future__ import annotations

from msgd.broker.base import Broker, Delivery, Outgoing, PublishError
from msgd.settings import Settings

__all__ = ["Broker", "Delivery", "Outgoing", "PublishError", "make_broker"]


def make_broker(settings: Settings) -> Broker:
    if settings.embedded:
        from msgd.broker.embedded import EmbeddedBroker

        return EmbeddedBroker(settings)
    from msgd.broker.amqp import AmqpBroker

    return AmqpBroker(settings)
