"""The HTTP API through Django's test client; events really arrive on the broker."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from msgd import topology as topo
from msgd.settings import Settings
from tests import seed
from tests.support import ROOT, pika_params

EXAMPLES = ROOT / "examples" / "events"


def example(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    event["event_id"] = f"{name}-{uuid.uuid4().hex[:8]}"
    return event


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The API publishes to an embedded broker in tmp_path."""
    monkeypatch.setenv("MSGD_BROKER_URL", "")
    monkeypatch.setenv("MSGD_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MSGD_NAMESPACE", "msgd")
    return Settings.from_env()


def queued(settings: Settings) -> list[dict[str, Any]]:
    from msgd.broker.embedded import EmbeddedBroker

    broker = EmbeddedBroker(settings)
    try:
        return [json.loads(d.body) for q in topo.router_queues(settings.namespace) for d in broker.messages(q)]
    finally:
        broker.close()


@pytest.fixture
def client(db: str) -> Iterator[Any]:
    from django.test import Client

    from msgd.web.models import ApiToken

    ApiToken.objects.all().delete()
    _token, key = ApiToken.create("billing")
    yield Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def best(db: str) -> Any:
    """The operator the example events name: events for an unconfigured operator get 400."""
    return seed.operator()


def post(client: Any, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


# -- authentication --------------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, "Token wrong-key", "Bearer x", "Token "])
def test_no_or_bad_token_is_401(db: str, embedded: Settings, header: str | None) -> None:
    from django.test import Client

    from msgd.web.models import ApiToken

    ApiToken.create(f"t-{uuid.uuid4().hex[:6]}")
    c = Client(HTTP_AUTHORIZATION=header) if header else Client()
    for resp in (post(c, "/api/v1/events", example("low_balance")), c.get("/api/v1/messages")):
        assert resp.status_code == 401
        assert resp["WWW-Authenticate"] == "Token"
    assert queued(embedded) == []


def test_token_is_stored_hashed_and_revocable(db: str) -> None:
    from django.test import Client

    from msgd.web.models import ApiToken

    token, key = ApiToken.create("ops")
    assert key not in (token.key_hash, token.prefix) and len(token.key_hash) == 64
    c = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert c.get("/api/v1/messages").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    token.revoked = True
    token.save()  # a change made in this process: the kept token is forgotten at once
    assert c.get("/api/v1/messages").status_code == 401


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_period(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import Client

    from msgd.web.models import ApiToken
    from tests.support import wait_for

    monkeypatch.setenv("MSGD_API_TOKEN_CACHE_SECONDS", "0.5")
    token, key = ApiToken.create("ops")
    c = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert c.get("/api/v1/messages").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked=True)  # as `msgd token revoke` does elsewhere: no signal here
    wait_for(lambda: c.get("/api/v1/messages").status_code == 401, timeout=10,
             what="the revoked token refused once the cache period is over")
    monkeypatch.setenv("MSGD_API_TOKEN_CACHE_SECONDS", "0")
    other, other_key = ApiToken.create("billing")
    c = Client(HTTP_AUTHORIZATION=f"Token {other_key}")
    assert c.get("/api/v1/messages").status_code == 200
    ApiToken.objects.filter(pk=other.pk).update(revoked=True)
    assert c.get("/api/v1/messages").status_code == 401, "no cache: refused at once"


def test_token_cli_prints_the_key_once(db: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from msgd.cli import main
    from msgd.web.models import ApiToken, hash_key

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    ApiToken.objects.filter(name="cli").delete()
    assert main(["token", "create", "cli"]) == 0
    key = capsys.readouterr().out.strip()
    assert ApiToken.objects.get(name="cli").key_hash == hash_key(key)
    assert main(["token", "list"]) == 0
    assert key not in capsys.readouterr().out
    assert main(["token", "create", "cli"]) == 2


# -- POST /api/v1/events ---------------------------------------------------------------------
def test_event_is_published_and_202(client: Any, best: Any, embedded: Settings) -> None:
    event = example("low_balance")
    resp = post(client, "/api/v1/events", event)
    assert resp.status_code == 202, resp.content
    assert resp.json()["event_id"] == event["event_id"]
    assert [e["event_id"] for e in queued(embedded)] == [event["event_id"]]


def test_transactional_event_goes_to_the_fast_lane(client: Any, best: Any, embedded: Settings) -> None:
    from msgd.broker.embedded import EmbeddedBroker

    event = example("password_reset")
    assert post(client, "/api/v1/events", event).status_code == 202
    broker = EmbeddedBroker(embedded)
    tx = topo.queue_for_route("msgd", topo.router_route("tx"))
    assert [json.loads(d.body)["event_id"] for d in broker.messages(tx)] == [event["event_id"]]
    broker.close()


def test_a_list_is_all_or_nothing(client: Any, best: Any, embedded: Settings) -> None:
    good, bad = example("low_balance"), example("blocked")
    del bad["occurred_at"]
    resp = post(client, "/api/v1/events", [good, bad])
    assert resp.status_code == 400
    assert any(e["field"].startswith("[1]") for e in resp.json()["errors"]), resp.json()
    assert queued(embedded) == []
    assert post(client, "/api/v1/events", [good, example("blocked")]).status_code == 202
    assert len(queued(embedded)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "low_balance"}, "event_id"),
        ("[1, 2]", "(body)"),
        ("not json", "(body)"),
        ({**example("low_balance"), "occurred_at": "yesterday"}, "occurred_at"),
        ({**example("password_reset"), "data": {}}, "data.psw_token"),
    ],
)
def test_invalid_event_is_400_with_field_errors(client: Any, embedded: Settings, body: Any, field: str) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    resp = client.post("/api/v1/events", data=raw, content_type="application/json")
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert any(field in e["field"] or field in e["message"] for e in errors), errors
    assert queued(embedded) == []


