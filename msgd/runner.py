"""Start stages: each in its own process (``msgd run router``) or all in one (``msgd run all``)."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from typing import Any

import structlog

from msgd import metrics, safejson, topology
from msgd.broker import make_broker
from msgd.broker.base import Broker, Outgoing
from msgd.settings import Settings
from msgd.stage import Stage, batch_handler, parked_event_type

log = structlog.get_logger("msgd.runner")

STAGE_NAMES = ("router", "renderer", "sender", "recorder", "dlr")


def build(name: str, settings: Settings, channel: str | None = None) -> tuple[Stage, list[str]]:
    ns = settings.namespace
    if name == "router":
        from services.router.stage import RouterStage

        return RouterStage(settings), topology.router_queues(ns)
    if name == "renderer":
        from services.renderer.stage import RendererStage

        return RendererStage(settings), topology.render_queues(ns)
    if name == "recorder":
        from services.recorder.stage import RecorderStage

        return RecorderStage(settings), [topology.status_queue(ns)]
    if name == "sender":
        from services.senders.registry import sender_classes
        from services.senders.stage import SenderStage

        if channel not in sender_classes():
            raise SystemExit(f"--channel must be one of {', '.join(sender_classes())}, not {channel!r}")
        return SenderStage(settings, channel), topology.sender_queues(ns, channel)
    raise SystemExit(f"unknown stage {name!r}: choose from {', '.join(STAGE_NAMES)} or all")


def run_poller(settings: Settings, stop: threading.Event) -> None:
    """The dlr stage: not a queue consumer, it asks gateways and publishes what they say."""
    from services.dlr.stage import run_poller as poll
    from services.senders.registry import live_channels

    broker = make_broker(settings)
    try:
        broker.setup(live_channels())
        log.info("stage started", stage="dlr", broker=broker.describe())
        poll(settings, broker, stop)
    finally:
        broker.close()
        log.info("stage stopped", stage="dlr")


def run_stage(name: str, settings: Settings, stop: threading.Event, channel: str | None = None) -> None:
    from services.senders.registry import live_channels

    if name == "dlr":
        run_poller(settings, stop)
        return
    stage, queues = build(name, settings, channel)
    broker = make_broker(settings)
    try:
        broker.setup(live_channels())
        log.info("stage started", stage=stage.name, queues=queues, broker=broker.describe())
        metrics.watch_queues(lambda: metrics.quick_broker(settings), [*queues, topology.parking_queue(settings.namespace)])

        def count_parked(items: list[Outgoing]) -> None:
            for item in items:
                metrics.PARKED.labels(stage.name, parked_event_type(item)).inc()

        limits = {"max_body_bytes": settings.max_body_bytes, "max_depth": safejson.DEFAULT_MAX_DEPTH} \
            if name == "router" else {}  # billing's events; the other stages read msgd's own messages
        plan = consumers(name, stage, queues, settings, broker.embedded)
        settle_heap()

        def consume(one: Stage, own: Broker, taken: list[str]) -> None:
            # The fast lane's own consumer does not wait to fill a batch: a reset goes on at once.
            wait = 0.0 if len(plan) > 1 and taken == queues[:1] else settings.batch_wait_ms / 1000
            own.consume(taken, batch_handler(one, on_parked=count_parked, **limits), stop,
                        batch_size=settings.batch_size, batch_wait=wait)

        consume_all(plan, broker, consume, lambda: make_broker(settings), stop)
    finally:
        close: Callable[[], Any] | None = getattr(stage, "close", None)
        if close is not None:
            close()
        broker.close()
        log.info("stage stopped", stage=stage.name)


def settle_heap() -> None:
    """Move what the process holds once it has started (modules, Django's models and settings,
    the stage) out of the garbage collector's sight (``gc.freeze``), garbage collected first.

    A full collection otherwise walks those 100,000-odd objects every few seconds under a bulk
    flood, and while it runs no thread of the process moves: a password reset waited up to
    0.5 s for one (README "Benchmark"). Frozen objects are still freed when their reference
    count drops; only a reference cycle among them would stay (nothing at startup makes one
    that is later dropped). Calling it again freezes what has been made since."""
    gc.collect()
    gc.freeze()


def consumers(name: str, stage: Stage, queues: list[str], settings: Settings,
              embedded: bool) -> list[tuple[Stage, list[str]]]:
    """Which consumer of a stage process takes which queues.

    On RabbitMQ a stage with a fast lane (router, renderer, sender: queues ``[tx, bulk]``) gives
    the transactional queue a consumer of its own, so a password reset never waits for the bulk
    batch the process is in the middle of; the bulk queue gets one consumer, or
    ``MSGD_SENDER_CONSUMERS`` for a sender (which share its sender, snapshot and request slots).
    Router and renderer keep no state between batches, so their consumers share the stage. The
    embedded broker (one SQLite file, one process) keeps one consumer of every queue."""
    if embedded or len(queues) < 2:
        return [(stage, queues)]
    tx, bulk = queues[:1], queues[1:]
    if name != "sender":
        return [(stage, tx), (stage, bulk)]
    stages = stage.consumers(max(1, settings.sender_consumers) + 1)  # type: ignore[attr-defined]
    return [(stages[0], tx), *((one, bulk) for one in stages[1:])]


def consume_all(plan: list[tuple[Stage, list[str]]], broker: Broker,
                consume: Callable[[Stage, Broker, list[str]], None], new_broker: Callable[[], Broker],
                stop: threading.Event) -> None:
    """``consume`` each (stage, queues) of ``plan``: the first on ``broker`` in this thread, each
    other one in a thread of its own on a broker connection of its own (``new_broker``). A
    consumer that fails stops the others (``stop``) and its error is raised here once all have
    ended."""
    failures: list[BaseException] = []

    def guarded(one: Stage, taken: list[str]) -> None:
        own = new_broker()
        try:
            consume(one, own, taken)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
        finally:
            own.close()

    threads = [threading.Thread(target=guarded, args=(one, taken), name=f"{one.name}-{i}", daemon=True)
               for i, (one, taken) in enumerate(plan[1:], start=2)]
    for t in threads:
        t.start()
    try:
        consume(plan[0][0], broker, plan[0][1])
    except BaseException:
        stop.set()
        raise
    finally:
        for t in threads:
            t.join()
    if failures:
        raise failures[0]


def stages_for_all() -> list[tuple[str, str | None]]:
    from services.senders.registry import live_channels

    return [("router", None), ("renderer", None), ("recorder", None), ("dlr", None),
            *(("sender", ch) for ch in live_channels())]


def run_all(settings: Settings, stop: threading.Event) -> None:
    """Every stage as a thread of this process, each with its own broker connection."""
    threads = []
    failures: list[BaseException] = []

    def guarded(name: str, channel: str | None) -> None:
        try:
            run_stage(name, settings, stop, channel)
        except BaseException as exc:  # a stage that cannot start stops the whole process
            failures.append(exc)
            log.error("stage failed; stopping", stage=name, channel=channel, error=str(exc))
            stop.set()

    for name, channel in stages_for_all():
        t = threading.Thread(target=guarded, args=(name, channel), name=f"{name}-{channel or ''}", daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(1)


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("stopping after the current batch", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
