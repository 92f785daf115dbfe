"""Nothing delivered without a record, through the whole pipeline: stages as processes on
RabbitMQ, and `msgd run all` on the embedded broker; the store under test (PostgreSQL, then
SQLite with make test).

The issue's case: an event carrying NUL was delivered to the gateway while both status
reports were parked ("PostgreSQL text fields cannot contain NUL") and the log had no row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from msgd.settings import Settings
from msgd.storable import REPLACEMENT
from tests import seed
from tests.support import (
    Gateway,
    Pipeline,
    StageProcess,
    event,
    msgd,
    publish_with_pika,
    stage_env,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.store]


def parked(env: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, reason, body) of every parked message; they stay parked."""
    from msgd import parking
    from msgd.broker import make_broker

    settings = Settings.from_env(env)
    broker = make_broker(settings)
    try:
        return [(p.headers.get("x-msgd-stage", ""), p.reason, json.loads(p.delivery.body))
                for p in parking.peek(broker, settings, 50)]
    finally:
        broker.close()


def events() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """(refused events with NUL in data.text / event_id / a name, a good event, an event whose
    render produces NUL)."""
    text, ident, name = event(1, data={"text": "a\x00b"}), event(2, data={"text": "x"}), event(3, data={"text": "x"})
    ident["event_id"] += "\x00"
    name["abonent"]["name"] = "Иван\x00ов"
    good = event(4, data={"text": "ok"})
    render_nul = event(5, etype="blocked", data={"code": 0})
    return [text, ident, name], good, render_nul


def configure(gateway: Gateway) -> None:
    # The gateway's own answer carries NUL: the sent message must still be recorded.
    gateway.default = (200, "accepted\x00 id=77")
    seed.sms_gateway(seed.operator(), gateway.url)
    seed.template(body="Текст: %(text)s")
    seed.template(event_type="blocked", body="Код: %(code)c")


def check_outcome(env: dict[str, str], gateway: Gateway, refused: list[dict[str, Any]],
                  good: dict[str, Any], render_nul: dict[str, Any]) -> None:
    from msgd.store.models import Message

    sent = wait_for(lambda: Message.objects.filter(event_id=good["event_id"], state="sent").first(),
                    timeout=60, what="the good event's message recorded as sent")
    assert sent.reason.startswith(f"accepted{REPLACEMENT} id=77"), sent.reason
    failed = wait_for(lambda: Message.objects.filter(event_id=render_nul["event_id"], state="failed").first(),
                      timeout=60, what="the message whose render produced NUL recorded as failed")
    assert "rendered body contains a NUL character" in failed.reason
    found = wait_for(lambda: (lambda p: p if len(p) >= 3 else None)(parked(env)), timeout=60,
                     what="the 3 refused events parked")
    assert len(found) == 3 and {stage for stage, _, _ in found} == {"router"}, found  # no status report
    reasons = {body["event_id"]: reason for _, reason, body in found}
    assert set(reasons) == {e["event_id"] for e in refused}
    for e, place in zip(refused, ("data.text", "event_id", "abonent.name"), strict=True):
        assert f"{place}: contains a NUL character" in reasons[e["event_id"]], reasons
    assert gateway.received() == ["Текст: ok"]  # only the good event reached the gateway
    logged = set(Message.objects.values_list("event_id", flat=True))
    assert logged == {good["event_id"], render_nul["event_id"]}  # nothing of the refused events


def test_on_rabbitmq(pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str) -> None:
    configure(gateway)
    refused, good, render_nul = events()
    pipeline.start("router", "renderer", "recorder", "sender:sms")
    publish_with_pika(rabbit_url, namespace, [*refused, good, render_nul])
    check_outcome(pipeline.env, gateway, refused, good, render_nul)


def test_embedded(db: str, gateway: Gateway, tmp_path: Path) -> None:
    """`msgd run all` without a broker; `msgd publish` refuses the events itself unless told
    --no-validate, and then the router parks them."""
    configure(gateway)
    refused, good, render_nul = events()
    env = stage_env(MSGD_BROKER_URL="", MSGD_DATABASE_URL=db, MSGD_VAR_DIR=str(tmp_path / "var"))
    files = []
    for i, e in enumerate([*refused, good, render_nul]):
        files.append(tmp_path / f"event-{i}.json")
        files[-1].write_text(json.dumps(e, ensure_ascii=False), encoding="utf-8")
    out = msgd("publish", str(files[0]), env=env, check=False)
    assert out.returncode == 2 and "data.text: contains a NUL character" in out.stderr
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", "--no-validate", *map(str, files), env=env)
        check_outcome(env, gateway, refused, good, render_nul)
    finally:
        proc.stop()
