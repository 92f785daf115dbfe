"""Resend through the pipeline on RabbitMQ and the store under test: a message that failed on a
gateway refusing the account is sent again once the account is fixed — once, though two
people ask for it at the same moment and a third asks again later (issue 13 point 4)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests import seed
from tests.support import Gateway, Pipeline, event, msgd, publish_with_pika, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.store]


def rows(**filters: Any) -> list[Any]:
    from msgd.store.models import Message

    return list(Message.objects.filter(**filters).order_by("created_at"))


def test_a_resend_asked_for_twice_at_once_goes_out_once(pipeline: Pipeline, gateway: Gateway, rabbit_url: str,
                                                         namespace: str) -> None:
    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template(body="Баланс %(balance).2f, договор %(contract_number)s")
    gateway.script = [(401, "Unauthorized: account blocked")]  # the gateway refuses, then the account is fixed
    pipeline.start("router", "renderer", "recorder", "sender:sms")
    publish_with_pika(rabbit_url, namespace, [event(7)])
    wait_for(lambda: [m.state for m in rows()] == ["failed"], timeout=60, what="the message failed")
    (original,) = rows()

    answers: list[str] = []

    def ask() -> None:
        answers.append(msgd("resend", "--id", str(original.id), env=pipeline.env).stdout)

    clicks = [threading.Thread(target=ask) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(timeout=120)
    last = sorted(a.strip().splitlines()[-1] for a in answers)
    assert last[0].startswith("0 sent again; 1 skipped: it was sent again already (that one is ") and \
        last[1] == "1 sent again", answers  # the second waited for the first's lock, then found its resend

    wait_for(lambda: [m.state for m in rows(resend_of=original)] == ["sent"], timeout=60, what="the resend sent")
    later = msgd("resend", "--id", str(original.id), env=pipeline.env).stdout
    assert "skipped" in later and "that one is sent" in later
    assert gateway.received() == ["Баланс -12.50, договор C7"] * 2  # the failed try, then the resend
    (resent,) = rows(resend_of=original)
    assert (resent.body, resent.recipient, resent.attempts) == (original.body, original.recipient, 1)
    assert [(a.number, a.state) for a in resent.history.all()] == [(0, "queued"), (1, "sent")]
    original.refresh_from_db()
    assert original.state == "failed"  # the log keeps both, linked