def test_secret_values_are_not_echoed_in_errors(client: Any, embedded: Settings) -> None:
    event = example("password_reset")
    event["data"]["psw_token"] = {"secret": "s3cr3t-value"}
    resp = post(client, "/api/v1/events", event)
    assert resp.status_code == 400
    assert b"s3cr3t-value" not in resp.content


def test_wrong_content_type_and_method(client: Any, embedded: Settings) -> None:
    resp = client.post("/api/v1/events", data="a=1", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400
    assert client.get("/api/v1/events").status_code == 405


def test_broker_down_is_503_not_202(client: Any, best: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    resp = post(client, "/api/v1/events", example("low_balance"))
    assert resp.status_code == 503
    assert b"guest" not in resp.content


def test_broker_refusal_is_logged_redacted(client: Any, best: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:secretpw@127.0.0.1:1//")
    event = example("low_balance")
    with structlog.testing.capture_logs() as logs:
        resp = post(client, "/api/v1/events", event)
    assert resp.status_code == 503
    (failure,) = [e for e in logs if e["event"].startswith("publish failed")]
    assert failure["log_level"] == "error" and failure["event_ids"] == [event["event_id"]]
    assert resp.json()["error"] == f"the broker did not accept the event: {failure['error_type']}"
    assert failure["error"] and "secretpw" not in repr(logs)


def test_cli_publish_goes_the_same_way(db: str, embedded: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from msgd.cli import main

    assert main(["publish", "--new-id", str(EXAMPLES / "low_balance.json")]) == 0
    (event,) = queued(embedded)
    assert event["type"] == "low_balance"
    assert f"published low_balance event {event['event_id']} to embedded broker" in capsys.readouterr().out


def test_event_reaches_rabbitmq(client: Any, best: Any, db: str, rabbit_url: str, namespace: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pika

    from msgd.cli import main

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    monkeypatch.setenv("MSGD_BROKER_URL", rabbit_url)
    monkeypatch.setenv("MSGD_NAMESPACE", namespace)
    assert main(["setup"]) == 0
    event = example("low_balance")
    resp = post(client, "/api/v1/events", event)
    assert resp.status_code == 202, resp.content
    conn = pika.BlockingConnection(pika_params(rabbit_url))
    try:
        ch = conn.channel()
        bulk = topo.queue_for_route(namespace, topo.router_route("bulk"))
        method, _props, body = ch.basic_get(bulk, auto_ack=True)
        assert method is not None, "the event is not in the router's queue"
        assert json.loads(body)["event_id"] == event["event_id"]
    finally:
        conn.close()


# -- POST /api/v1/messages (manual send) -------------------------------------------------------
ABONENT = {"id": 1319, "name": "Новый абонент", "contacts": {"sms": "+79121234567"}}


def test_manual_send_builds_a_manual_event(client: Any, embedded: Settings) -> None:
    op = seed.operator()
    tpl = seed.template("manual", "sms", body="%(text)s", owner=op)
    resp = post(client, "/api/v1/messages", {
        "operator": "best", "abonent": ABONENT, "template_id": tpl.id, "channel": "email",
        "text": "Плановые работы", "admin_email": "admin@best.example"})
    assert resp.status_code == 202, resp.content
    (event,) = queued(embedded)
    assert event["event_id"] == resp.json()["event_id"]
    assert event["type"] == "manual"
    assert event["data"] == {"text": "Плановые работы"}
    assert event["manual"] == {"template_id": tpl.id, "channel": "email", "admin_email": "admin@best.example",
                               "all_templates": False}


def test_manual_send_text_is_needed_only_where_it_is_shown(client: Any, embedded: Settings) -> None:
    """The manual: a chosen template is sent as written, so text may be left out; arbitrary
    text goes through templates with %(text)s, so it is needed there and for all_templates."""
    op = seed.operator()
    own = seed.template("manual", "sms", body="Плановые работы 1 мая", owner=op, name="own")
    shows = seed.template("manual", "sms", body="%(text)s", owner=op, name="shows")
    django = seed.template("manual", "email", body="{{ text }}", owner=op, name="dj", use_django=True)
    base = {"operator": "best", "abonent": ABONENT, "admin_email": "admin@best.example"}
    for body in ({**base, "all_templates": True}, {**base, "all_templates": True, "text": ""},
                 {**base, "template_id": shows.id}, {**base, "template_id": django.id, "text": ""}):
        resp = post(client, "/api/v1/messages", body)
        assert resp.status_code == 400, (body, resp.content)
        assert [e["field"] for e in resp.json()["errors"]] == ["text"], resp.json()
    assert queued(embedded) == []
    resp = post(client, "/api/v1/messages", {**base, "template_id": own.id})
    assert resp.status_code == 202, resp.content
    (event,) = queued(embedded)
    assert event["manual"]["template_id"] == own.id and "text" not in event["data"]


def test_manual_send_channel_dashes_keep_the_templates(client: Any, embedded: Settings) -> None:
    seed.operator()
    resp = post(client, "/api/v1/messages", {
        "operator": "best", "abonent": ABONENT, "all_templates": True, "channel": "---",
        "text": "x", "admin_email": "admin@best.example"})
    assert resp.status_code == 202, resp.content
    assert queued(embedded)[0]["manual"]["channel"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"template_id": None}, "template_id"),  # no template needs an explicit all_templates
        ({"all_templates": True}, "all_templates"),  # both
        ({"template_id": 999999}, "template_id"),
        ({"operator": "nobody"}, "operator"),
        ({"channel": "pigeon"}, "channel"),
        ({"admin_email": "not-an-email"}, "admin_email"),
        ({"abonent": {"contacts": {}}}, "abonent"),
        ({"text": 5}, "text"),
        ({"extra": 1}, "extra"),
    ],
)
def test_manual_send_refuses_bad_input(client: Any, embedded: Settings, change: dict[str, Any],
                                       field: str) -> None:
    op = seed.operator()
    tpl = seed.template("manual", "sms", body="%(text)s", owner=op)
    body = {"operator": "best", "abonent": ABONENT, "template_id": tpl.id, "channel": None,
            "text": "t", "admin_email": "admin@best.example", **change}
    if change.get("template_id") == 999999:
        body["template_id"] = 999999
    resp = post(client, "/api/v1/messages", body)
    assert resp.status_code == 400, resp.content
    assert any(e["field"].startswith(field) for e in resp.json()["errors"]), resp.json()
    assert queued(embedded) == []


def test_manual_send_refuses_another_operators_template(client: Any, embedded: Settings) -> None:
    seed.operator()
    other = seed.operator("other")
    tpl = seed.template("manual", "sms", body="%(text)s", owner=other)
    resp = post(client, "/api/v1/messages", {
        "operator": "best", "abonent": ABONENT, "template_id": tpl.id, "text": "t",
        "admin_email": "admin@best.example"})
    assert resp.status_code == 400
    assert queued(embedded) == []


# -- the message log ---------------------------------------------------------------------------
def make_message(abonent: str, state: str, created: dt.datetime, attempts: int = 0) -> Any:
    from msgd.store.models import Attempt, Message

    m = Message.objects.create(
        id=uuid.uuid4(), event_id=f"ev-{uuid.uuid4().hex[:6]}", event_type="low_balance", operator_code="best",
        abonent_id=abonent, channel="sms", recipient="+79121234567", state=state, reason=f"{state} reason",
        attempts=attempts, created_at=created, updated_at=created)
    for n in range(1, attempts + 1):
        Attempt.objects.create(message=m, number=n, state="retrying" if n < attempts else state,
                               reason=f"try {n}", at=created + dt.timedelta(seconds=n))
    return m


def test_list_filters_and_pages(client: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    old = make_message("1", "sent", now - dt.timedelta(days=3))
    for i in range(5):
        make_message("2", "failed" if i % 2 else "sent", now - dt.timedelta(minutes=i))
    body = client.get("/api/v1/messages").json()
    assert body["count"] == 6
    assert client.get("/api/v1/messages", {"subscriber": "1"}).json()["results"][0]["id"] == str(old.id)
    assert client.get("/api/v1/messages", {"state": "failed"}).json()["count"] == 2
    since = (now - dt.timedelta(days=1)).isoformat()
    assert client.get("/api/v1/messages", {"since": since}).json()["count"] == 5
    page = client.get("/api/v1/messages", {"subscriber": "2", "limit": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    seen = [r["id"] for r in page["results"]]
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [r["id"] for r in page["results"]]
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize("query", [{"state": "lost"}, {"since": "yesterday"}, {"limit": "0"},
                                   {"limit": "x"}, {"abonent": "1"}])
def test_list_refuses_bad_filters(client: Any, query: dict[str, str]) -> None:
    resp = client.get("/api/v1/messages", query)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["field"] == next(iter(query))


def test_detail_has_every_attempt(client: Any) -> None:
    m = make_message("7", "failed", dt.datetime.now(dt.UTC), attempts=3)
    body = client.get(f"/api/v1/messages/{m.id}").json()
    assert body["state"] == "failed" and body["reason"] == "failed reason"
    assert [a["number"] for a in body["history"]] == [1, 2, 3]
    assert client.get(f"/api/v1/messages/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/v1/messages/not-a-uuid").status_code == 404


def test_detail_checks_the_token_before_the_method(client: Any) -> None:
    """As the other API views: JSON 401 without a token, then JSON 405 for anything but GET."""
    from django.test import Client

    m = make_message("7", "sent", dt.datetime.now(dt.UTC))
    resp = Client().post(f"/api/v1/messages/{m.id}")
    assert resp.status_code == 401 and resp["WWW-Authenticate"] == "Token" and resp.json()["error"]
    for resp in (client.post(f"/api/v1/messages/{m.id}"), client.delete(f"/api/v1/messages/{m.id}")):
        assert resp.status_code == 405 and resp["Allow"] == "GET"
        assert resp.json() == {"error": "method not allowed"}


# -- health ------------------------------------------------------------------------------------
def test_healthz_and_readyz(db: str, embedded: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import Client

    c = Client()
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:secretpw@127.0.0.1:1//")
    with structlog.testing.capture_logs() as logs:
        down = c.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["database"] == "ok"
    assert b"secretpw" not in down.content
    (problem,) = [e for e in logs if e["event"].startswith("readiness: broker")]
    # no token here: only the exception's type is answered; the text goes to the log, redacted
    assert down.json()["checks"]["broker"] == f"unreachable: {problem['error_type']}"
    assert problem["error"] and "secretpw" not in repr(logs)


def test_readyz_on_rabbitmq(db: str, rabbit_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """RabbitMQ answering is ready, also before msgd's queues are declared (the first publish does it)."""
    from django.test import Client

    monkeypatch.setenv("MSGD_BROKER_URL", rabbit_url)
    monkeypatch.setenv("MSGD_NAMESPACE", namespace)
    ready = Client().get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "ok", ready.content


def test_openapi_document_is_valid_and_complete() -> None:
    import yaml
    from openapi_spec_validator import validate

    from msgd.web.urls import urlpatterns

    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    validate(spec)
    routes = {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(p.pattern)).replace("{message_id}", "{id}")
              for p in urlpatterns
              if str(p.pattern) and not str(p.pattern).startswith("admin/")}  # "": a redirect to the admin
    assert routes == set(spec["paths"])
