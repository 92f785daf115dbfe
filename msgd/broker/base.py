"""The one broker interface (dramatiq habit): RabbitMQ for real, SQLite embedded.

A stage never talks to a transport directly.  It receives a batch of
``Delivery`` objects, returns what to publish, and the broker acks the whole
batch only after every outgoing message is confirmed by the broker.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ExchangeKind = Literal["events", "internal", "parking", "feedback"]


class PublishError(RuntimeError):
    """The broker did not confirm a publish; nothing in the batch is acked."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish.  ``route`` is the routing key on ``exchange``."""

    route: str
    body: bytes
    exchange: ExchangeKind = "internal"
    delay: float = 0.0
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Delivery:
    """One received message, transport-neutral."""

    body: bytes
    queue: str
    routing_key: str
    headers: dict[str, Any]
    redelivered: bool = False
    content_type: str | None = None
    tag: Any = None


BatchHandler = Callable[[list[Delivery]], Sequence[Outgoing]]


def body_bytes(body: object, encoding: str | None = None) -> bytes:
    """A received body as the bytes that were sent.

    py-amqp hands over ``str`` for a zero-length body (``''``) and for a body it decoded by
    its ``content_encoding``; that is undone here (a body it could not decode stays bytes).
    """
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if body is None:
        return b""
    text = str(body)
    if encoding:
        try:
            return text.encode(encoding)
        except (LookupError, UnicodeError):
            pass
    return text.encode("utf-8", "surrogatepass")


class Broker(ABC):
    """What every stage and the ``publish`` command rely on."""

    embedded: bool = False

    @abstractmethod
    def setup(self, channels: list[str]) -> None:
        """Declare exchanges, queues and bindings (idempotent)."""

    @abstractmethod
    def publish(self, items: Sequence[Outgoing]) -> None:
        """Publish persistently; return only when the broker has confirmed all."""

    @abstractmethod
    def consume(
        self,
        queues: Sequence[str],
        handler: BatchHandler,
        stop: threading.Event,
        batch_size: int = 100,
        batch_wait: float = 0.02,
    ) -> None:
        """Feed batches to ``handler`` until ``stop`` is set.

        Queues listed first are served first (the transactional lane).  The
        handler's outgoing messages are published (confirmed) before the batch
        is acked; if the handler or the publish raises, nothing is acked and
        the batch comes back.
        """

    @abstractmethod
    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages ready in each queue (for metrics and tests)."""

    @abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        return type(self).__name__
