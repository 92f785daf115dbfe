"""Router and renderer stages in-process: what they publish for a given event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from msgd.broker.base import Delivery, Outgoing
from msgd.settings import Settings
from msgd.stage import Received, batch_handler
from tests import seed
from tests.support import Gateway, event


def item(payload: dict[str, Any]) -> Received:
    return Received(Delivery(body=json.dumps(payload).encode(), queue="msgd.router.bulk",
                             routing_key=str(payload.get("type")), headers={}), payload)


def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_DOMAIN": "billing.example"})


def bodies(out: list[Outgoing], prefix: str) -> list[dict[str, Any]]:
    return [json.loads(o.body) for o in out if o.route.startswith(prefix)]


def route(tmp_path: Path, *events: dict[str, Any]) -> list[Outgoing]:
    from services.router.stage import RouterStage

    return list(RouterStage(settings(tmp_path)).handle([item(e) for e in events]))


def render(tmp_path: Path, jobs: list[dict[str, Any]]) -> list[Outgoing]:
    from services.renderer.stage import RendererStage

    return list(RendererStage(settings(tmp_path)).handle([item(j) for j in jobs]))


def test_router_turns_an_event_into_render_jobs_in_its_lane(db: str, tmp_path: Path) -> None:
    seed.operator()
    sms = seed.template(channel="sms")
    reset = seed.template(event_type="password_reset", channel=None, body="Код: %(psw_token)s")
    out = route(tmp_path, event(1, email="a@b.c"),
                event(2, etype="password_reset", email="a@b.c", data={"psw_token": "123456"}))
    jobs = bodies(out, "render.")
    assert sorted((j["template_id"], j["channel"], j["lane"]) for j in jobs) == sorted([
        (sms.id, "sms", "bulk"), (reset.id, "sms", "tx"), (reset.id, "email", "tx")])
    assert {o.route for o in out if o.route.startswith("render.")} == {"render.bulk", "render.tx"}


def test_router_records_why_an_event_produced_nothing(db: str, tmp_path: Path) -> None:
    seed.operator()
    seed.template(channel="email")
    out = route(tmp_path, event(1), event(2, etype="payment_received"))
    reports = bodies(out, "status")
    assert sorted((r["state"], r["message"]["event_type"]) for r in reports) == [
        ("filtered", "payment_received"), ("no-contact", "low_balance")]
    assert all(r["reason"] for r in reports)


def test_router_parks_invalid_events_and_unknown_operators(db: str, tmp_path: Path) -> None:
    from services.router.stage import RouterStage

    seed.operator()
    bad = event(1)
    bad["abonent"]["contacts"]["sms"] = 79121234567
    handle = batch_handler(RouterStage(settings(tmp_path)))
    out = handle([item(bad).delivery, item(event(2, operator="ghost")).delivery])
    reasons = [o.headers["x-msgd-reason"] for o in out if o.exchange == "parking"]
    assert len(reasons) == 2
    assert "abonent.contacts.sms" in reasons[0]
    assert "operator 'ghost' is not configured" in reasons[1]


def job(tid: int, channel: str, e: dict[str, Any], lane: str = "bulk") -> dict[str, Any]:
    return {"v": 1, "kind": "render", "event": e, "template_id": tid, "channel": channel, "lane": lane}


def test_renderer_addresses_one_message_per_recipient(db: str, tmp_path: Path) -> None:
    op = seed.operator(default_subject="Сообщение от провайдера")
    t = seed.template(channel="email", subject="", body="Баланс %(balance).2f %(currecy)s")
    e = event(1, sms=None, email=None)
    e["abonent"]["contacts"]["email"] = ["one@example.net", "two@example.net"]
    out = render(tmp_path, [job(t.id, "email", e)])
    msgs = bodies(out, "send.email.bulk")
    assert sorted(m["recipient"] for m in msgs) == ["one@example.net", "two@example.net"]
    assert {m["body"] for m in msgs} == {"Баланс -12.50 руб."}
    assert {m["subject"] for m in msgs} == {"Сообщение от провайдера"}, "falls back to the operator's header"
    assert {m["sender"] for m in msgs} == {op.email}
    assert len({m["message_id"] for m in msgs}) == 2
    assert [r["state"] for r in bodies(out, "status")] == ["queued", "queued"]


def test_sender_address_rules(db: str, tmp_path: Path) -> None:
    seed.operator(code="noemail", email="")
    seed.operator(code="best", email="noc@best.example")
    t = seed.template(event_type="manual", channel="email", body="%(text)s")
    system = event(1, sms=None, email="a@b.c", operator="best", data={"text": "hi"})
    manual = event(2, sms=None, email="a@b.c", etype="manual", data={"text": "hi"},
                   manual={"template_id": t.id, "admin_email": "admin@best.example"})
    fallback = event(3, sms=None, email="a@b.c", operator="noemail", data={"text": "hi"})
    out = render(tmp_path, [job(t.id, "email", e) for e in (system, manual, fallback)])
    senders = {m["event_id"]: m["sender"] for m in bodies(out, "send.email")}
    assert senders[system["event_id"]] == "noc@best.example"
    assert senders[manual["event_id"]] == "admin@best.example"
    assert senders[fallback["event_id"]] == "root@billing.example"


def test_render_failure_is_recorded_with_the_variable_and_template(db: str, tmp_path: Path) -> None:
    seed.operator()
    t = seed.template(body="Договор %(contract_numbr)s", name="Низкий баланс")
    out = render(tmp_path, [job(t.id, "sms", event(1))])
    [report] = bodies(out, "status")
    assert report["state"] == "failed"
    assert "contract_numbr" in report["reason"] and "Низкий баланс" in report["reason"]
    assert bodies(out, "send.") == []


@pytest.mark.parametrize("second_event_same_day", [True, False])
def test_n_day_warning_is_keyed_per_subscriber_and_day(db: str, tmp_path: Path, second_event_same_day: bool) -> None:
    seed.operator(warn_days=3)
    t = seed.template(event_type="days_before_block")
    first = event(1, etype="days_before_block", data={"days_left": 3})
    second = event(1, etype="days_before_block", data={"days_left": 3})
    if not second_event_same_day:
        second["occurred_at"] = "2026-11-28T10:00:00+03:00"
    ids = [bodies(render(tmp_path, [job(t.id, "sms", e)]), "send.")[0]["message_id"] for e in (first, second)]
    assert (ids[0] == ids[1]) is second_event_same_day


def test_a_stage_survives_a_database_restart(db: str, tmp_path: Path) -> None:
    """The store drops the connection (restart, failover): the batch fails as an outage
    (kept, not parked) and the retry runs on a new connection."""
    from django.db import connection

    from services.router.stage import RouterStage

    if connection.vendor != "postgresql":
        pytest.skip("terminating a server connection needs PostgreSQL")
    import psycopg

    from tests.support import PG_DSN

    seed.operator()
    seed.template()
    stage = RouterStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_CONFIG_REFRESH_SECONDS": "0"}))
    handle = batch_handler(stage)
    assert bodies(list(handle([item(event(1)).delivery])), "render.")
    with psycopg.connect(PG_DSN + "/postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (connection.connection.info.backend_pid,))
    with pytest.raises(Exception) as outage:
        handle([item(event(2)).delivery])
    assert type(outage.value).__name__ in {"OperationalError", "InterfaceError"}
    assert bodies(list(handle([item(event(2)).delivery])), "render."), "the retry reconnected"


def test_event_with_only_the_required_fields(db: str, tmp_path: Path) -> None:
    """No name, no balance, no data: templates that need them fail with the missing
    variable named; templates that do not, are sent."""
    seed.operator()
    needs_name = seed.template(body="%(name)s, баланс %(balance).2f")
    plain = seed.template(channel="sms", body="Проверьте баланс в личном кабинете")
    minimal = {"event_id": "min-1", "type": "low_balance", "occurred_at": "2026-11-27T10:00:00+03:00",
               "operator": {"code": "best"}, "abonent": {"id": 7, "contacts": {"sms": "+79121234567"}}}
    jobs = bodies(route(tmp_path, minimal), "render.")
    assert sorted(j["template_id"] for j in jobs) == sorted([needs_name.id, plain.id])
    out = render(tmp_path, jobs)
    [failed] = [r for r in bodies(out, "status") if r["state"] == "failed"]
    assert "variable 'name' is not in the event" in failed["reason"]
    assert [m["body"] for m in bodies(out, "send.")] == ["Проверьте баланс в личном кабинете"]


def test_a_changed_template_is_used_without_a_restart(db: str, tmp_path: Path) -> None:
    from services.renderer.stage import RendererStage

    seed.operator()
    t = seed.template(body="Старый текст")
    stage = RendererStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_CONFIG_REFRESH_SECONDS": "0"}))
    first = bodies(list(stage.handle([item(job(t.id, "sms", event(1)))])), "send.")
    t.body = "Новый текст"
    t.save()
    second = bodies(list(stage.handle([item(job(t.id, "sms", event(2)))])), "send.")
    assert (first[0]["body"], second[0]["body"]) == ("Старый текст", "Новый текст")


NASTY_NAME = 'Иван <b>&"'


@pytest.mark.parametrize(("use_django", "greeting"), [
    (True, "<p>Здравствуйте, {{ abonent.name }}!</p>"),
    (False, "<p>Здравствуйте, %(name)s!</p>"),
])
def test_html_escaping_is_chosen_by_the_channel(db: str, tmp_path: Path, use_django: bool, greeting: str) -> None:
    """One HTML-looking template, one subscriber whose name holds ``<b>&"``: the e-mail gets
    an HTML body with the name escaped (and a plain-text alternative with it as typed); SMS
    and Telegram are plain text and get the name unescaped; a subject is never escaped."""
    seed.operator()
    subject = "Привет, {{ abonent.name }}" if use_django else "Привет, %(name)s"
    t = seed.template(channel=None, use_django=use_django, subject=subject, body=greeting)
    e = event(1, email="a@example.net")
    e["abonent"]["name"] = NASTY_NAME
    e["abonent"]["contacts"]["telegram_id"] = "555001"
    out = render(tmp_path, [job(t.id, channel, e) for channel in ("email", "sms", "telegram")])
    by_channel = {m["channel"]: m for m in bodies(out, "send.")}
    assert sorted(by_channel) == ["email", "sms", "telegram"]

    mail = by_channel["email"]
    assert mail["html"] == "<p>Здравствуйте, Иван &lt;b&gt;&amp;&quot;!</p>"
    assert mail["body"] == f"Здравствуйте, {NASTY_NAME}!", "the text alternative shows the name as typed"
    assert mail["subject"] == f"Привет, {NASTY_NAME}"
    for channel in ("sms", "telegram"):
        plain = by_channel[channel]
        assert plain["html"] is None, channel
        assert plain["body"] == f"<p>Здравствуйте, {NASTY_NAME}!</p>", channel
        assert "&lt;" not in plain["body"] and "&amp;" not in plain["body"] and "&quot;" not in plain["body"]


def deliver(tmp_path: Path, *events: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Each event through router, renderer, SMS sender and recorder in-process, one after
    the other (as billing publishes them); returns each event's status reports."""
    from services.recorder.stage import RecorderStage
    from services.senders.stage import SenderStage

    sender, recorder = SenderStage(settings(tmp_path), "sms"), RecorderStage()
    reports: list[list[dict[str, Any]]] = []
    try:
        for e in events:
            routed = route(tmp_path, e)
            rendered = render(tmp_path, bodies(routed, "render."))
            sent = list(sender.handle([item(m) for m in bodies(rendered, "send.")]))
            statuses = bodies([*routed, *rendered, *sent], "status")
            recorder.record(statuses)
            reports.append(statuses)
    finally:
        sender.close()
    return reports


