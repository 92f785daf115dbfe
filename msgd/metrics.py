"""Prometheus metrics shared by the stages (names follow Prometheus conventions).

Each stage process serves its own registry on ``MSGD_METRICS_PORT`` (``msgd
run all``: one port for the whole process).  Queue depths are read from the
broker at scrape time (cached a few seconds) by ``QueueDepthCollector``.

Multi-process servers (the web admin under gunicorn) set
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory before the
workers start; ``exposition_registry()`` then merges every worker's samples
(prometheus_client multiprocess mode), and gunicorn's ``child_exit`` hook
should call ``mark_process_dead(worker.pid)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from msgd.envelope import FAULTS
from msgd.settings import Settings

EVENTS_RECEIVED = Counter("msgd_events_received_total", "Events taken by the router", ["type"])
EVENTS_ROUTED = Counter("msgd_events_routed_total", "Render jobs produced by the router", ["type"])
PARKED = Counter(
    "msgd_messages_parked_total",
    "Messages moved to the parking queue, by stage and event type ('' when the body has none)",
    ["stage", "type"],
)
MESSAGES_FINAL = Counter(
    "msgd_messages_total", "Messages by channel and final state (counted where the state is decided)",
    ["channel", "state"],
)
RENDER_FAILURES = Counter("msgd_render_failures_total", "Templates that failed to render", ["channel"])
RETRIES = Counter("msgd_retries_total", "Delivery attempts scheduled again", ["channel", "reason"])
QUIET_DELAYS = Counter("msgd_quiet_hour_delays_total", "Messages delayed by quiet hours", ["channel"])
DUPLICATES = Counter(
    "msgd_duplicate_sends_prevented_total", "Deliveries skipped because the message was already claimed",
    ["channel"],
)
SEND_SECONDS = Histogram(
    "msgd_send_duration_seconds", "Time spent in one delivery attempt, by channel and gateway host",
    ["channel", "gateway"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SEND_ATTEMPTS = Counter(
    "msgd_send_attempts_total", "Delivery attempts by channel, gateway host and outcome (ok, error)",
    ["channel", "gateway", "outcome"],
)
FAILURES = Counter(
    "msgd_message_failures_total",
    "Failed messages by channel, gateway host ('none' when no gateway was tried) and fault class"
    " (recipient, gateway, content, transient-exhausted, unknown)",
    ["channel", "gateway", "fault"],
)
DLR_REPORTS = Counter(
    "msgd_dlr_reports_total",
    "SMS delivery reports by gateway host, state (delivered, undelivered, none) and outcome: applied, duplicate"
    " (the same report again), ignored (the log keeps another state), pending (no sent message yet), unmatched"
    " (dropped: no message with that id appeared in time)",
    ["gateway", "state", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "msgd_delivery_latency_seconds", "Time from sent to the delivery report's delivered, by gateway host",
    ["gateway"], buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
FEEDBACK = Counter(
    "msgd_feedback_events_total", "Events published on msgd.feedback for billing, by routing key",
    ["route"],
)
IN_FLIGHT = Gauge("msgd_messages_in_flight", "Deliveries in progress", ["channel"], multiprocess_mode="livesum")

QUEUE_DEPTH_SECONDS = 5.0


_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once: prometheus_client checks and converts the values
    and takes a lock on every ``labels`` call (about 2 us, several times per message in a sender)
    and returns the same child each time; msgd never removes a series, so the child stays valid."""
    key = (metric, values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found


_FAILURE_SERIES: set[tuple[str, str]] = set()
_FAILURE_SERIES_LOCK = threading.Lock()


def count_failures_from_zero(channel: str, gateway: str) -> None:
    """Create ``msgd_message_failures_total`` at 0 for every fault class of this channel and
    gateway host, once per process, before its first delivery: a series born at 1 hides its
    first failure from ``increase()`` (the MsgdGatewayFaults alert)."""
    key = (channel, gateway)
    if key in _FAILURE_SERIES:
        return
    with _FAILURE_SERIES_LOCK:
        for fault in FAULTS:
            FAILURES.labels(channel, gateway, fault)
        _FAILURE_SERIES.add(key)


def gateway_host(params: dict[str, Any], outbox: bool = False) -> str:
    """The far side of a channel's settings, as a low-cardinality label (host only).

    Never the raw setting: a URL's path and query may carry a password.  A value no
    host can be read from is labelled "invalid" (and must not fail the send).
    """
    if outbox:
        return "outbox"
    for key in ("url", "api_url", "endpoint"):
        value = params.get(key)
        if value:
            return _url_host(str(value))
    host = params.get("host")
    if host:
        return _host_name(str(host)) or "invalid"
    return "default"


_HOST_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.?$")


def _host_name(text: str) -> str | None:
    """``text`` lowercased when it is a host name or an IP address, else None."""
    text = text.strip().lower()
    if _HOST_NAME_RE.match(text):
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)  # a pure function of a setting; asked once per delivery
def _url_host(value: str) -> str:
    value = value.strip()
    if "://" not in value:  # "smsc.ru/sys/send.php?psw=...": the part before the first "/", if a host
        head = value.split("/", 1)[0]
        name, colon, port = head.rpartition(":")
        if colon and port.isdigit():
            head = name
        return _host_name(head) or "invalid"
    try:
        host = urlsplit(value).hostname
    except ValueError:  # "http://[bad"
        return "invalid"
    return (_host_name(host) if host else None) or "invalid"


