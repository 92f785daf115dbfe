"""``msgd parking list|replay`` on RabbitMQ (stages as processes) and on the embedded broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import seed
from tests.support import Gateway, Pipeline, event, msgd, publish_with_pika, wait_for


@pytest.mark.slow
def test_event_for_a_missing_operator_is_listed_then_replayed_once_fixed(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str
) -> None:
    pipeline.start("router", "renderer", "recorder", "sender:sms")
    publish_with_pika(rabbit_url, namespace, [event(1, operator="newop")])

    def listed() -> str | None:
        out = msgd("parking", "list", env=pipeline.env).stdout
        return out if "1 message(s) parked" in out else None

    out = wait_for(listed, what="the event to be parked")
    assert "operator 'newop' is not configured" in out and f"from {namespace}.router.bulk" in out
    wait_for(listed, what="the parked event to stay parked after list")  # list does not consume

    op = seed.operator(code="newop")
    seed.sms_gateway(op, gateway.url)
    seed.template(channel="sms")
    assert "replayed 1 message(s)" in msgd("parking", "replay", env=pipeline.env).stdout
    gateway.wait_count(1)
    wait_for(lambda: "0 message(s) parked" in msgd("parking", "list", env=pipeline.env).stdout,
             what="parking to be empty")


def test_embedded_broker_replays_to_the_source_queue_and_keeps_unknown_ones(tmp_path: Path) -> None:
    from msgd import parking
    from msgd.broker import Outgoing, make_broker
    from msgd.settings import Settings

    settings = Settings(var_dir=tmp_path, namespace="e")
    broker = make_broker(settings)
    body = json.dumps({"v": 1, "kind": "outbound"}).encode()
    broker.publish([
        Outgoing(route="send.sms.bulk", body=body, exchange="parking",
                 headers={"x-msgd-reason": "sender:sms failed", "x-msgd-source-queue": "e.send.sms.bulk",
                          "x-msgd-stage": "sender:sms", "trace": "keep"}),
        Outgoing(route="x", body=b"?", exchange="parking", headers={}),
    ])
    items = parking.peek(broker, settings, 10)
    assert [p.reason for p in items] == ["sender:sms failed", "no reason recorded"]
    assert parking.replay(broker, settings) == (1, 1)
    depths = broker.queue_depths(["e.send.sms.bulk", "e.parking"])
    assert depths == {"e.send.sms.bulk": 1, "e.parking": 1}
    (back,) = broker.messages("e.send.sms.bulk")  # type: ignore[attr-defined]
    assert back.body == body and back.headers == {"trace": "keep"}
    broker.close()


def test_rabbitmq_replays_only_the_chosen_messages(rabbit_url: str, namespace: str) -> None:
    """The admin's selection on RabbitMQ: one of three parked messages goes back, two stay."""
    from msgd import parking, topology
    from msgd.broker import Outgoing, make_broker
    from msgd.settings import Settings

    settings = Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace})
    broker = make_broker(settings)
    broker.setup(["sms"])
    source = topology.queue_for_route(namespace, "send.sms.bulk")
    broker.publish([Outgoing(route="send.sms.bulk", body=f'{{"n":{i}}}'.encode(), exchange="parking",
                             headers={"x-msgd-source-queue": source, "x-msgd-reason": "test",
                                      "x-msgd-parked-at": f"2026-11-27T10:00:0{i}"}) for i in range(3)])
    listed = parking.peek(broker, settings, 10)
    chosen = next(p for p in listed if p.delivery.body == b'{"n":1}')
    assert parking.replay(broker, settings, keys={chosen.key}) == (1, 0)
    depths = broker.queue_depths([source, topology.parking_queue(namespace)])
    assert depths == {source: 1, topology.parking_queue(namespace): 2}
    assert sorted(p.delivery.body for p in parking.peek(broker, settings, 10)) == [b'{"n":0}', b'{"n":2}']
    broker.close()
