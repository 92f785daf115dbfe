"""The fast lane under load, end to end: a password reset reaches the gateway while bulk
requests hold every other request slot of the sender (real RabbitMQ, stage processes, a local
HTTP gateway that keeps its requests waiting)."""

from __future__ import annotations

import threading

import pytest

from tests import seed
from tests.support import Gateway, Pipeline, event, publish_with_pika, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.store]


def test_a_password_reset_is_sent_while_bulk_requests_are_stuck_in_a_slow_gateway(
        pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str) -> None:
    gateway.hold = threading.Event()  # every request waits until the test lets them go
    op = seed.operator()
    seed.sms_gateway(op, gateway.url)
    seed.template(channel="sms", body="bulk %(name)s")
    seed.template("password_reset", channel="sms", body="reset %(name)s")
    pipeline.start("router", "renderer", "sender:sms", MSGD_SENDER_CONCURRENCY="3", MSGD_SENDER_FAST_SLOTS="1",
                   MSGD_SENDER_CONSUMERS="2", MSGD_HTTP_TIMEOUT="120")
    pipeline.wait_started()
    publish_with_pika(rabbit_url, namespace, [event(i) for i in range(8)])
    gateway.wait_count(3)  # the bulk's 3 slots are held by requests the gateway does not answer
    publish_with_pika(rabbit_url, namespace, [event(100, etype="password_reset", data={"psw_token": "123456"})])
    wait_for(lambda: any(t.startswith("reset") for t in gateway.received()), timeout=30,
             what="the password reset at the gateway while the bulk requests wait")
    assert sum(t.startswith("bulk") for t in gateway.received()) == 3, "no bulk request took the fast lane's slot"
    gateway.hold.set()
    gateway.wait_count(9)
    assert sorted(gateway.received()) == sorted([f"bulk Абонент {i}" for i in range(8)] + ["reset Абонент 100"])
