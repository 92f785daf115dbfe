"""Turn a stage's handler into a broker batch handler that never dies or stalls on one message.

Cross-cutting concerns live here (dramatiq's middleware habit): decoding with
``msgd.safejson`` (size, depth and Unicode checked before any work), parking
what cannot be decoded, and telling an outage from a bad message.  Only named
dependency failures are outages (``is_outage``): they leave the handler and the
broker retries the batch (``msgd.broker.batches``).  Any other exception is the
message's: the batch is split in halves until the message is found, which is
parked with the exception as its reason, and the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from msgd import safejson
from msgd.broker.base import BatchHandler, Delivery, Outgoing, PublishError
from msgd.broker.batches import describe_error, parked_copy
from msgd.redact import redact_text
from msgd.topology import STATUS_ROUTE

log = structlog.get_logger("msgd.stage")

# Messages between stages are written by msgd from an accepted event (a render job nests
# the event one level down; a status batch holds up to a batch of messages), so their limits
# are wider than the event's; the size is RabbitMQ's own default maximum message size.
INTERNAL_MAX_BYTES = 128 * 1024 * 1024
INTERNAL_MAX_DEPTH = safejson.DEFAULT_MAX_DEPTH + 8
# A status batch larger than this is published as several (each report stays whole).
STATUS_BATCH_BYTES = 4 * 1024 * 1024


class Outage(Exception):
    """A dependency is down; the batch must be retried, not parked."""


@dataclass
class Received:
    delivery: Delivery
    payload: dict[str, Any]


class Stage(Protocol):
    name: str

    def handle(self, items: list[Received]) -> Sequence[Outgoing]: ...


def park(delivery: Delivery, stage: str, reason: str) -> Outgoing:
    """A parked copy keeps the original body and headers plus why it was parked."""
    return parked_copy(delivery, stage, reason)


def batch_statuses(out: list[Outgoing]) -> list[Outgoing]:
    """All status reports of a batch travel as one broker message (schemas/status-batch.v1.json),
    or as several of at most ``STATUS_BATCH_BYTES`` when the reports carry large texts.

    The reports are already JSON; they are joined, not decoded and encoded again.
    """
    def is_report(o: Outgoing) -> bool:
        return o.route == STATUS_ROUTE and o.exchange == "internal" and not o.delay

    reports = [o.body for o in out if is_report(o)]
    if len(reports) < 2:
        return out
    rest = [o for o in out if not is_report(o)]
    groups: list[list[bytes]] = [[]]
    size = 0
    for body in reports:
        if groups[-1] and size + len(body) > STATUS_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += len(body) + 1
    for group in groups:
        body = group[0] if len(group) == 1 else (
            b'{"v":1,"kind":"status-batch","reports":[' + b",".join(group) + b"]}")
        rest.append(Outgoing(route=STATUS_ROUTE, body=body))
    return rest


def _outage_classes() -> tuple[type[BaseException], ...]:
    """Dependency failures by name: the store (Django's OperationalError, InterfaceError),
    the broker (kombu's and py-amqp's connection errors, an unconfirmed publish), and
    ``Outage`` raised by a stage itself."""
    import amqp.exceptions
    import kombu.exceptions
    from django.db import InterfaceError, OperationalError

    return (Outage, PublishError, OperationalError, InterfaceError, kombu.exceptions.OperationalError,
            amqp.exceptions.ConnectionError, amqp.exceptions.RecoverableConnectionError)


def is_outage(exc: BaseException) -> bool:
    """True for a named dependency failure: the batch is retried, not parked.

    A broken database connection is closed here so that the retry reconnects
    (Django only checks connections between web requests, and stages make none).
    """
    if not isinstance(exc, _outage_classes()):
        return False
    from django.db import InterfaceError, OperationalError, connections

    if isinstance(exc, OperationalError | InterfaceError):
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
    return True


def store_answers() -> bool:
    """True when every database connection this process opened answers ``SELECT 1``."""
    from django.db import connections

    try:
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False
    return True


def parked_event_type(item: Outgoing) -> str:
    """The event type of a parked message, best effort (metrics label; '' when unknown)."""
    if len(item.body) > safejson.DEFAULT_MAX_BYTES:
        return ""
    try:
        payload = safejson.loads(item.body)
    except safejson.InvalidJSON:
        return ""
    if not isinstance(payload, dict):
        return ""
    event = payload.get("event")
    value = payload.get("event_type") or (event.get("type") if isinstance(event, dict) else None)
    if value is None and payload.get("kind") is None:
        value = payload.get("type")  # a billing event itself
    return str(value or "")[:64]


class StageBatchHandler:
    """The broker's batch handler for one stage (``batch_handler`` builds it).

    Called with a batch of deliveries, it returns what to publish: the stage's output plus a
    parked copy of every message that could not be decoded or made the stage raise.  It
    raises only outages (``is_outage``).  ``stage_name`` and ``dependencies_up`` are what
    ``msgd.broker.batches`` uses to park a message that keeps failing like an outage.
    """

    def __init__(self, stage: Stage, on_parked: Callable[[list[Outgoing]], Any] | None,
                 max_body_bytes: int, max_depth: int) -> None:
        self.stage = stage
        self.stage_name = stage.name
        self.on_parked = on_parked
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth

    def dependencies_up(self) -> bool:
        return store_answers()

    def __call__(self, batch: list[Delivery]) -> list[Outgoing]:
        out: list[Outgoing] = []
        good: list[Received] = []
        for d in batch:
            payload = self._decode(d, out)
            if payload is not None:
                good.append(Received(d, payload))
        if good:
            self._handle(good, out)
        if self.on_parked is not None:
            parked = [o for o in out if o.exchange == "parking"]
            if parked:
                self.on_parked(parked)
        return batch_statuses(out)

    def _decode(self, d: Delivery, out: list[Outgoing]) -> dict[str, Any] | None:
        try:
            payload = safejson.loads(d.body, max_bytes=self.max_body_bytes, max_depth=self.max_depth)
        except safejson.InvalidJSON as exc:
            out.append(park(d, self.stage.name, exc.reason))
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. MemoryError: still this message's fault
            out.append(park(d, self.stage.name, f"body could not be decoded: {describe_error(exc)}"))
            return None
        if not isinstance(payload, dict):
            out.append(park(d, self.stage.name, f"body must be a JSON object, got {type(payload).__name__}"))
            return None
        return payload

    def _handle(self, items: list[Received], out: list[Outgoing]) -> None:
        """The stage on ``items``; on a failure that is not an outage, each half on its own,
        down to the message that fails (O(k log n) calls for k bad messages of n)."""
        try:
            out.extend(self.stage.handle(items))
            return
        except Exception as exc:
            if is_outage(exc):
                raise
            if len(items) == 1:
                reason = f"{self.stage.name} failed on this message: {describe_error(exc)}"
                out.append(park(items[0].delivery, self.stage.name, reason))
                return
            log.warning("batch failed; splitting it to find the message that fails",
                        stage=self.stage.name, size=len(items),
                        error=redact_text(describe_error(exc)))
        half = len(items) // 2
        self._handle(items[:half], out)
        self._handle(items[half:], out)


def batch_handler(stage: Stage, on_parked: Callable[[list[Outgoing]], Any] | None = None, *,
                  max_body_bytes: int = INTERNAL_MAX_BYTES,
                  max_depth: int = INTERNAL_MAX_DEPTH) -> BatchHandler:
    """The broker handler for ``stage``; ``on_parked`` is called with the messages of a batch
    that went to parking (metrics).  A body over ``max_body_bytes`` bytes or nesting deeper
    than ``max_depth`` is parked undecoded (the router passes the event limits)."""
    return StageBatchHandler(stage, on_parked, max_body_bytes, max_depth)
