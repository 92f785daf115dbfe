"""The sender stage's units of work and the verdicts it reaches about them (services/senders/stage.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from queue import SimpleQueue

from msgd import storable
from msgd.store.cache import OperatorView
from services.senders.base import (
    ChannelConfig,
    MaybeSent,
    Outbound,
    OutcomeUnknown,
    SendError,
    SendResult,
)

# Seconds a recorded outcome may wait to be written together with the next ones.
FLUSH_AFTER = 0.05
# Seconds between looks for free request slots while a batch's messages wait for one.
SLOT_POLL = 0.005
UNKNOWN_OUTCOME = (
    "outcome unknown: the sender stopped while the gateway was handling this message;"
    " not sent again so the subscriber does not get it twice"
)


@dataclass
class Job:
    msg: Outbound
    op: OperatorView
    configs: list[ChannelConfig]  # main gateway first, then fallbacks
    gateway: str = ""  # host of the gateway tried last (metrics label)
    settings_id: int | None = None  # the slot tried last (delivery reports name it)


@dataclass
class Result:
    job: Job
    ok: SendResult | None
    error: SendError | None
    seconds: float


def context(msg: Outbound) -> dict[str, str]:
    """What every log line about a message carries (structlog contextvars)."""
    return {"event_id": msg.event_id, "message_id": msg.message_id, "operator": msg.operator_code,
            "channel": msg.channel}


def after_maybe_sent(exc: MaybeSent, policy: str) -> SendError:
    """What a request that may have been delivered becomes (the channel's ``on_timeout``): retried
    when the far side drops repeats of this message id or ``on_timeout`` is ``retry``, else final
    "outcome unknown", never sent again."""
    if exc.dedupes:
        exc.reason += "; retried safely: the gateway drops a repeat of this message id"
    elif policy == "retry":
        exc.reason += " (on_timeout: retry — the subscriber may get it twice)"
    else:
        return OutcomeUnknown(
            f"outcome unknown: {exc.reason}; not sent again so the subscriber does not get it twice"
            " (on_timeout: unknown) — check the gateway's account, and resend it if it did not go out",
            code=exc.code,
        )
    exc.args = (exc.reason,)
    return exc


def unstorable_field(msg: Outbound) -> str | None:
    """Why a message cannot be sent with a record of what was sent (NUL, lone surrogates), or None."""
    for name in ("recipient", "sender", "subject", "body", "html"):
        if (problem := storable.problem(getattr(msg, name) or "")) is not None:
            return f"the {name} {problem}"
    return None


class Slots:
    """The requests a sender process may have in flight (``limit``: ``Settings.sender_slots``,
    ``MSGD_SENDER_CONCURRENCY`` + ``MSGD_SENDER_FAST_SLOTS``), shared by its consumers
    (``MSGD_SENDER_CONSUMERS``): a batch takes slots for a wave and gives each back when its
    request has ended.

    ``reserved`` of them (``MSGD_SENDER_FAST_SLOTS``, at most ``limit - 1``) are the fast lane's:
    a batch of bulk messages never takes them, so a password reset finds a slot at once while
    bulk batches hold all the others (``fast`` callers may take any free slot)."""

    def __init__(self, limit: int, reserved: int = 0) -> None:
        self.limit = max(1, limit)
        self.reserved = max(0, min(reserved, self.limit - 1))
        self._used = 0
        self._cond = threading.Condition()

    def _cap(self, fast: bool) -> int:
        return self.limit if fast else self.limit - self.reserved

    def free(self, fast: bool = False) -> int:
        """Slots a (``fast`` lane) batch could take now."""
        with self._cond:
            return max(0, self._cap(fast) - self._used)

    def take(self, want: int, wait: bool, fast: bool = False) -> int:
        """Up to ``want`` slots, as many as are free (to a ``fast`` lane batch: the reserved
        ones too); with ``wait``, at least one (blocks until another batch gives one back: its
        requests end within their timeout)."""
        cap = self._cap(fast)
        with self._cond:
            while wait and want > 0 and self._used >= cap:
                self._cond.wait(0.5)
            n = max(0, min(want, cap - self._used))
            self._used += n
            return n

    def give(self, n: int) -> None:
        if n:
            with self._cond:
                self._used -= n
                self._cond.notify_all()


Completed = SimpleQueue["Result | BaseException"]


def result_of(item: Result | BaseException) -> Result:
    """A request's ``Result``, or the exception that ended it raised (the loop was closing)."""
    if isinstance(item, BaseException):
        raise item
    return item


class Waves:
    """Starts a wave of requests on the sender's event loop in one hand-off (a coroutine and a
    future per message cost more than many requests); each request's ``Result``, or the
    exception that ended it, goes into the batch's ``Completed`` queue as it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def start(self, jobs: list[Job], send: Callable[[Job], Awaitable[Result]], completed: Completed) -> None:
        loop = asyncio.get_running_loop()
        for job in jobs:
            task = loop.create_task(self._one(job, send, completed))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _one(job: Job, send: Callable[[Job], Awaitable[Result]], completed: Completed) -> None:
        try:
            completed.put(await send(job))
        except BaseException as exc:
            completed.put(exc)
            raise
