"""Recipients and e-mail headers through the whole pipeline (issue 11, point 3).

Billing publishes with plain pika to real RabbitMQ; stages run as separate processes on the store
under test; aiosmtpd is the SMTP server and a local HTTP server the SMS gateway. The same is then
checked in embedded mode (``msgd run all``, no broker).

* A contact holding several addresses or numbers gets one message, log row and claim per
  recipient, and the SMTP server / gateway receive one message each.
* A malformed address fails at once ("invalid e-mail address"), is never retried, and reaches no
  SMTP server; an IDNA 2008 domain goes out in its ``xn--`` form.
* The Subject and the To display name decode to exactly the rendered text.
"""

from __future__ import annotations

import json
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
    msgd,
    publish_with_pika,
    stage_env,
    wait_for,
)

pytestmark = [pytest.mark.slow]

SUBJECT = "Уведомление о плановых работах 15.05.2026 с 02:00 до 04:00 на сети ООО «Лучший провайдер»"
NAME = "Кузнецова-Бухгалтерова Анастасия Владимировна (ООО «Ромашка»)"
TWO_EMAILS = "kuz@mail.ru, buh@romashka.ru"
TWO_PHONES = "8(912)1234567; 8(913)7654321"
BAD_EMAIL = "sidorov@yand ex.ru"


def events() -> dict[str, dict[str, Any]]:
    multi = event(1, sms=TWO_PHONES, email=TWO_EMAILS)
    multi["abonent"]["name"] = NAME
    bad = event(2, sms=None, email=BAD_EMAIL)
    idn = event(3, sms=None, email="schulz@faß.de")
    # one list entry holding a malformed and a good address, the good one also repeated
    mixed = event(4, sms=None, email=["petrov@mail..ru; ivan@пример.рф", "IVAN@пример.рф"])
    # no "@" at all: still the e-mail message's failure, not a reason to park the event
    no_at = event(5, sms="+79141112233", email="petrov")
    return {"multi": multi, "bad": bad, "idn": idn, "mixed": mixed, "no_at": no_at}


def check_outcomes(rows: dict[str, list[dict[str, Any]]], smtp: SmtpSink, gateway: Gateway) -> None:
    """``rows``: each event's sent and failed log rows (id, channel, recipient, state, reason,
    attempts); the no-contact rows of channels without a contact are left out."""
    multi = {(r["channel"], r["recipient"]): r for r in rows["multi"]}
    assert set(multi) == {("email", "kuz@mail.ru"), ("email", "buh@romashka.ru"),
                          ("sms", "8(912)1234567"), ("sms", "8(913)7654321")}
    assert all(r["state"] == "sent" and r["attempts"] == 1 for r in multi.values()), multi
    assert len({r["id"] for r in multi.values()}) == 4, "each recipient has its own message id"
    assert sorted(gateway.received("phones")) == ["+79121234567", "+79137654321", "+79141112233"]

    (bad,) = rows["bad"]
    assert bad["state"] == "failed" and bad["attempts"] == 1
    assert bad["reason"].startswith(f"invalid e-mail address {BAD_EMAIL!r}: ")
    (idn,) = rows["idn"]
    assert idn["state"] == "sent" and idn["recipient"] == "schulz@faß.de"
    mixed = {r["recipient"]: r for r in rows["mixed"]}
    assert set(mixed) == {"petrov@mail..ru", "ivan@пример.рф"}, "the repeat (IVAN@пример.рф) is dropped"
    assert mixed["petrov@mail..ru"]["state"] == "failed" and mixed["ivan@пример.рф"]["state"] == "sent"
    assert mixed["petrov@mail..ru"]["reason"].startswith("invalid e-mail address 'petrov@mail..ru': ")

    no_at = {r["channel"]: r for r in rows["no_at"]}
    assert no_at["sms"]["state"] == "sent" and no_at["email"]["state"] == "failed"
    assert no_at["email"]["reason"].startswith("invalid e-mail address 'petrov': an email address must have an @-sign")

    by_rcpt = {tuple(rcpts): mail for rcpts, mail in smtp.messages}
    assert sorted(by_rcpt) == [("buh@romashka.ru",), ("ivan@xn--e1afmkfd.xn--p1ai",), ("kuz@mail.ru",),
                               ("schulz@xn--fa-hia.de",)], "the malformed addresses reached no SMTP server"
    for rcpt in ("kuz@mail.ru", "buh@romashka.ru"):
        mail = by_rcpt[(rcpt,)]  # parsed by the sink with email.policy.default
        assert str(mail["Subject"]) == SUBJECT
        assert mail["To"].addresses[0].display_name == NAME
        assert mail["To"].addresses[0].addr_spec == rcpt


