"""Senders against faults, through the pipeline (issue 10, points 4-7).

Real RabbitMQ, the store under test, stages as separate processes, local HTTP
gateways that answer slowly, break their answers or record what they answered.

* A sender SIGKILLed mid-batch: only the requests in flight at the kill may end
  "outcome unknown"; every request the gateway answered is logged sent, and every
  message never requested is sent exactly once after the restart.
* A gateway slower than the timeout, or one that cuts its answer, gets the message
  once (on_timeout: unknown) and the log says why in plain words; a text over
  max_segments fails as content before any request.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests import seed
from tests.support import (
    SEND_TIMEOUT_S,
    SLOWER_THAN_TIMEOUT_S,
    Gateway,
    Pipeline,
    event,
    publish_with_pika,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.store]


def messages(**filters: Any) -> list[Any]:
    from msgd.store.models import Message

    return list(Message.objects.filter(**filters))


def claim_states() -> dict[str, int]:
    from django.db.models import Count

    from msgd.store.models import Claim

    return {row["state"]: row["n"] for row in Claim.objects.values("state").annotate(n=Count("message_id"))}


def test_sigkill_mid_batch_leaves_in_doubt_only_the_requests_in_flight(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    from msgd.envelope import FINAL_STATES

    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template(body="msg %(contract_number)s")
    n, in_flight, answered = 40, 4, 12
    release = threading.Event()
    gateway.delay, gateway.hold, gateway.hold_after = 0.5, release, answered
    pipeline.start("router", "renderer", "recorder")
    publish_with_pika(rabbit_url, namespace, [event(i) for i in range(n)])
    wait_for(lambda: len(messages(state="queued")) >= n, what="all messages rendered and queued")

    # Every slot for this bulk batch: none kept for the fast lane (MSGD_SENDER_FAST_SLOTS).
    sender_env = {"MSGD_SENDER_CONCURRENCY": str(in_flight), "MSGD_SENDER_FAST_SLOTS": "0", "MSGD_BATCH_SIZE": str(n),
                  "MSGD_CLAIM_LEASE_SECONDS": "2"}
    pipeline.start("sender:sms", **sender_env)
    gateway.wait_count(answered + in_flight)
    # The gateway answered `answered` requests and holds the next wave: those outcomes must be
    # durable now, while the batch is still running (not only after the whole batch).
    wait_for(lambda: claim_states().get("done", 0) == answered, timeout=30,
             what=f"the {answered} answered requests recorded while the batch runs")
    states = claim_states()
    assert states.get("sending") == in_flight and states.get("reserved", 0) > 0, states
    pipeline.procs["sender:sms"].kill()
    with gateway.lock:
        answered_texts = {r.params["mes"] for r in gateway.answered}
        held_texts = {r.params["mes"] for r in gateway.requests} - answered_texts
    assert len(answered_texts) == answered and len(held_texts) == in_flight
    release.set()

    pipeline.start("sender:sms", **sender_env)
    wait_for(lambda: len(messages(state__in=FINAL_STATES)) >= n, timeout=90, what=f"all {n} messages final")

    texts = gateway.received()
    assert sorted(texts) == sorted(f"msg C{i}" for i in range(n)), "each message reached the gateway exactly once"
    log = {m.body: m for m in messages()}
    assert {t for t, m in log.items() if m.state == "sent"} == set(log) - held_texts
    assert all(log[t].state == "sent" for t in answered_texts), "a message the gateway answered 200 is not sent"
    unknown = {t for t, m in log.items() if m.state == "failed"}
    assert unknown == held_texts, "only the requests in flight at the kill are in doubt"
    assert all("outcome unknown" in log[t].reason for t in unknown)


def test_timeouts_broken_answers_and_runaway_texts_reach_the_log_in_plain_words(
    pipeline: Pipeline, rabbit_url: str, namespace: str
) -> None:
    from msgd.envelope import FINAL_STATES

    slow, cut, plain = Gateway(delay=SLOWER_THAN_TIMEOUT_S).start(), Gateway(cut=True).start(), Gateway().start()
    try:
        for code, gw in (("slow", slow), ("cut", cut), ("long", plain)):
            seed.sms_gateway(seed.operator(code=code, attempts=3), gw.url, timeout=SEND_TIMEOUT_S)
        seed.template(body="msg %(contract_number)s")
        seed.template(owner=seed_operator("long"), body="Уведомление о балансе. " * 40)  # 920 UCS-2 units: 14 parts
        pipeline.start("router", "renderer", "recorder", "sender:sms")
        events = {code: event(i, operator=code) for i, code in enumerate(("slow", "cut", "long"))}
        publish_with_pika(rabbit_url, namespace, list(events.values()))

        def sent_or_failed(e: dict[str, Any]) -> list[Any]:  # the global template's row says "filtered"
            return [m for m in messages(event_id=e["event_id"], state__in=FINAL_STATES) if m.state != "filtered"]

        wait_for(lambda: all(sent_or_failed(e) for e in events.values()), timeout=60, what="the three messages final")
        reasons = {code: sent_or_failed(e)[0] for code, e in events.items()}
        assert len(slow.requests) == 1 and len(cut.requests) == 1 and plain.requests == []
    finally:
        for gw in (slow, cut, plain):
            gw.stop()
    assert reasons["slow"].state == "failed" and reasons["slow"].reason.startswith("outcome unknown: SMS gateway")
    assert f"did not answer within {SEND_TIMEOUT_S:g} s after the request was sent — it may have been delivered" in reasons["slow"].reason
    assert reasons["cut"].state == "failed"
    assert "closed the connection in the middle of its answer — it may have been delivered" in reasons["cut"].reason
    assert "Error" not in reasons["cut"].reason
    assert reasons["long"].state == "failed"
    assert reasons["long"].reason.startswith("the text takes 14 SMS parts (920 characters, UCS-2), more than max_segments 10")


def seed_operator(code: str) -> Any:
    from msgd.store.models import Operator

    return Operator.objects.get(code=code)


def test_embedded_mode_gives_the_same_outcomes(tmp_path: Path) -> None:
    """`msgd run all` with no broker: a gateway slower than the timeout gets the message once, and
    a text over max_segments fails before any request."""
    from tests.support import StageProcess, msgd, stage_env

    slow, plain = Gateway(delay=SLOWER_THAN_TIMEOUT_S).start(), Gateway().start()
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    body = "Уважаемый абонент, баланс по договору %(contract_number)s отрицательный: пополните счёт, чтобы не остаться без связи."
    config = {
        "operators": [
            {"code": code, "name": code, "attempts": 3, "timezone": "Europe/Moscow",
             "channels": {"sms": {"url": gw.url, "request_type": "post", "params": "phones=%sms%&mes=%text%",
                                  "timeout": SEND_TIMEOUT_S, **extra}}}
            for code, gw, extra in (("slow", slow, {}), ("long", plain, {"max_segments": 1}))
        ],
        "templates": [{"event": "low_balance", "channel": "sms", "body": body}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    events = [event(i, operator=code) for i, code in enumerate(("slow", "long"))]
    for i, e in enumerate(events):
        (tmp_path / f"event{i}.json").write_text(json.dumps(e, ensure_ascii=False), encoding="utf-8")
    msgd("migrate", env=env)
    msgd("config", "load", str(tmp_path / "config.json"), env=env)
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", str(tmp_path / "event0.json"), str(tmp_path / "event1.json"), env=env)

        def final() -> dict[str, Any]:
            rows = json.loads(msgd("log", "--json", env=env).stdout)
            done = {r["event_id"]: r for r in rows if r["state"] in ("sent", "failed")}
            return done if len(done) == 2 else {}

        rows = wait_for(final, timeout=60, what="both messages final in the embedded log")
    finally:
        proc.stop()
        slow.stop()
        plain.stop()
    slow_row, long_row = rows[events[0]["event_id"]], rows[events[1]["event_id"]]
    assert slow_row["state"] == "failed" and slow_row["reason"].startswith("outcome unknown: SMS gateway")
    assert len(slow.requests) == 1, "a gateway slower than the timeout got the message more than once"
    assert long_row["state"] == "failed" and "more than max_segments 1" in long_row["reason"]
    assert plain.requests == []