def test_n_day_warning_goes_once_per_subscriber_per_local_day(db: str, tmp_path: Path, gateway: Gateway) -> None:
    """Billing publishes the days-left event for one subscriber again later the same day
    (another event id, another time): no second message.  The next day (the operator's
    local day, not UTC's) with "send every day" on: a new message.

    The operator is in Vladivostok (UTC+10): the first two events fall on different UTC
    dates but the same local date; the third shares the second's UTC date but is the
    next local day."""
    from msgd.store.models import Message

    op = seed.operator(warn_days=3, timezone="Asia/Vladivostok")
    seed.sms_gateway(op, gateway.url)
    seed.template(event_type="days_before_block", every_day=True, body="До блокировки %(days_left)s дн.")
    morning = event(1, etype="days_before_block", data={"days_left": 3},
                    occurred_at="2026-11-26T15:30:00+00:00")  # 27 Nov 01:30 in Vladivostok
    evening = event(1, etype="days_before_block", data={"days_left": 3},
                    occurred_at="2026-11-27T13:00:00+00:00")  # 27 Nov 23:00 in Vladivostok
    next_day = event(1, etype="days_before_block", data={"days_left": 2},
                     occurred_at="2026-11-27T14:30:00+00:00")  # 28 Nov 00:30 in Vladivostok
    assert len({e["event_id"] for e in (morning, evening, next_day)}) == 3

    first, again, later = deliver(tmp_path, morning, evening, next_day)
    assert gateway.received() == ["До блокировки 3 дн.", "До блокировки 2 дн."], "once per local day"
    assert [r["state"] for r in first] == ["queued", "sent"]
    (warning,) = {r["message_id"] for r in first}
    # the same-day repeat reaches the same message: its recorded outcome is reported again, nothing is sent
    assert [(r["message_id"], r["state"]) for r in again] == [(warning, "queued"), (warning, "sent")]
    assert [r["state"] for r in later] == ["queued", "sent"]
    assert {r["message_id"] for r in later} != {warning}
    log = list(Message.objects.order_by("created_at"))
    assert [(m.event_id, m.state, m.attempts, m.body) for m in log] == [
        (morning["event_id"], "sent", 1, "До блокировки 3 дн."),
        (next_day["event_id"], "sent", 1, "До блокировки 2 дн."),
    ]


