"""End to end: poison bodies published as billing would, stages as real processes on RabbitMQ and
PostgreSQL (the embedded broker where it applies), an outage of the store, and SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import seed
from tests.support import (
    PG_DSN,
    Gateway,
    Pipeline,
    StageProcess,
    event,
    msgd,
    publish_with_pika,
    stage_env,
    wait_for,
)
from tests.test_poison import BOMB

pytestmark = [pytest.mark.slow, pytest.mark.store]


def test_bracket_bomb_and_its_kind_are_parked_and_every_good_event_after_them_is_delivered(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template()
    pipeline.start("router", "renderer", "recorder", "sender:sms", MSGD_MAX_BODY_BYTES="1200000")
    huge_id = event(0)
    huge_id["event_id"] = "Я" * 500_000  # 1 MB: under the size limit, far over the schema's 128
    oversized = event(0, data={"text": "x" * 1_300_000})
    poison = {
        BOMB: "deeper than 32 levels",
        b"": "body is empty",
        b"\xff\xfe\x00garbage": "not UTF-8 text",
        b'{"event_id": "\\udfff"}': "lone surrogate",
        json.dumps(oversized).encode(): "more than the limit of 1200000 bytes",
        json.dumps(huge_id, ensure_ascii=False).encode(): "event_id: 'ЯЯЯ",
    }
    good = [event(i) for i in range(1, 41)]
    publish_with_pika(rabbit_url, namespace, good, raw=list(poison))
    gateway.wait_count(len(good), timeout=90)
    assert len(gateway.requests) == len(good)

    def listed() -> str | None:
        out = msgd("parking", "list", "--limit", "20", env=pipeline.env).stdout
        return out if f"{len(poison)} message(s) parked" in out else None

    out = wait_for(listed, timeout=30, what="every poison body listed in parking")
    for words in poison.values():
        assert words in out, words
    assert "(empty body)" in out and "not UTF-8 text) \\xff\\xfe\\x00garbage" in out
    reason_lines = [line for line in out.splitlines() if line.startswith("  reason:")]
    assert all(len(line) < 2200 for line in reason_lines), "a reason quoted a huge value whole"
    assert "stage cannot process a batch" not in pipeline.logs_text(), "a bad message was taken for an outage"


@contextmanager
def store_down(database_url: str) -> Iterator[None]:
    """A real outage of one PostgreSQL database: new connections refused, open ones cut."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_DSN + "/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    try:
        yield
    finally:
        with psycopg.connect(PG_DSN + "/postgres", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.mark.parametrize("stage", ["router", "all"])
def test_sigterm_during_an_outage_retry_stops_the_stage_within_seconds_and_loses_nothing(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str, db: str, stage: str
) -> None:
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("a store outage is made by refusing PostgreSQL connections")
    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template()
    rest = [] if stage == "all" else ["renderer", "recorder", "sender:sms"]
    pipeline.start(stage)
    pipeline.wait_started()
    connections.close_all()  # this test process holds none while the database refuses them
    with store_down(db):
        publish_with_pika(rabbit_url, namespace, [event(1)])
        proc = pipeline.procs[stage]
        wait_for(lambda: "stage cannot process a batch" in proc.log_text(), timeout=30,
                 what="the stage retrying its batch during the outage")
        assert proc.proc is not None
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        try:
            code = proc.proc.wait(20)
        except Exception:  # noqa: BLE001 - still running: the assertion below says so
            proc.proc.kill()
            code = None
        took = time.monotonic() - started
    assert code == 0 and took < 8, f"SIGTERM during an outage: exit code {code} after {took:.1f} s"
    assert "stage stopped" in proc.log_text()
    # The event was not acknowledged: after the outage a new process delivers it.
    pipeline.procs[stage] = StageProcess(proc.args, proc.env, proc.log_path).start()
    pipeline.start(*rest)
    gateway.wait_count(1, timeout=60)


def test_embedded_run_all_parks_the_bracket_bomb_and_delivers_the_next_event(tmp_path: Path) -> None:
    from msgd.broker import Outgoing
    from msgd.broker.embedded import EmbeddedBroker
    from msgd.settings import Settings
    from tests.support import ROOT

    var = tmp_path / "var"
    env = stage_env(MSGD_VAR_DIR=str(var))
    msgd("migrate", env=env)
    msgd("config", "load", "--preinstalled", str(ROOT / "examples/config.yaml"), env=env)
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        broker = EmbeddedBroker(Settings.from_env(env))  # what another program writes to the same file
        broker.publish([Outgoing(route="low_balance", body=body, exchange="events") for body in (BOMB, b"")])
        broker.close()
        msgd("publish", str(ROOT / "examples/events/low_balance.json"), env=env)
        wait_for(lambda: list((var / "outbox").glob("*-sms-*.txt")), timeout=30, what="the SMS of the good event")

        def listed() -> str | None:
            out = msgd("parking", "list", env=env).stdout
            return out if "2 message(s) parked" in out else None

        out = wait_for(listed, what="both bodies parked")
        assert "deeper than 32 levels" in out and "(empty body)" in out and "body is empty" in out
    finally:
        proc.stop()
