"""Every channel end to end: stages as separate processes on real RabbitMQ, each channel
delivering to a real local counterpart — the SMS gateway (HTTP), aiosmtpd, a Bot API
emulator for Telegram and a push service that decrypts the payload and checks VAPID.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import seed
from tests.support import Gateway, Pipeline, SmtpSink, event, publish_with_pika, wait_for
from tests.test_sender_push import SUBJECT, PushService, Vapid
from tests.test_sender_telegram import TOKEN, BotApi, chat_not_found, too_many

pytestmark = [pytest.mark.slow]

DEFAULT_SUBJECT = "Сообщение от провайдера"


def messages(**filters: Any) -> list[Any]:
    from msgd.store.models import Message

    return list(Message.objects.filter(**filters).order_by("channel", "recipient"))


def finals(event_id: str, n: int) -> Any:
    from msgd.envelope import FINAL_STATES

    return lambda: len(messages(event_id=event_id, state__in=FINAL_STATES)) >= n


def history(m: Any) -> list[str]:
    from msgd.store.models import Attempt

    return list(Attempt.objects.filter(message=m).order_by("at", "id").values_list("state", flat=True))


def telegram_settings(op: Any, api: BotApi) -> Any:
    from msgd.store.models import ChannelSettings

    return ChannelSettings.objects.create(operator=op, channel="telegram", params={"api_url": api.url},
                                          secrets={"token": TOKEN})


def push_settings(op: Any, vapid: Vapid) -> Any:
    from msgd.store.models import ChannelSettings

    return ChannelSettings.objects.create(operator=op, channel="push",
                                          params={"vapid_subject": SUBJECT, "vapid_public_key": vapid.public},
                                          secrets={"vapid_private_key": vapid.pem()})


@pytest.fixture
def api() -> Iterator[BotApi]:
    a = BotApi().start()
    yield a
    a.stop()


@pytest.fixture
def vapid() -> Vapid:
    return Vapid()


@pytest.fixture
def push_service(vapid: Vapid) -> Iterator[PushService]:
    s = PushService(vapid.public).start()
    yield s
    s.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


def test_each_channel_reaches_its_counterpart_and_a_template_without_channel_fans_out(
    pipeline: Pipeline, gateway: Gateway, smtp: SmtpSink, api: BotApi, push_service: PushService,
    vapid: Vapid, rabbit_url: str, namespace: str,
) -> None:
    op = seed.operator(default_subject=DEFAULT_SUBJECT)
    seed.sms_gateway(op, gateway.url)
    seed.smtp(op, smtp.port)
    telegram_settings(op, api)
    push_settings(op, vapid)
    # no channel: every channel the subscriber has a contact for; no subject: the operator's default
    seed.template(channel=None, subject="", body="%(name)s: баланс %(balance).2f %(currecy)s")
    seed.template(event_type="blocked", channel="WhatsApp", body="%(name)s заблокирован")
    alice, gone = push_service.subscribe("alice"), push_service.subscribe("gone")
    push_service.script["gone"] = [(410, "push subscription has unsubscribed or expired.", {})]
    pipeline.start("router", "renderer", "recorder", "sender:sms", "sender:email", "sender:telegram",
                   "sender:push")

    fan = event(1, email="abonent@example.net")
    fan["abonent"]["contacts"].update(telegram_id=555001, push=[alice.subscription, gone.subscription])
    legacy = event(2, etype="blocked", email="abonent@example.net")
    legacy["abonent"]["contacts"]["telegram_id"] = "555002"
    publish_with_pika(rabbit_url, namespace, [legacy, fan])
    wait_for(finals(fan["event_id"], 5), timeout=30, what="5 fan-out copies final")
    wait_for(finals(legacy["event_id"], 1), timeout=10, what="the WhatsApp message recorded")

    text = "Абонент 1: баланс -12.50 руб."
    assert gateway.received() == [text]
    (rcpts, mail), = smtp.messages
    assert rcpts == ["abonent@example.net"]
    assert mail["Subject"] == DEFAULT_SUBJECT  # the template has none: the operator's default header
    assert "noc@best.example" in mail["From"]  # a system message comes from the operator's address
    assert mail.get_body(("plain",)).get_content().strip() == text
    assert api.sent() == [text] and api.calls[0].payload["chat_id"] == "555001"
    assert push_service.payloads("alice") == [{"title": DEFAULT_SUBJECT, "body": text}]
    assert not push_service.problems, push_service.problems

    log = messages(event_id=fan["event_id"])
    states = sorted((m.channel, m.state) for m in log)
    assert states == [("email", "sent"), ("push", "failed"), ("push", "sent"), ("sms", "sent"),
                      ("telegram", "sent")]
    assert len({m.id for m in log}) == 5 and all(m.attempts == 1 for m in log)
    by_recipient = {m.recipient: m for m in log if m.channel == "push"}
    sent_push = next(m for r, m in by_recipient.items() if "/alice" in r)
    assert sent_push.state == "sent" and sent_push.gateway_message_id.endswith("/m/alice-1")
    gone_push = next(m for r, m in by_recipient.items() if "/gone" in r)
    assert gone_push.reason.startswith("subscription is gone (the browser unsubscribed)")
    assert "HTTP 410" in gone_push.reason and history(gone_push) == ["failed"]
    tg = next(m for m in log if m.channel == "telegram")
    assert (tg.recipient, tg.gateway_message_id) == ("555001", "101")

    (whatsapp,) = messages(event_id=legacy["event_id"])
    assert (whatsapp.channel, whatsapp.state) == ("whatsapp", "unsupported")
    assert whatsapp.reason.startswith("unsupported channel 'whatsapp'")
    assert (history(whatsapp), whatsapp.attempts) == ([], 0)  # never tried, never retried
    # nothing of the legacy event reached any counterpart
    assert len(gateway.requests) == 1 and len(smtp.messages) == 1 and len(api.calls) == 1
    assert push_service.requests == 2


def test_telegram_and_push_failures_end_in_the_right_state(
    pipeline: Pipeline, api: BotApi, push_service: PushService, vapid: Vapid, rabbit_url: str, namespace: str,
) -> None:
    op = seed.operator()
    telegram_settings(op, api)
    push_settings(op, vapid)
    seed.template(event_type="payment_received", channel="telegram", body="Платёж зачислен, %(name)s")
    seed.template(event_type="payment_received", channel="push", subject="Платёж", body="Зачислено")
    busy = push_service.subscribe("busy")
    api.script["404"] = [chat_not_found()]
    api.script["429"] = [too_many(1)]
    push_service.script["busy"] = [(429, "slow down", {"Retry-After": "1"})]
    pipeline.start("router", "renderer", "recorder", "sender:telegram", "sender:push", MSGD_RETRY_BASE_SECONDS="1")

    unknown = event(1, sms=None, etype="payment_received")
    unknown["abonent"]["id"] = 2731
    unknown["abonent"]["contacts"]["telegram_id"] = "404"
    limited = event(2, sms=None, etype="payment_received")
    limited["abonent"]["contacts"].update(telegram_id="429", push=[busy.subscription])
    publish_with_pika(rabbit_url, namespace, [unknown, limited])
    wait_for(finals(unknown["event_id"], 1), timeout=20, what="chat-not-found message final")
    wait_for(finals(limited["event_id"], 2), timeout=20, what="rate-limited messages final")

    (failed,) = messages(event_id=unknown["event_id"], channel="telegram")
    assert failed.state == "failed"
    assert failed.reason == (
        "subscriber #2731 is not registered with the bot (Telegram: Bad Request: chat not found)"
        " — check the subscriber's TELEGRAM ID (permanent error)"
    )
    assert history(failed) == ["failed"] and failed.attempts == 1

    for m in messages(event_id=limited["event_id"]):
        assert (m.state, m.attempts) == ("sent", 2), (m.channel, m.state, m.reason)
        assert history(m) == ["retrying", "sent"]
    tg_calls = [c for c in api.calls if c.payload.get("chat_id") == "429"]
    assert len(tg_calls) == 2 and tg_calls[1].at - tg_calls[0].at >= 0.9, "retried before Telegram's retry_after"
    assert push_service.payloads("busy") == [{"title": "Платёж", "body": "Зачислено"}]

    from msgd.store.models import Attempt

    reasons = [a.reason for a in Attempt.objects.all()]
    assert any("Telegram is rate limiting the bot (HTTP 429, asks to retry in 1 s" in r for r in reasons)
    for text in [pipeline.logs_text(), *reasons]:
        assert TOKEN not in text and TOKEN.split(":")[1] not in text