def test_a_manual_send_of_a_template_of_another_event_type_is_sent(db: str, tmp_path: Path) -> None:
    """The manual's form (and msgd's admin and API) offers every template; the router looked for
    the chosen one among the "manual" templates only and filtered it as "does not exist or
    belongs to another operator"."""
    from msgd.store.models import Operator

    op = seed.operator()
    other = Operator.objects.create(code="other", name="Другой")
    chosen = seed.template(event_type="password_reset", channel="sms", body="Ваш договор %(contract_number)s")
    theirs = seed.template(event_type="password_reset", channel="sms", body="x", owner=other)
    manual = {"admin_email": "admin@best.example", "channel": None}
    sent = event(1, etype="manual", data={"text": "hi"}, manual={**manual, "template_id": chosen.id})
    refused = event(2, etype="manual", data={"text": "hi"}, manual={**manual, "template_id": theirs.id})
    out = route(tmp_path, sent, refused)
    assert [(j["template_id"], j["channel"], j["lane"]) for j in bodies(out, "render.")] == [(chosen.id, "sms", "tx")]
    [report] = bodies(out, "status")
    assert report["state"] == "filtered" and report["message"]["event_id"] == refused["event_id"]
    assert report["reason"] == f"template #{theirs.id} does not exist or belongs to another operator"
    [outbound] = bodies(render(tmp_path, bodies(out, "render.")), "send.")
    assert outbound["body"] == f"Ваш договор {sent['abonent']['contract_number']}" and op.code == "best"
