"""End to end: billing publishes with plain pika; stages run as separate processes.

Real RabbitMQ, the store under test (PostgreSQL, or SQLite on the second run),
a real local HTTP server as the SMS gateway and aiosmtpd as the SMTP server.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests import seed
from tests.support import (
    Gateway,
    Pipeline,
    SmtpSink,
    StageProcess,
    event,
    pika_params,
    publish_with_pika,
    stage_env,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.store]


def messages(**filters: Any) -> list[Any]:
    from msgd.store.models import Message

    return list(Message.objects.filter(**filters).order_by("created_at"))


def final_count(n: int, **filters: Any) -> Any:
    from msgd.envelope import FINAL_STATES

    return lambda: len(messages(state__in=FINAL_STATES, **filters)) >= n


def test_sms_and_email_delivered_through_separate_processes(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    smtp = SmtpSink().start()
    try:
        op = seed.operator()
        seed.sms_gateway(op, gateway.url)
        seed.smtp(op, smtp.port)
        seed.template(channel="sms", body="%(name)s: баланс %(balance).2f %(currecy)s")
        seed.template(channel="email", subject="Низкий баланс", body="Уважаемый %(name)s, пополните счёт.")
        pipeline.start("router", "renderer", "recorder", "sender:sms", "sender:email")
        events = [event(i, email=f"user{i}@example.net", abonent_name=None) for i in range(3)]
        for i, e in enumerate(events):
            e["abonent"]["name"] = f'ООО "Рога & Копыта" {i} 🚀'
        publish_with_pika(rabbit_url, namespace, events)

        gateway.wait_count(3)
        smtp.wait_count(3)
        wait_for(final_count(6), what="6 messages recorded as final")
    finally:
        smtp.stop()
    assert sorted(gateway.received()) == [f'ООО "Рога & Копыта" {i} 🚀: баланс -12.50 руб.' for i in range(3)]
    rcpts = sorted(r[0] for r, _ in smtp.messages)
    assert rcpts == [f"user{i}@example.net" for i in range(3)]
    mail = smtp.messages[0][1]
    assert mail["Subject"] == "Низкий баланс" and "noc@best.example" in mail["From"]
    assert "пополните счёт" in mail.get_body(("plain",)).get_content()
    log = messages()
    assert {(m.channel, m.state) for m in log} == {("sms", "sent"), ("email", "sent")}
    assert all(m.attempts == 1 and m.body for m in log)


def test_garbage_is_parked_with_reason_and_the_next_event_goes_through(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    import pika

    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template()
    pipeline.start("router", "renderer", "recorder", "sender:sms")
    invalid = event(1)
    del invalid["event_id"]
    unknown_operator = event(2, operator="nobody")
    good = event(3)
    publish_with_pika(rabbit_url, namespace, [invalid, unknown_operator, good],
                      raw=[b"\x00\x01 definitely not json", b'"a string"'])
    gateway.wait_count(1)
    assert len(gateway.requests) == 1
    wait_for(final_count(1, event_id=good["event_id"]), what="the good event recorded")

    conn = pika.BlockingConnection(pika_params(rabbit_url))
    parked: dict[bytes, dict[str, Any]] = {}
    try:
        ch = conn.channel()

        def take() -> bool:
            method, props, body = ch.basic_get(f"{namespace}.parking", auto_ack=True)
            if method is not None:
                parked[body] = props.headers
            return len(parked) >= 4

        wait_for(take, what="4 parked messages")
    finally:
        conn.close()
    reasons = {body[:20]: h["x-msgd-reason"] for body, h in parked.items()}
    assert "not valid JSON" in reasons[b"\x00\x01 definitely not js"]
    assert "must be a JSON object" in reasons[b'"a string"']
    invalid_reason = next(h["x-msgd-reason"] for b, h in parked.items() if b.startswith(b"{") and b"nobody" not in b)
    assert "event_id" in invalid_reason and "schemas/event.v1.json" in invalid_reason
    nobody = next(h for b, h in parked.items() if b"nobody" in b)
    assert "operator 'nobody' is not configured" in nobody["x-msgd-reason"]
    assert all(h["x-msgd-stage"] == "router" for h in parked.values())


def test_sigkilled_sender_restarts_and_every_message_is_delivered_once(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    """The gateway answers 8 requests, then holds the next ones; we SIGKILL the sender
    while they are held.  After a restart each message reached the gateway exactly once:
    the held ones are not resent (their outcome is unknown to msgd and recorded so)."""
    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template(body="msg %(contract_number)s")
    answered, in_flight, n = 8, 4, 20
    release = threading.Event()
    gateway.hold, gateway.hold_after = release, answered
    pipeline.start("router", "renderer", "recorder")
    publish_with_pika(rabbit_url, namespace, [event(i) for i in range(n)])
    wait_for(lambda: len(messages(state="queued")) >= n, timeout=60, what="all messages rendered and queued")

    sender_env = {"MSGD_SENDER_CONCURRENCY": str(in_flight), "MSGD_BATCH_SIZE": str(in_flight),
                  "MSGD_CLAIM_LEASE_SECONDS": "2"}
    pipeline.start("sender:sms", **sender_env)
    gateway.wait_count(answered + in_flight)  # answered, then one batch held in flight
    pipeline.procs["sender:sms"].kill()
    release.set()

    pipeline.start("sender:sms", **sender_env)
    wait_for(final_count(n), timeout=60, what=f"all {n} messages final")
    texts = gateway.received()
    assert sorted(texts) == sorted(f"msg C{i}" for i in range(n)), "each message reached the gateway exactly once"
    log = messages()
    unknown = [m for m in log if m.state == "failed"]
    assert all("outcome unknown" in m.reason for m in unknown)
    assert 1 <= len(unknown) <= in_flight, "the requests in flight at the kill are the only ones in doubt"
    assert len([m for m in log if m.state == "sent"]) == n - len(unknown)


def test_retry_and_quiet_hours_are_delivered_after_their_delay(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    from msgd.store.models import Attempt

    secret = "TopSecret-42"
    op = seed.operator(code="best")
    seed.sms_gateway(op, gateway.url, params=f"login=best&psw={secret}&phones=%sms%&mes=%text%",
                     secrets={"login": "best", "password": "BasicAuthPass-7"})
    seed.template(body="retry %(contract_number)s")
    quiet = seed.operator(code="night", timezone="Asia/Vladivostok")
    seed.sms_gateway(quiet, gateway.url)
    quiet_template = seed.template(owner=quiet, body="quiet %(contract_number)s")
    # Gateways echo requests in their errors: the reason must not carry the password on.
    gateway.script = [(503, f"try later; request was login=best&psw={secret}")]
    pipeline.start("router", "renderer", "recorder", "sender:sms", MSGD_RETRY_BASE_SECONDS="2")
    pipeline.wait_started()  # a slow start must not eat the quiet window
    quiet_end = seed.quiet_now(quiet, seconds_left=5)
    first_event, quiet_event = event(1), event(2, operator="night")
    publish_with_pika(rabbit_url, namespace, [first_event, quiet_event])
    for e in (first_event, quiet_event):
        wait_for(final_count(1, event_id=e["event_id"], state="sent"), timeout=40, what="both messages sent")

    by_text: dict[str, list[float]] = {}
    for r in gateway.requests:
        by_text.setdefault(r.params["mes"], []).append(r.at)
    assert len(by_text["retry C1"]) == 2, by_text
    first, second = by_text["retry C1"]
    assert second - first >= 1.5, "the retry came back before its backoff"
    assert len(by_text["quiet C2"]) == 1
    assert by_text["quiet C2"][0] >= quiet_end.timestamp(), "sent inside the quiet hours"
    retried = messages(event_id=first_event["event_id"])[0]
    assert (retried.state, retried.attempts) == ("sent", 2)
    assert list(Attempt.objects.filter(message=retried).values_list("state", flat=True)) == ["retrying", "sent"]
    assert "HTTP 503" in Attempt.objects.get(message=retried, state="retrying").reason
    assert "psw=***" in pipeline.logs_text() and '"operator": "best"' in pipeline.logs_text()
    for text in [pipeline.logs_text(), *(a.reason for a in Attempt.objects.all()), *(m.reason for m in messages())]:
        assert secret not in text and "BasicAuthPass-7" not in text
    # by the template, not by state: the night operator's own template's message, and it is sent
    # (the global template's row for this event only says it was replaced)
    (held,) = messages(event_id=quiet_event["event_id"], template_id=quiet_template.id)
    assert held.state == "sent"
    assert sorted(m.state for m in messages(event_id=quiet_event["event_id"])) == ["filtered", "sent"]
    delayed = Attempt.objects.get(message=held, state="delayed")
    assert "quiet hours" in delayed.reason
    assert delayed.at.timestamp() < quiet_end.timestamp() <= Attempt.objects.get(message=held, state="sent").at.timestamp()


def test_make_run_path_embedded_mode(tmp_path: Path) -> None:
    """No broker configured: `msgd run all` on SQLite; an example event ends as an outbox file and a log row."""
    from tests.support import ROOT, free_port, msgd

    var = tmp_path / "var"
    # its own web port: `msgd run all` serves the admin too, and 8000 may be taken by a `make run`
    env = stage_env(MSGD_VAR_DIR=str(var), MSGD_WEB_BIND=f"127.0.0.1:{free_port()}")
    msgd("migrate", env=env)
    msgd("config", "load", "--preinstalled", str(ROOT / "examples/config.yaml"), env=env)
    proc = StageProcess(["all"], env, tmp_path / "all.log").start()
    try:
        out = msgd("publish", str(ROOT / "examples/events/low_balance.json"), env=env)
        assert "published low_balance event" in out.stdout
        files = wait_for(lambda: list((var / "outbox").glob("*-sms-*.txt")), what="an SMS file in the outbox")
        text = files[0].read_text(encoding="utf-8")
        assert "+79121234567" in text
        log = wait_for(lambda: json.loads(msgd("log", "--json", env=env).stdout), what="a row in the log")
        assert any(row["state"] == "sent" and row["channel"] == "sms" for row in log)
    finally:
        proc.stop()
    assert "embedded mode" in proc.log_text()
