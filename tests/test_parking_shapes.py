"""`msgd parking list|replay` and the admin's parking page work on every parked message: empty,
binary, huge and non-UTF-8 bodies, bodies py-amqp hands over as str, and every header shape
(bytes values, nested tables and lists, an odd x-death, no headers, non-string keys).
Both brokers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from msgd import parking
from msgd import topology as topo
from msgd.broker import Broker, Outgoing, make_broker
from msgd.settings import Settings
from tests.support import msgd, stage_env, wait_for
from tests.test_broker import Collector
from tests.test_web_admin import embedded, staff  # noqa: F401 - fixtures of the admin tests

SECRET = "Xq7mPa2k"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
HUGE = json.dumps({"kind": "outbound", "body": "Я" * 1_500_000}, ensure_ascii=False).encode()  # 3 MB


@pytest.fixture(params=["embedded", "rabbitmq"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    if request.param == "rabbitmq":
        env = {"MSGD_BROKER_URL": request.getfixturevalue("rabbit_url"),
               "MSGD_NAMESPACE": request.getfixturevalue("namespace")}
    else:
        env = {"MSGD_BROKER_URL": "", "MSGD_VAR_DIR": str(tmp_path / "var"), "MSGD_NAMESPACE": "emb"}
    return Settings.from_env(env), stage_env(**env)


def shapes(settings: Settings) -> list[tuple[bytes, dict[str, Any], str]]:
    """(body, headers, what `list` must show for it)."""
    ns = settings.namespace
    src = topo.queue_for_route(ns, "send.sms.bulk")
    out: list[tuple[bytes, dict[str, Any], str]] = [
        (b"", {"x-msgd-reason": "body is empty, not JSON", "x-msgd-source-queue": src, "x-msgd-stage": "router"},
         "(empty body)"),
        (PNG, {"x-msgd-reason": b"binary reason \xff", "x-msgd-source-queue": src.encode()},
         "not UTF-8 text) \\x89PNG\\x0d"),
        (HUGE, {"x-death": [{"queue": src, "reason": "delivery_limit", "count": 11,
                             "time": dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC),
                             "routing-keys": ["send.sms.bulk"]}]},
         f"({len(HUGE)} bytes in all)"),
        ("Привет, абонент".encode("cp1251"),
         {"x-msgd-reason": "cp1251", "x-msgd-source-queue": src,
          "meta": {"nested": {"deep": [1, 2.5, True, None, Decimal("1.50"), ["x", b"\x00"]]}}},
         "not UTF-8 text) \\xcf"),
        (json.dumps({"gen_pwd": SECRET, "n": 1}).encode(), {"x-death": "not a list", "x-msgd-source-queue": src},
         '"gen_pwd": "***"'),
        (b"terminal \x1b[2J\x07 games", {}, "terminal \\x1b[2J\\x07 games"),
    ]
    if settings.embedded:  # AMQP tables cannot carry them; a JSON file or another tool might
        out.append((b'{"n": 2}', {1: "one", "x-msgd-source-queue": src, "x-msgd-reason": None}, '"n": 2'))
    return out


def publish_parked(broker: Broker, items: list[tuple[bytes, dict[str, Any], str]]) -> None:
    broker.publish([Outgoing(route="send.sms.bulk", body=body, exchange="parking", headers=headers)
                    for body, headers, _ in items])


def test_list_and_replay_every_shape_of_parked_message(where: tuple[Settings, dict[str, str]]) -> None:
    settings, env = where
    broker = make_broker(settings)
    try:
        broker.setup(["sms"])
        items = shapes(settings)
        publish_parked(broker, items)
        parking_q = topo.parking_queue(settings.namespace)
        wait_for(lambda: broker.queue_depths([parking_q])[parking_q] == len(items), what="all parked")

        listed = parking.peek(broker, settings, 50)
        assert sorted(p.delivery.body for p in listed) == sorted(body for body, _, _ in items)
        for p in listed:
            assert len(p.shown_body(2000)) < 2100 and p.reason and isinstance(p.key, str)
        assert len({p.key for p in listed}) == len(items)

        result = msgd("parking", "list", "--limit", "50", env=env)
        out = result.stdout
        assert f"{len(items)} message(s) parked" in out
        for _, _, shown in items:
            assert shown in out, shown
        assert "binary reason" in out and "dead-lettered by RabbitMQ (delivery_limit, count 11)" in out
        assert SECRET not in out and "\x1b" not in out

        replayable = [body for body, h, _ in items if h]
        done = msgd("parking", "replay", env=env).stdout
        assert f"replayed {len(replayable)} message(s); 1 kept in parking" in done
        target = topo.queue_for_route(settings.namespace, "send.sms.bulk")
        back = Collector(settings, [target], len(replayable)).run()
        assert sorted(d.body for d in back) == sorted(replayable), "a body changed on its way back"
        assert [p.delivery.body for p in parking.peek(broker, settings, 50)] == [b"terminal \x1b[2J\x07 games"]
    finally:
        broker.close()


def test_bodies_the_amqp_client_hands_over_as_text_are_listed_and_replayed_byte_for_byte(
        rabbit_url: str, namespace: str) -> None:
    """py-amqp gives '' (str) for a zero-length body and decodes a body that names its
    content_encoding: the empty body of the issue crashed `msgd parking list`."""
    import pika

    from tests.support import pika_params

    settings = Settings.from_env({"MSGD_BROKER_URL": rabbit_url, "MSGD_NAMESPACE": namespace})
    env = stage_env(MSGD_BROKER_URL=rabbit_url, MSGD_NAMESPACE=namespace)
    broker = make_broker(settings)
    broker.setup(["sms"])
    src = topo.queue_for_route(namespace, "send.sms.bulk")
    bodies = [(b"", None), (b"caf\xe9 latin-1", "latin-1"), ("Привет".encode(), "utf-8"), (b"\xff\xfe", "utf-8")]
    conn = pika.BlockingConnection(pika_params(rabbit_url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for body, encoding in bodies:
            ch.basic_publish(topo.parking_exchange(namespace), "send.sms.bulk", body,
                             pika.BasicProperties(content_encoding=encoding, delivery_mode=2,
                                                  headers={"x-msgd-source-queue": src, "x-msgd-reason": "test"}))
    finally:
        conn.close()
    try:
        parking_q = topo.parking_queue(namespace)
        wait_for(lambda: broker.queue_depths([parking_q])[parking_q] == len(bodies), what="all parked")
        assert sorted(p.delivery.body for p in parking.peek(broker, settings, 10)) == sorted(b for b, _ in bodies)
        out = msgd("parking", "list", env=env).stdout
        assert "(empty body)" in out and "Привет" in out and "4 message(s) parked" in out
        assert "replayed 4 message(s)" in msgd("parking", "replay", env=env).stdout
        back = Collector(settings, [src], len(bodies)).run()
        assert sorted(d.body for d in back) == sorted(b for b, _ in bodies)
    finally:
        broker.close()


@pytest.fixture
def staff_on(where: tuple[Settings, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
             request: pytest.FixtureRequest) -> Any:
    settings, env = where
    request.getfixturevalue("embedded")  # the admin fixture's defaults, then this broker
    for key, value in env.items():
        if key.startswith("MSGD_"):
            monkeypatch.setenv(key, value)
    return request.getfixturevalue("staff")


def test_admin_parking_page_shows_and_replays_every_shape(
        where: tuple[Settings, dict[str, str]], staff_on: Any) -> None:
    settings, _ = where
    broker = make_broker(settings)
    try:
        broker.setup(["sms"])
        items = shapes(settings)
        publish_parked(broker, items)
        parking_q = topo.parking_queue(settings.namespace)
        wait_for(lambda: broker.queue_depths([parking_q])[parking_q] == len(items), what="all parked")
        resp = staff_on.get("/admin/tools/parking/")
        page = resp.content.decode()
        assert resp.status_code == 200 and f"{len(items)} messages parked" in page
        for text in ("(empty body)", "not UTF-8 text) \\x89PNG", f"({len(HUGE)} bytes in all)",
                     "binary reason", "dead-lettered by RabbitMQ (delivery_limit, count 11)", "\\x1b[2J"):
            assert text in page, text
        assert SECRET not in page and "\x1b" not in page
        assert len(page) < 200_000, "the page carried a huge body whole"
        assert staff_on.post("/admin/tools/parking/", {"all": "Replay all"}).status_code == 302
        replayable = [body for body, h, _ in items if h]
        back = Collector(settings, [topo.queue_for_route(settings.namespace, "send.sms.bulk")], len(replayable)).run()
        assert sorted(d.body for d in back) == sorted(replayable)
    finally:
        broker.close()
