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
RETRY_AFTER = 5  # seconds a far side asks for: well over these tests' retry backoff (about 1 s)


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
    # a manual send whose form names a legacy method overrides the template's (live) SMS channel
    manual_sms = seed.template(event_type="manual", channel="sms", body="%(text)s")
    alice, gone = push_service.subscribe("alice"), push_service.subscribe("gone")
    push_service.script["gone"] = [(410, "push subscription has unsubscribed or expired.", {})]
    pipeline.start("router", "renderer", "recorder", "sender:sms", "sender:email", "sender:telegram",
                   "sender:push")

    fan = event(1, email="abonent@example.net")
    fan["abonent"]["contacts"].update(telegram_id=555001, push=[alice.subscription, gone.subscription])
    legacy = event(2, etype="blocked", email="abonent@example.net")
    legacy["abonent"]["contacts"]["telegram_id"] = "555002"
    manual_sends = [
        event(10 + i, etype="manual", email="abonent@example.net", data={"text": "Плановые работы"},
              manual={"template_id": manual_sms.id, "channel": method, "admin_email": "admin@best.example"})
        for i, method in enumerate(("Winpop", "whatsapp"))
    ]
    publish_with_pika(rabbit_url, namespace, [legacy, *manual_sends, fan])
    wait_for(finals(fan["event_id"], 5), timeout=30, what="5 fan-out copies final")
    wait_for(finals(legacy["event_id"], 1), timeout=10, what="the WhatsApp message recorded")
    for m in manual_sends:
        wait_for(finals(m["event_id"], 1), timeout=10, what=f"the manual {m['manual']['channel']} send recorded")

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
    for manual, channel in zip(manual_sends, ("winpop", "whatsapp"), strict=True):
        (legacy_manual,) = messages(event_id=manual["event_id"])
        assert (legacy_manual.channel, legacy_manual.state) == (channel, "unsupported")
        assert legacy_manual.reason.startswith(f"unsupported channel {channel!r}")
        assert (history(legacy_manual), legacy_manual.attempts) == ([], 0)  # never tried, never retried
    # nothing of the legacy event (nor of the legacy manual sends) reached any counterpart
    assert len(gateway.requests) == 1 and len(smtp.messages) == 1 and len(api.calls) == 1
    assert push_service.requests == 2


def payment_templates_for_telegram_and_push(api: BotApi, push_service: PushService, vapid: Vapid) -> Any:
    """An operator with Telegram and push settings, a payment template on each; the subscription "busy"."""
    op = seed.operator()
    telegram_settings(op, api)
    push_settings(op, vapid)
    seed.template(event_type="payment_received", channel="telegram", body="Платёж зачислен, %(name)s")
    seed.template(event_type="payment_received", channel="push", subject="Платёж", body="Зачислено")
    return push_service.subscribe("busy")


def test_telegram_and_push_failures_end_in_the_right_state(
    pipeline: Pipeline, api: BotApi, push_service: PushService, vapid: Vapid, rabbit_url: str, namespace: str,
) -> None:
    busy = payment_templates_for_telegram_and_push(api, push_service, vapid)
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


def test_the_sender_stage_waits_as_long_as_the_far_side_asks(
    pipeline: Pipeline, api: BotApi, push_service: PushService, vapid: Vapid, rabbit_url: str, namespace: str,
) -> None:
    """Retry-After at the stage, not only in the channel: the normal wait before a second
    attempt is about 1 s (MSGD_RETRY_BASE_SECONDS=1, jitter ±20 %, never under 1 s:
    msgd/retry.py), while Telegram (``retry_after``) and the push service (``Retry-After``)
    ask for 5 s.  A second attempt that comes 5 s later or after, with "next in 5 s" in the
    log, is only possible if the sender stage hands their wish to the backoff.

    (msgd treats Retry-After as a floor, not a replacement: a short Retry-After never
    shortens a long backoff.  So a 1 s Retry-After under a 1 s base, as in the test above,
    cannot tell whether it was honoured; a longer Retry-After can.)"""
    from msgd.store.models import Attempt

    busy = payment_templates_for_telegram_and_push(api, push_service, vapid)
    api.script["429"] = [too_many(RETRY_AFTER)]
    push_service.script["busy"] = [(429, "slow down", {"Retry-After": str(RETRY_AFTER)})]
    pipeline.start("router", "renderer", "recorder", "sender:telegram", "sender:push", MSGD_RETRY_BASE_SECONDS="1")

    limited = event(1, sms=None, etype="payment_received")
    limited["abonent"]["contacts"].update(telegram_id="429", push=[busy.subscription])
    publish_with_pika(rabbit_url, namespace, [limited])
    wait_for(finals(limited["event_id"], 2), timeout=40, what="both rate-limited messages final")

    log = messages(event_id=limited["event_id"])
    assert sorted(m.channel for m in log) == ["push", "telegram"]
    for m in log:
        assert (m.state, m.attempts) == ("sent", 2), (m.channel, m.state, m.reason)
        assert history(m) == ["retrying", "sent"]
        retrying, sent = Attempt.objects.filter(message=m).order_by("at", "id")
        assert f"next in {RETRY_AFTER} s)" in retrying.reason, (m.channel, retrying.reason)
        waited = (sent.at - retrying.at).total_seconds()
        assert waited >= RETRY_AFTER, f"{m.channel}: sent {waited:.2f} s after the 429, before its Retry-After"
    telegram_429 = next(m for m in log if m.channel == "telegram")
    assert f"asks to retry in {RETRY_AFTER} s" in history_reasons(telegram_429)[0]
    tg_calls = [c for c in api.calls if c.payload.get("chat_id") == "429"]
    assert len(tg_calls) == 2
    assert tg_calls[1].at - tg_calls[0].at >= RETRY_AFTER - 0.05, "retried before Telegram's retry_after"
    assert push_service.payloads("busy") == [{"title": "Платёж", "body": "Зачислено"}]
    assert push_service.requests == 2 and not push_service.problems, push_service.problems


def history_reasons(m: Any) -> list[str]:
    from msgd.store.models import Attempt

    return list(Attempt.objects.filter(message=m).order_by("at", "id").values_list("reason", flat=True))
