"""Sender stage for one channel: quiet hours, claim, send concurrently, retry or finish.

Per batch: messages inside quiet hours go back to the broker delayed to the
window's end; the rest are reserved in one transaction (services/senders/claims.py);
reserved ones are sent on the sender's event loop, at most ``MSGD_SENDER_CONCURRENCY``
at a time (gateway latency overlaps; services/senders/aio.py), each
wave marked ``sending`` just before its requests start and each outcome written
as its request completes; the batch's reports go to the recorder; transient
failures come back through the broker after a backoff until the operator's
attempt count is used up.

After a crash, a redelivered batch finds: outcomes written (reported again),
messages that were in flight (``sending``: after ``MSGD_CLAIM_LEASE_SECONDS``
they end failed "outcome unknown", never sent twice) and messages never started
(``reserved``: taken over and sent once).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from queue import Empty, SimpleQueue

import structlog
from django.utils import timezone

from msgd import logs, metrics
from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import (
    DELAYED,
    FAILED,
    FAULT_GATEWAY,
    FAULT_UNKNOWN,
    RETRYING,
    SENT,
    SUPPRESSED,
    dumps,
)
from msgd.quiet import quiet_delay
from msgd.retry import backoff
from msgd.settings import Settings
from msgd.stage import Received
from msgd.status import status
from msgd.store.cache import ConfigCache
from msgd.store.models import Claim
from services.senders import claims
from services.senders.base import (
    ChannelSender,
    MaybeSent,
    Outbound,
    OutcomeUnknown,
    PermanentError,
    SendError,
    SendResult,
    TransientError,
)
from services.senders.jobs import (
    FLUSH_AFTER,
    SLOT_POLL,
    UNKNOWN_OUTCOME,
    Completed,
    Job,
    Result,
    Slots,
    Waves,
    after_maybe_sent,
    context,
    result_of,
    unstorable_field,
)
from services.senders.outbox.writer import write_outbox
from services.senders.registry import sender_classes

log = structlog.get_logger("msgd.sender")



class SenderStage:
    """The sender stage of one channel (the module doc). Several stages of one process (its
    consumers, ``consumers``) share one ``sender`` (event loop, connection pool), one snapshot of
    the configuration and the ``MSGD_SENDER_CONCURRENCY`` request ``slots``."""

    def __init__(self, settings: Settings, channel: str, cache: ConfigCache | None = None,
                 sender: ChannelSender | None = None, slots: Slots | None = None) -> None:
        self.settings = settings
        self.channel = channel
        self.name = f"sender:{channel}"
        self.cache = cache or ConfigCache(settings.config_refresh_seconds)
        self.sender = sender or sender_classes()[channel](settings)
        self.slots = slots or Slots(settings.sender_slots, settings.sender_fast_slots)
        self.waves = Waves()
        metrics.count_failures_from_zero(channel, "none")  # failures before any gateway is tried

    def consumers(self, count: int) -> list[SenderStage]:
        """``count`` stages sharing this one's sender, configuration snapshot and request slots
        (this stage is the first; close only it)."""
        return [self, *(SenderStage(self.settings, self.channel, self.cache, self.sender, self.slots)
                        for _ in range(max(1, count) - 1))]

    def close(self) -> None:
        """Let requests in flight finish, then release the sender's connections and loop."""
        self.sender.close()
        self.sender.aio.close()  # in case a channel's close() does not end with ChannelSender.close

    # -- routing helpers ----------------------------------------------------
    def _again(self, msg: Outbound, delay: float) -> Outgoing:
        return Outgoing(route=topo.send_route(msg.channel, msg.lane), body=dumps(msg.to_wire()), delay=delay)

    def _final(self, msg: Outbound, state: str, reason: str, fault: str = "", gateway: str = "",
               **kw: object) -> Outgoing:
        """A final report; a failure carries its fault class (and counts by gateway host)."""
        metrics.child(metrics.MESSAGES_FINAL, msg.channel, state).inc()
        if state == FAILED:
            fault = fault or FAULT_UNKNOWN
            metrics.FAILURES.labels(msg.channel, gateway or "none", fault).inc()
        return status(msg.message_id, state, message=msg.to_wire(), reason=reason,
                      attempt=msg.attempt, fault=fault, **kw)  # type: ignore[arg-type]

    # -- the batch ------------------------------------------------------------
    def handle(self, items: list[Received]) -> Sequence[Outgoing]:
        now = timezone.now()
        out: list[Outgoing] = []
        jobs: dict[str, Job] = {}
        for item in items:
            msg = Outbound.from_wire(item.payload)
            with logs.bound(**context(msg)):
                self._prepare(msg, now, jobs, out)
        if not jobs:
            return out
        owner, rows = claims.claim([(mid, j.msg.attempt) for mid, j in jobs.items()])
        mine: list[Job] = []
        finished: list[claims.Finish] = []
        for mid, job in jobs.items():
            row = rows.get(mid)
            if row is not None and row.owner == owner:
                mine.append(job)
            else:
                with logs.bound(**context(job.msg)):
                    out.extend(self._not_claimed(job, row, now, finished))
        out.extend(self._send_all(owner, mine, finished))
        return out

    def _prepare(self, msg: Outbound, now: dt.datetime, jobs: dict[str, Job], out: list[Outgoing]) -> None:
        """Quiet hours and settings checks; a message to send joins ``jobs``."""
        if msg.message_id in jobs:  # the same message twice in one batch
            metrics.DUPLICATES.labels(msg.channel).inc()
            return
        if (problem := unstorable_field(msg)) is not None:  # the log row could not say what went out
            out.append(self._final(msg, FAILED, f"not sent: {problem}", code="content.refused"))
            return
        op = self.cache.operator(msg.operator_code)
        if op is None:
            out.append(self._final(msg, FAILED, f"operator {msg.operator_code!r} is no longer configured",
                                   FAULT_GATEWAY, code="gateway.not_configured"))
            return
        wait = quiet_delay(op.quiet_start, op.quiet_end, op.timezone, now)
        if wait is not None:
            metrics.QUIET_DELAYS.labels(msg.channel).inc()
            until = (now + dt.timedelta(seconds=wait)).astimezone(op.timezone)
            out.append(self._again(msg, wait))
            out.append(status(msg.message_id, DELAYED, message=msg.to_wire(), attempt=msg.attempt,
                              reason=f"quiet hours: held until {until:%Y-%m-%d %H:%M:%S} {op.timezone}"))
            log.info("message delayed by quiet hours", until=f"{until:%Y-%m-%d %H:%M:%S}")
            return
        configs = op.channels.get(msg.channel) or []
        if not configs:
            out.append(self._final(msg, FAILED, f"operator {op.code} has no {msg.channel} settings:"
                                                " configure the channel, then resend", FAULT_GATEWAY,
                                   code="gateway.not_configured"))
            return
        jobs[msg.message_id] = Job(msg, op, configs)

    def _not_claimed(self, job: Job, row: Claim | None, now: dt.datetime,
                     finished: list[claims.Finish]) -> list[Outgoing]:
        """Someone holds or held this message: never send it again (outcomes to record join
        ``finished``)."""
        msg = job.msg
        metrics.DUPLICATES.labels(msg.channel).inc()
        if row is None:
            return []
        if row.state == claims.DONE:
            # Report the recorded outcome again: the first report may have been lost in a crash.
            return [status(msg.message_id, row.outcome, message=msg.to_wire(), reason=row.reason,
                           attempt=row.attempt, gateway_message_id=row.gateway_message_id, fault=row.fault,
                           code=row.reason_code)]
        if row.state == claims.RETRY and row.attempt == msg.attempt:
            # This attempt's retry was recorded, but its sender may have died before it published
            # the next attempt: publish it (a second copy of it cannot send twice: one claims it).
            delay = backoff(msg.attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds)
            return [self._again(replace(msg, attempt=msg.attempt + 1), delay)]
        if row.state in (claims.SENDING, claims.RESERVED) and row.attempt >= msg.attempt:
            age = row.age(now)
            lease = self.settings.claim_lease_seconds
            if row.state == claims.RESERVED or age < lease:
                # Its holder may still be working: look again when the lease ends.
                return [self._again(msg, max(lease - age, 0) + 1)]
            finished.append(claims.Finish(msg.message_id, claims.DONE, FAILED, UNKNOWN_OUTCOME,
                                          fault=FAULT_UNKNOWN, code="unknown.outcome"))
            log.warning("delivery outcome unknown after a sender stopped", message_id=msg.message_id,
                        channel=msg.channel)
            return [self._final(msg, FAILED, UNKNOWN_OUTCOME, FAULT_UNKNOWN, job.gateway, code="unknown.outcome")]
        return []  # an older attempt's stray copy; the current attempt is elsewhere

    async def _send_one(self, job: Job) -> Result:
        """One message on the sender's event loop (each task has its own log context)."""
        with logs.bound(**context(job.msg)):
            return await self._send_one_bound(job)

    async def _send_one_bound(self, job: Job) -> Result:
        started = time.monotonic()
        metrics.child(metrics.IN_FLIGHT, self.channel).inc()
        try:
            if not self.settings.enabled:
                return Result(job, None, None, 0.0)
            return Result(job, await self._via_gateways(job), None, time.monotonic() - started)
        except SendError as exc:
            return Result(job, None, exc, time.monotonic() - started)
        except Exception:  # noqa: BLE001 - a bug in a channel must not lose the message
            err = PermanentError(f"the {self.channel} sender failed on this message in an unexpected way (a bug"
                                 " in msgd: the sender's log has the details) — not sent again; check the"
                                 " gateway's account before resending it", fault=FAULT_UNKNOWN,
                                 code="unknown.sender_bug")
            log.exception("sender crashed on a message", message_id=job.msg.message_id)
            return Result(job, None, err, time.monotonic() - started)
        finally:
            metrics.child(metrics.IN_FLIGHT, self.channel).dec()

    async def _via_gateways(self, job: Job) -> SendResult:
        """The main gateway, then each fallback while the failure is transient."""
        for position, config in enumerate(job.configs, start=1):
            job.gateway = metrics.gateway_host(config.params, config.outbox)
            job.settings_id = config.id
            metrics.count_failures_from_zero(self.channel, job.gateway)
            try:
                if config.outbox:
                    self.sender.check_recipient(job.msg, config)
                    self.sender.check_content(job.msg, config)
                    path = await asyncio.to_thread(self._outbox, job.msg)
                    result = SendResult(gateway_message_id=path.name, detail=f"written to {path}")
                else:
                    policy = self.sender.on_timeout(config)  # before any request
                    try:
                        result = await self.sender.send_async(job.msg, config)
                    except MaybeSent as exc:
                        raise after_maybe_sent(exc, policy) from None
            except SendError as exc:
                metrics.SEND_ATTEMPTS.labels(job.msg.channel, job.gateway, "error").inc()
                if exc.permanent or position == len(job.configs):
                    raise
                # event, message, operator and channel are bound by _send_one
                log.warning("gateway failed, trying the fallback", gateway=job.gateway, position=position,
                            reason=exc.reason)
                continue
            metrics.child(metrics.SEND_ATTEMPTS, job.msg.channel, job.gateway, "ok").inc()
            if position > 1:
                result.detail = f"via fallback gateway #{position}: {result.detail}"
                result.extra["gateway"] = position
            return result
        raise AssertionError("unreachable: a channel without settings is failed before sending")

    def _outbox(self, msg: Outbound) -> Path:
        """Write to the outbox; a directory that cannot be written is retried (nothing went out),
        and is the operator's to fix when the attempts run out."""
        try:
            return write_outbox(self.settings.outbox_dir, msg)
        except OSError as exc:
            raise TransientError(f"cannot write the message to the outbox {self.settings.outbox_dir}:"
                                 f" {exc.strerror or 'write failed'} — check the directory's free space and"
                                 " permissions", fault=FAULT_GATEWAY, code="gateway.outbox") from None

    def _send_all(self, owner: str, jobs: list[Job], finished: list[claims.Finish]) -> list[Outgoing]:
        """Send ``jobs`` (reserved by ``owner``), the process at most ``MSGD_SENDER_CONCURRENCY`` at a time.

        Each wave is marked ``sending`` in one statement just before its requests start, and
        outcomes are written as requests complete (with the next wave's start, or after a short
        lull), so after a crash only requests in flight are in doubt and the never started stay
        claimable. Everything is written before this returns, i.e. before the batch's reports
        are published and the batch is acked."""
        out: list[Outgoing] = []
        waiting = deque(jobs)
        completed: Completed = SimpleQueue()  # each request's result, as it ends
        running = 0  # our requests in flight, each holding one of the process's slots
        least = max(1, min(8, self.slots.limit // 4))  # fewer free slots wait for more (fewer round trips)
        fast = any(j.msg.lane == "tx" for j in jobs)  # may take the slots kept for the fast lane
        lull, last_done = False, time.monotonic()
        try:
            while waiting or running or finished:
                wave: list[Job] = []
                if waiting and (not running or self.slots.free(fast) >= min(least, len(waiting))):
                    if not running and finished and not self.slots.free(fast):
                        claims.progress(owner, finished, [])  # written before waiting for a slot
                        finished.clear()
                    taken = self.slots.take(len(waiting), wait=not running, fast=fast)
                    wave = [waiting.popleft() for _ in range(taken)]
                if wave or (finished and (not running or lull or len(finished) >= least)):
                    try:
                        started = claims.progress(owner, finished, [j.msg.message_id for j in wave])
                    except BaseException:
                        self.slots.give(len(wave))
                        raise
                    finished.clear()
                    go = [job for job in wave if job.msg.message_id in started]
                    if go:  # one hand-off to the loop per wave, not per message
                        self.sender.aio.submit(self.waves.start(go, self._send_one, completed))
                        running += len(go)
                    lost = [j for j in wave if j.msg.message_id not in started]
                    self.slots.give(len(lost))
                    if lost:  # taken over by another sender since we reserved them
                        out.extend(self._taken(lost, finished))
                if not running:
                    continue
                # Messages still waiting for a slot look again every SLOT_POLL seconds: another
                # batch of this process may give slots back before any of ours ends.
                timeout = FLUSH_AFTER if finished else None
                if waiting:
                    timeout = SLOT_POLL if timeout is None else min(timeout, SLOT_POLL)
                try:
                    done = [completed.get(timeout=timeout)]
                except Empty:
                    lull = bool(finished) and time.monotonic() - last_done >= FLUSH_AFTER
                    continue
                lull, last_done = False, time.monotonic()
                with contextlib.suppress(Empty):
                    while True:
                        done.append(completed.get_nowait())
                running -= len(done)
                self.slots.give(len(done))
                for result in done:
                    self._conclude_bound(result_of(result), out, finished)
        except Exception:
            # Requests already started still finish; their outcomes are written if the store lets us.
            for _ in range(running):
                result = completed.get()
                self.slots.give(1)
                self._conclude_bound(result_of(result), out, finished)
            with contextlib.suppress(Exception):
                claims.progress(owner, finished, [])
            raise
        return out

    def _taken(self, jobs: list[Job], finished: list[claims.Finish]) -> list[Outgoing]:
        rows, now = claims.rows([j.msg.message_id for j in jobs]), timezone.now()
        out: list[Outgoing] = []
        for job in jobs:
            with logs.bound(**context(job.msg)):
                out.extend(self._not_claimed(job, rows.get(job.msg.message_id), now, finished))
        return out

    def _conclude_bound(self, r: Result, out: list[Outgoing], finished: list[claims.Finish]) -> None:
        with logs.bound(**context(r.job.msg)):
            self._conclude(r, out, finished)

    def _conclude(self, r: Result, out: list[Outgoing], finished: list[claims.Finish]) -> None:
        """Record one attempt's outcome: sent, retry later, or failed."""
        msg, op = r.job.msg, r.job.op
        if r.ok is None and r.error is None:
            reason = "sending is switched off (MSGD_ENABLED=0): recorded, not sent"
            finished.append(claims.Finish(msg.message_id, claims.DONE, SUPPRESSED, reason))
            out.append(self._final(msg, SUPPRESSED, reason))
            log.info("message suppressed", reason=reason)
            return
        metrics.child(metrics.SEND_SECONDS, msg.channel, r.job.gateway or "default").observe(r.seconds)
        if r.ok is not None:
            finished.append(claims.Finish(msg.message_id, claims.DONE, SENT, r.ok.detail,
                                          r.ok.gateway_message_id))
            out.append(self._final(msg, SENT, r.ok.detail, gateway_message_id=r.ok.gateway_message_id,
                                   seconds=round(r.seconds, 4), details=r.ok.extra, settings_id=r.job.settings_id))
            log.info("message sent", recipient_hint=msg.recipient[-4:], attempt=msg.attempt)
            return
        err = r.error
        assert err is not None
        if not err.permanent and msg.attempt < op.attempts:
            delay = backoff(msg.attempt, self.settings.retry_base_seconds,
                            self.settings.retry_max_seconds, err.retry_after)
            metrics.RETRIES.labels(msg.channel, metrics.retry_reason(err.reason, err.retry_after)).inc()
            finished.append(claims.Finish(msg.message_id, claims.RETRY, RETRYING, err.reason))
            out.append(self._again(replace(msg, attempt=msg.attempt + 1), delay))
            out.append(status(msg.message_id, RETRYING, message=msg.to_wire(), attempt=msg.attempt,
                              seconds=round(r.seconds, 4), code=err.code,
                              reason=f"{err.reason} (attempt {msg.attempt} of {op.attempts};"
                                     f" next in {delay:.0f} s)"))
            log.warning("delivery failed, will retry", reason=err.reason, retry_in=round(delay, 1),
                        attempt=msg.attempt)
            return
        # A permanent error's fault class is the channel's verdict; a transient one's applies once
        # the attempts are used up (transient-exhausted unless the channel knows better).
        kind = "permanent error" if err.permanent else f"gave up after {msg.attempt} attempt(s)"
        reason = err.reason if isinstance(err, OutcomeUnknown) else f"{err.reason} ({kind})"
        finished.append(claims.Finish(msg.message_id, claims.DONE, FAILED, reason, fault=err.fault, code=err.code))
        out.append(self._final(msg, FAILED, reason, err.fault, r.job.gateway, seconds=round(r.seconds, 4),
                               cause=err.cause, code=err.code))
        log.warning("delivery failed", reason=reason, attempt=msg.attempt, fault=err.fault)

