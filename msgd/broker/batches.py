"""Handle one consumed batch until it is done, the stop event is set, or its bad message is found.

Both brokers call ``run_batch``.  A stage's batch handler (``msgd.stage``) parks
every message that fails on its own, so whatever still escapes it is a named
dependency failure, an outage: the batch is retried in place (redelivering it
would burn the queue's delivery limit) with exponential backoff, and the stop
event is watched in every pause, so SIGTERM returns the batch within a pause.

One message can still look like an outage (a query that always times out, a
row the database refuses with an "operational" error).  So after
``SPLIT_AFTER`` failed tries the batch is split in halves, each handled on its
own; once a part has succeeded, a failing part is split further at once, down
to the single message, which is parked with the last error when the stage's
dependencies answer (``handler.dependencies_up()``).  While nothing succeeds it
is an outage: the parts wait, never parked.  A batch of one message is parked
after ``LONE_TRIES`` failures while the dependencies answer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from msgd.broker.base import Delivery, Outgoing
from msgd.envelope import now_iso
from msgd.redact import redact_text

log = structlog.get_logger("msgd.broker")

SPLIT_AFTER = 3  # failed tries of a whole batch before it is split
LONE_TRIES = 8  # failed tries of a one-message batch, dependencies up, before it is parked
FIRST_PAUSE = 0.5  # seconds; doubled after each round of failures
MAX_PAUSE = 10.0
REASON_LIMIT = 2000  # characters of a parking reason

# Waits up to the given seconds, keeping the broker connection alive; False when stopping.
Pause = Callable[[float], bool]


def parked_copy(delivery: Delivery, stage: str, reason: str) -> Outgoing:
    """A copy for the parking exchange: the original body and headers plus why it was parked
    (``x-msgd-reason``, secrets masked, at most ``REASON_LIMIT`` characters), which stage and
    queue gave it up, and when."""
    headers = dict(delivery.headers or {})
    headers.update({
        "x-msgd-reason": redact_text(reason, limit=REASON_LIMIT),
        "x-msgd-stage": stage,
        "x-msgd-source-queue": delivery.queue,
        "x-msgd-parked-at": now_iso(),
    })
    log.warning("message parked", stage=stage, queue=delivery.queue, reason=headers["x-msgd-reason"])
    return Outgoing(
        route=delivery.routing_key, body=delivery.body, exchange="parking",
        headers=headers, content_type=delivery.content_type or "application/octet-stream",
    )


def describe_error(exc: BaseException, limit: int = 500) -> str:
    """``ClassName: message``, the message cut to ``limit`` characters before any other work
    (an exception may quote a huge value: a KeyError of a 500,000-character key)."""
    text = str(exc)
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text)} characters)"
    return f"{type(exc).__name__}: {text}"


@dataclass
class Outcome:
    """What a batch produced: ``out`` to publish, then ``done`` to acknowledge.

    Deliveries of the batch not in ``done`` were not handled (the stop event was set):
    the broker gives them back to the queue.
    """

    out: list[Outgoing] = field(default_factory=list)
    done: list[Delivery] = field(default_factory=list)


@dataclass
class _Part:
    items: list[Delivery]
    from_split: bool = False
    failures: int = 0


def _dependencies_up(handler: Any) -> bool:
    probe = getattr(handler, "dependencies_up", None)
    if probe is None:
        return True
    try:
        return bool(probe())
    except Exception:  # noqa: BLE001 - a probe that fails says "down"
        return False


def run_batch(handler: Callable[[list[Delivery]], Sequence[Outgoing]], batch: list[Delivery],
              stop: threading.Event, pause: Pause) -> Outcome:
    """Run ``handler`` on ``batch`` as the module docstring says; never raises what the
    handler raises (``BaseException`` outside ``Exception``, e.g. KeyboardInterrupt, passes)."""
    stage = str(getattr(handler, "stage_name", "") or "consumer")
    result = Outcome()
    parts: deque[_Part] = deque([_Part(list(batch))])
    wait = FIRST_PAUSE
    failed_in_a_row = 0  # failures since the last success or pause
    succeeded = False  # some part of this batch was handled
    while parts and not stop.is_set():
        part = parts.popleft()
        try:
            produced = handler(part.items)
        except Exception as exc:  # noqa: BLE001 - msgd.stage lets only outages through
            part.failures += 1
            lone = len(part.items) == 1
            if lone and (part.from_split and succeeded or part.failures >= LONE_TRIES) \
                    and _dependencies_up(handler):
                copy = parked_copy(
                    part.items[0], stage,
                    f"{stage} kept failing on this message ({describe_error(exc)}; tried"
                    f" {part.failures} more time(s) on its own after its batch kept failing, while the"
                    " stage's dependencies answer): parked so that the queue goes on")
                result.out.append(copy)
                result.done.extend(part.items)
                on_parked = getattr(handler, "on_parked", None)
                if on_parked is not None:
                    on_parked([copy])
                continue
            if not lone and (succeeded or part.failures >= SPLIT_AFTER):
                half = len(part.items) // 2
                log.warning("batch keeps failing; splitting it to find the message that fails",
                            stage=stage, size=len(part.items), error=redact_text(describe_error(exc)))
                parts.extendleft([_Part(part.items[half:], True), _Part(part.items[:half], True)])
                continue
            parts.append(part)  # try the other parts first: they may show the dependencies are up
            failed_in_a_row += 1
            if failed_in_a_row >= len(parts):
                log.error("stage cannot process a batch (a dependency is down?); retrying",
                          stage=stage, error=redact_text(describe_error(exc)), retry_in=wait)
                if not pause(wait):
                    break
                wait, failed_in_a_row = min(wait * 2, MAX_PAUSE), 0
            continue
        result.out.extend(produced)
        result.done.extend(part.items)
        succeeded, failed_in_a_row, wait = True, 0, FIRST_PAUSE
    return result
