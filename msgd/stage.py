"""Turn a stage's handler into a broker batch handler that never dies on one message.

Cross-cutting concerns live here (dramatiq's middleware habit): decoding,
parking undecodable messages, isolating a message that crashes its handler,
and telling an outage (the store is down: retry the batch) from a bad message
(park it with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from msgd.broker.base import BatchHandler, Delivery, Outgoing
from msgd.envelope import now_iso
from msgd.redact import redact_text
from msgd.topology import STATUS_ROUTE

log = structlog.get_logger("msgd.stage")


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
    headers = dict(delivery.headers)
    headers.update({
        "x-msgd-reason": redact_text(reason)[:2000],
        "x-msgd-stage": stage,
        "x-msgd-source-queue": delivery.queue,
        "x-msgd-parked-at": now_iso(),
    })
    log.warning("message parked", stage=stage, queue=delivery.queue, reason=headers["x-msgd-reason"])
    return Outgoing(
        route=delivery.routing_key, body=delivery.body, exchange="parking",
        headers=headers, content_type=delivery.content_type or "application/octet-stream",
    )


def batch_statuses(out: list[Outgoing]) -> list[Outgoing]:
    """All status reports of a batch travel as one broker message (schemas/status-batch.v1.json).

    The reports are already JSON; they are joined, not decoded and encoded again.
    """
    reports = [o.body for o in out if o.route == STATUS_ROUTE and o.exchange == "internal" and not o.delay]
    if len(reports) < 2:
        return out
    body = b'{"v":1,"kind":"status-batch","reports":[' + b",".join(reports) + b"]}"
    rest = [o for o in out if not (o.route == STATUS_ROUTE and o.exchange == "internal" and not o.delay)]
    return [*rest, Outgoing(route=STATUS_ROUTE, body=body)]


def _is_outage(exc: BaseException) -> bool:
    """True for a dependency failure: the batch is retried, not parked.

    A broken database connection is closed here so that the retry reconnects
    (Django only checks connections between web requests, and stages make none).
    """
    if isinstance(exc, Outage):
        return True
    from django.db import InterfaceError, OperationalError, connections

    if isinstance(exc, OperationalError | InterfaceError):
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        return True
    return False


def parked_event_type(item: Outgoing) -> str:
    """The event type of a parked message, best effort (metrics label; '' when unknown)."""
    try:
        payload = json.loads(item.body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(payload, dict):
        return ""
    event = payload.get("event")
    value = payload.get("event_type") or (event.get("type") if isinstance(event, dict) else None)
    if value is None and payload.get("kind") is None:
        value = payload.get("type")  # a billing event itself
    return str(value or "")[:64]


def batch_handler(stage: Stage, on_parked: Callable[[list[Outgoing]], Any] | None = None) -> BatchHandler:
    """``on_parked`` is called with the messages of a batch that went to parking (metrics)."""
    def handle(batch: list[Delivery]) -> list[Outgoing]:
        out: list[Outgoing] = []
        good: list[Received] = []
        for d in batch:
            try:
                payload = json.loads(d.body)
            except (ValueError, UnicodeDecodeError) as exc:
                out.append(park(d, stage.name, f"body is not valid JSON: {exc}"))
                continue
            if not isinstance(payload, dict):
                out.append(park(d, stage.name, f"body must be a JSON object, got {type(payload).__name__}"))
                continue
            good.append(Received(d, payload))
        if good:
            try:
                out.extend(stage.handle(good))
            except Exception as exc:
                if _is_outage(exc):
                    raise
                log.warning("batch failed; retrying one by one to isolate the bad message",
                            stage=stage.name, error=redact_text(str(exc)))
                for item in good:
                    try:
                        out.extend(stage.handle([item]))
                    except Exception as one_exc:
                        if _is_outage(one_exc):
                            raise
                        reason = f"{stage.name} failed on this message: {type(one_exc).__name__}: {one_exc}"
                        out.append(park(item.delivery, stage.name, reason))
        if on_parked is not None:
            parked = [o for o in out if o.exchange == "parking"]
            if parked:
                on_parked(parked)
        return batch_statuses(out)

    return handle