def retry_reason(reason: str, retry_after: float | None) -> str:
    """A fixed set of retry reasons (labels must not carry gateway text)."""
    text = reason.lower()
    if retry_after is not None or "429" in text or "too many" in text or "throttl" in text:
        return "throttled"
    if "timed out" in text or "timeout" in text or "did not answer" in text or "did not confirm" in text:
        return "timeout"
    if "refused" in text or "connect" in text or "name or service" in text or "resolve" in text:
        return "connection"
    if any(code in text for code in ("500", "502", "503", "504")) or "server error" in text:
        return "server_error"
    if "smtp" in text or text[:1] == "4":
        return "temporary_rejection"
    return "other"


class QueueDepthCollector(Collector):
    """``msgd_queue_messages{queue}``: ready messages in the stage's queues and parking.

    Read from the broker with a connection of its own (scrapes run on other
    threads than the consumer), at most every QUEUE_DEPTH_SECONDS.  The connection
    is kept between scrapes and opened again only after a failure.
    """

    def __init__(self, open_broker: Callable[[], Any], ttl: float = QUEUE_DEPTH_SECONDS) -> None:
        self._open = open_broker
        self._ttl = ttl
        self._queues: list[str] = []
        self._lock = threading.Lock()
        self._cached: dict[str, int] = {}
        # None = read at the next scrape. Not 0.0: the monotonic clock counts from boot, so on a
        # machine up for less than the ttl a 0.0 would look fresh and depths would never be read.
        self._at: float | None = None
        self._ok = 1.0
        self._broker: Any = None  # kept open between scrapes, under _lock

    def watch(self, queues: Sequence[str]) -> None:
        with self._lock:
            for q in queues:
                if q not in self._queues:
                    self._queues.append(q)
            self._at = None

    def _refresh(self) -> None:
        if self._at is not None and time.monotonic() - self._at < self._ttl:
            return
        try:
            self._cached = self._read()
            self._ok = 1.0
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker is down
            self._ok = 0.0
        self._at = time.monotonic()

    def _read(self) -> dict[str, int]:
        """Depths through the kept broker, opened anew only when there is none (first scrape,
        or the last read failed). A kept connection may have died since the last scrape
        (broker restart): that read is retried once on a fresh one, not reported as down."""
        if self._broker is not None:
            try:
                return dict(self._broker.queue_depths(list(self._queues)))
            except Exception:  # noqa: BLE001 - retried below on a fresh connection
                self._drop()
        self._broker = self._open()
        try:
            return dict(self._broker.queue_depths(list(self._queues)))
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.close()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            self._refresh()
            depth = GaugeMetricFamily("msgd_queue_messages", "Messages ready in a broker queue (a pack or status batch counts once)",
                                      labels=["queue"])
            for q in self._queues:
                if q in self._cached:
                    depth.add_metric([q], self._cached[q])
            up = GaugeMetricFamily("msgd_broker_up", "1 if the last queue depth read from the broker worked")
            up.add_metric([], self._ok)
        yield depth
        yield up


_collector: QueueDepthCollector | None = None
_collector_lock = threading.Lock()


def quick_broker(settings: Any) -> Any:
    """A broker connection for a scrape: one quick connection attempt, no retries, and no
    heartbeats (nothing drains the kept connection between scrapes, so the broker would
    close it for missed heartbeats; a dead connection fails the next read instead)."""
    from msgd.broker import make_broker

    if isinstance(settings, Settings) and settings.heartbeat:
        settings = dataclasses.replace(settings, heartbeat=0)
    broker: Any = make_broker(settings)
    if hasattr(broker, "connect_retries"):
        broker.connect_retries, broker.connect_timeout = 0, 2
    return broker


def watch_queues(open_broker: Callable[[], Any], queues: Sequence[str]) -> QueueDepthCollector:
    """Report the depth of these queues (one collector per process, shared by its stages)."""
    global _collector
    with _collector_lock:
        if _collector is None:
            _collector = QueueDepthCollector(open_broker)
            REGISTRY.register(_collector)
        _collector.watch(queues)
        return _collector


def exposition_registry() -> CollectorRegistry:
    """The registry to expose: this process's, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def mark_process_dead(pid: int) -> None:
    """For gunicorn's ``child_exit`` hook in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def serve(port: int, addr: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=addr, registry=exposition_registry())