@pytest.mark.store
def test_several_recipients_malformed_and_international_addresses_through_rabbitmq(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    from msgd.envelope import FINAL_STATES
    from msgd.store.models import Attempt, Claim, Message

    smtp = SmtpSink().start()
    try:
        op = seed.operator(attempts=3)
        seed.sms_gateway(op, gateway.url)
        seed.smtp(op, smtp.port)
        seed.template(channel="email", subject=SUBJECT, body="Уважаемый %(name)s, работы 15.05.")
        seed.template(channel="sms", body="Работы 15.05 с 02:00 до 04:00")
        pipeline.start("router", "renderer", "recorder", "sender:sms", "sender:email")
        evs = events()
        publish_with_pika(rabbit_url, namespace, list(evs.values()))
        expected = {"multi": 4, "bad": 1, "idn": 1, "mixed": 2, "no_at": 2}

        def final() -> bool:
            return all(Message.objects.filter(event_id=evs[k]["event_id"], state__in=FINAL_STATES).count() >= n
                       for k, n in expected.items())

        wait_for(final, timeout=60, what="every recipient's message final")
        smtp.wait_count(4)
    finally:
        smtp.stop()
    rows = {k: [{"id": str(m.id), "channel": m.channel, "recipient": m.recipient, "state": m.state,
                 "reason": m.reason, "attempts": m.attempts}
                for m in Message.objects.filter(event_id=e["event_id"], state__in=("sent", "failed"))]
            for k, e in evs.items()}
    check_outcomes(rows, smtp, gateway)
    ids = [r["id"] for r in rows["multi"]]
    assert Claim.objects.filter(message_id__in=ids, state="done").count() == 4, "one claim per recipient"
    bad = Message.objects.get(event_id=evs["bad"]["event_id"], channel="email")
    assert list(Attempt.objects.filter(message=bad).values_list("state", flat=True)) == ["failed"], \
        "a malformed address is never retried"


def test_the_same_in_embedded_mode(tmp_path: Path) -> None:
    """`msgd run all` with no broker gives the same rows and deliveries."""
    smtp, gateway = SmtpSink().start(), Gateway().start()
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    config = {
        "operators": [{
            "code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example", "attempts": 3,
            "timezone": "Europe/Moscow",
            "channels": {
                "sms": {"url": gateway.url, "request_type": "post", "params": "phones=%sms%&mes=%text%"},
                "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
            },
        }],
        "templates": [
            {"event": "low_balance", "channel": "email", "subject": SUBJECT, "body": "Работы 15.05."},
            {"event": "low_balance", "channel": "sms", "body": "Работы 15.05 с 02:00 до 04:00"},
        ],
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    evs = events()
    files = []
    for key, e in evs.items():
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(e, ensure_ascii=False), encoding="utf-8")
        files.append(str(path))
    msgd("migrate", env=env)
    msgd("config", "load", str(tmp_path / "config.json"), env=env)
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", *files, env=env)

        def final() -> list[dict[str, Any]]:
            got = [r for r in json.loads(msgd("log", "--json", env=env).stdout)
                   if r["state"] in ("sent", "failed")]
            return got if len(got) >= 10 else []

        log = wait_for(final, timeout=90, what="every recipient's message final in the embedded log")
        smtp.wait_count(4)
    finally:
        proc.stop()
        smtp.stop()
        gateway.stop()
    rows = {k: [r for r in log if r["event_id"] == e["event_id"]] for k, e in evs.items()}
    check_outcomes(rows, smtp, gateway)


def test_the_outbox_splits_and_checks_recipients_as_the_gateways_do(tmp_path: Path) -> None:
    """`make run`'s delivery (files in var/outbox/): one file per recipient, and a malformed
    address, number or Telegram chat id fails as it would against a real gateway instead of being
    "sent" to a file (a chat id and a number with letters were written out as sent)."""
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    config = {
        "operators": [{"code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example",
                       "timezone": "Europe/Moscow",
                       "channels": {"sms": {"outbox": True}, "email": {"outbox": True},
                                    "telegram": {"outbox": True}}}],
        "templates": [{"event": "low_balance", "channel": None, "subject": SUBJECT, "body": "Работы 15.05."}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    e = event(1, sms="8(912)1234567; 8(913)765; 8912abc4567", email="kuz@mail.ru, petrov@mail..ru")
    e["abonent"]["contacts"]["telegram_id"] = "12345 Иван １２３"
    (tmp_path / "event.json").write_text(json.dumps(e, ensure_ascii=False), encoding="utf-8")
    msgd("migrate", env=env)
    msgd("config", "load", str(tmp_path / "config.json"), env=env)
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", str(tmp_path / "event.json"), env=env)

        def final() -> dict[str, dict[str, Any]]:
            got = {r["recipient"]: r for r in json.loads(msgd("log", "--json", env=env).stdout)
                   if r["state"] in ("sent", "failed")}
            return got if len(got) >= 8 else {}

        rows = wait_for(final, timeout=60, what="the eight recipients' messages final")
    finally:
        proc.stop()
    assert {r: row["state"] for r, row in rows.items()} == {
        "8(912)1234567": "sent", "8(913)765": "failed", "8912abc4567": "failed", "kuz@mail.ru": "sent",
        "petrov@mail..ru": "failed", "12345": "sent", "Иван": "failed", "１２３": "failed"}
    assert {rows[r]["fault"] for r in ("8(913)765", "8912abc4567", "petrov@mail..ru", "Иван", "１２３")} == {"recipient"}
    assert "letters where digits should be" in rows["8912abc4567"]["reason"]
    assert rows["１２３"]["reason"].startswith("'１２３' is not a Telegram chat id")
    assert rows["petrov@mail..ru"]["reason"].startswith("invalid e-mail address 'petrov@mail..ru': ")
    assert rows["8(913)765"]["reason"].startswith("invalid phone number '8(913)765': ")
    files = sorted((tmp_path / "var" / "outbox").glob("*.txt"))
    assert sorted(line for f in files for line in f.read_text(encoding="utf-8").splitlines()
                  if line.startswith("To: ")) == ["To: 12345", "To: 8(912)1234567", "To: kuz@mail.ru"]
