"""Metric helpers, the queue-depth collector and multiprocess mode (real processes, real promtool)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from msgd import metrics
from tests.support import ROOT


def test_gateway_label_is_the_host_only() -> None:
    assert metrics.gateway_host({"url": "https://smsc.ru/sys/send.php?psw=secret"}) == "smsc.ru"
    assert metrics.gateway_host({"api_url": "http://127.0.0.1:8081"}) == "127.0.0.1"
    assert metrics.gateway_host({"host": "smtp.yandex.ru", "port": 465}) == "smtp.yandex.ru"
    assert metrics.gateway_host({}) == "default"
    assert metrics.gateway_host({"url": "https://x.example"}, outbox=True) == "outbox"


def test_gateway_label_never_carries_the_raw_setting() -> None:
    # No scheme: the host before the first "/" when it looks like one, never the path or query.
    assert metrics.gateway_host({"url": "smsc.ru/sys/send.php?psw=secret"}) == "smsc.ru"
    assert metrics.gateway_host({"url": "SMSC.ru:8443/send?psw=secret"}) == "smsc.ru"
    for value in ("login:secret@smsc.ru/send", "psw=secret", "?psw=secret", "send.php?psw=secret&x=1"):
        assert metrics.gateway_host({"url": value}) == "invalid", value
    # Malformed: a label, not a ValueError (which would fail the send as "sender crashed").
    assert metrics.gateway_host({"url": "http://[bad"}) == "invalid"
    assert metrics.gateway_host({"api_url": "https://[::1]:8443/bot"}) == "::1"
    assert metrics.gateway_host({"url": "http:///only/a/path?psw=secret"}) == "invalid"
    assert metrics.gateway_host({"host": "smtp.example.org psw=secret"}) == "invalid"


def test_retry_reasons_are_a_fixed_set() -> None:
    assert metrics.retry_reason("gateway said 429 Too Many Requests", None) == "throttled"
    assert metrics.retry_reason("anything", 30.0) == "throttled"
    assert metrics.retry_reason("request timed out after 15 s", None) == "timeout"
    assert metrics.retry_reason("Connection refused by 10.0.0.1:443", None) == "connection"
    assert metrics.retry_reason("gateway answered HTTP 503", None) == "server_error"
    assert metrics.retry_reason("something odd", None) == "other"


def embedded(tmp_path: Path) -> Any:
    from msgd.broker import make_broker
    from msgd.settings import Settings

    settings = Settings(var_dir=tmp_path, namespace="m")
    return lambda: make_broker(settings)


def test_queue_depths_come_from_the_broker_and_are_cached_between_scrapes(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from msgd.broker import Outgoing

    open_broker = embedded(tmp_path)
    registry = CollectorRegistry()
    # A ttl longer than the machine's uptime: the first scrape must read all the same
    # (CI machines are often up for less than an hour).
    collector = metrics.QueueDepthCollector(open_broker, ttl=time.monotonic() + 3600)
    collector.watch(["m.send.sms.bulk", "m.parking"])
    registry.register(collector)
    first = generate_latest(registry).decode()
    assert 'msgd_queue_messages{queue="m.send.sms.bulk"} 0.0' in first
    assert "msgd_broker_up 1.0" in first
    broker = open_broker()
    broker.publish([Outgoing(route="send.sms.bulk", body=b"{}")])
    broker.close()
    assert generate_latest(registry).decode() == first  # cached: the broker is not asked per scrape
    collector.watch([])  # a new watch list refreshes at once
    assert 'msgd_queue_messages{queue="m.send.sms.bulk"} 1.0' in generate_latest(registry).decode()


def test_the_broker_is_kept_between_scrapes_and_opened_again_after_a_failure(tmp_path: Path) -> None:
    open_embedded = embedded(tmp_path)
    opened: list[Any] = []
    fail = [False]

    class Flaky:
        def __init__(self) -> None:
            self.inner, self.closed, self.stale = open_embedded(), False, False

        def queue_depths(self, queues: list[str]) -> dict[str, int]:
            if fail[0] or self.stale:
                raise ConnectionResetError("broker went away")
            return dict(self.inner.queue_depths(queues))

        def close(self) -> None:
            self.closed = True
            self.inner.close()

    def open_broker() -> Flaky:
        opened.append(Flaky())
        return opened[-1]

    collector = metrics.QueueDepthCollector(open_broker, ttl=0.0)
    collector.watch(["m.parking"])
    for _ in range(3):
        list(collector.collect())
    assert len(opened) == 1 and not opened[0].closed  # one broker for every scrape
    fail[0] = True
    up = [m for m in collector.collect() if m.name == "msgd_broker_up"][0]
    assert up.samples[0].value == 0.0
    # the kept one failed, then a fresh one failed too: both closed, none kept
    assert len(opened) == 2 and all(b.closed for b in opened)
    fail[0] = False
    up = [m for m in collector.collect() if m.name == "msgd_broker_up"][0]
    assert up.samples[0].value == 1.0 and len(opened) == 3 and not opened[2].closed
    opened[2].stale = True  # the kept connection died between scrapes: not a down broker
    up = [m for m in collector.collect() if m.name == "msgd_broker_up"][0]
    assert up.samples[0].value == 1.0 and len(opened) == 4 and opened[2].closed
    collector.close()
    assert opened[3].closed


def test_broker_down_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from msgd.settings import Settings

    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:1//", heartbeat=0)
    registry = CollectorRegistry()
    collector = metrics.QueueDepthCollector(lambda: metrics.quick_broker(settings))
    collector.watch(["a.parking"])
    registry.register(collector)
    assert "msgd_broker_up 0.0" in generate_latest(registry).decode()


CHILD = """
from msgd import metrics
metrics.EVENTS_RECEIVED.labels("low_balance").inc()
metrics.IN_FLIGHT.labels("sms").inc()
"""
EXPOSE = """
from prometheus_client import generate_latest
from msgd import metrics
print(generate_latest(metrics.exposition_registry()).decode())
"""


def test_multiprocess_mode_merges_every_worker(tmp_path: Path, promtool: str) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two gunicorn-like workers
        subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, check=True)
    out = subprocess.run([sys.executable, "-c", EXPOSE], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert 'msgd_events_received_total{type="low_balance"} 2.0' in out
    check = subprocess.run([promtool, "check", "metrics"], input=out, text=True, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
