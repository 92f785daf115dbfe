"""The web admin through Django's test client (logged in as the first admin account)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import structlog

from msgd import topology as topo
from msgd.broker import Outgoing
from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests

embedded = api_tests.embedded  # the fixture: the broker is an embedded one in tmp_path
router_bodies = api_tests.queued  # the events published to the router's queues


@pytest.fixture
def staff(db: str, embedded: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from msgd.web.server import ensure_admin

    get_user_model().objects.all().delete()
    monkeypatch.setenv("MSGD_ADMIN_USER", "boss")
    monkeypatch.setenv("MSGD_ADMIN_PASSWORD", "pw-for-tests-1")
    assert ensure_admin() is None  # the password came from the environment: nothing printed
    c = Client()
    assert c.login(username="boss", password="pw-for-tests-1")
    return c


def test_login_is_required(db: str) -> None:
    from django.test import Client

    for path in ("/admin/", "/admin/msgd/message/", "/admin/tools/test-message/", "/admin/tools/parking/"):
        resp = Client().get(path)
        assert resp.status_code == 302 and "/admin/login/" in resp["Location"], path


def test_first_admin_gets_a_one_time_password(db: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from django.contrib.auth import authenticate, get_user_model

    from msgd.web.server import ensure_admin

    get_user_model().objects.all().delete()
    monkeypatch.delenv("MSGD_ADMIN_USER", raising=False)
    monkeypatch.delenv("MSGD_ADMIN_PASSWORD", raising=False)
    password = ensure_admin()
    assert password and password in capsys.readouterr().err
    assert authenticate(username="admin", password=password) is not None
    assert ensure_admin() is None  # only at first start


def test_index_and_lists_render(staff: Any) -> None:
    seed.operator()
    for path in ("/admin/", "/admin/msgd/operator/", "/admin/msgd/template/", "/admin/msgd/message/",
                 "/admin/msgd/channelsettings/", "/admin/web/apitoken/", "/admin/tools/manual-send/",
                 "/admin/tools/test-message/", "/admin/tools/parking/", "/admin/msgd/template/add/"):
        assert staff.get(path).status_code == 200, path


def template_form(**fields: Any) -> dict[str, Any]:
    """The template form as a browser posts it: the event type chosen from the list (event_type_0)
    or typed (event_type_0=__other__, event_type_1), statuses as ticked checkboxes."""
    data = {"owner": "", "name": "Баланс", "event_type_0": "low_balance", "event_type_1": "", "channel": "sms",
            "subject": "", "body": "Баланс %(balance).2f", "enabled": "on", "status_other": "", "contract_type": ""}
    data.update(fields)
    return data


def test_template_validation_and_owner_read_only(staff: Any) -> None:
    from msgd.store.models import Template

    op = seed.operator()
    resp = staff.post("/admin/msgd/template/add/", template_form(body="Баланс %(balance"))
    assert resp.status_code == 200 and Template.objects.count() == 0  # refused by Template.clean
    assert b"errorlist" in resp.content
    resp = staff.post("/admin/msgd/template/add/", template_form(owner=str(op.id)))
    assert resp.status_code == 302, resp.content.decode()[:2000]
    tpl = Template.objects.get()
    other = seed.operator("other")
    staff.post(f"/admin/msgd/template/{tpl.id}/change/", template_form(owner=str(other.id), name="new"))
    tpl.refresh_from_db()
    assert tpl.name == "new" and tpl.owner_id == op.id


def test_preview_renders_sample_event(staff: Any) -> None:
    seed.operator()
    tpl = seed.template("low_balance", "sms", body="Баланс %(balance).2f %(currecy)s", name="b")
    resp = staff.get(f"/admin/tools/templates/{tpl.id}/preview/")
    assert resp.status_code == 200
    assert "Баланс 12.50 руб." in resp.content.decode()
    bad = seed.template("low_balance", "sms", body="%(contract_numbr)s", name="bad")
    assert "contract_number" in staff.get(f"/admin/tools/templates/{bad.id}/preview/").content.decode()


def test_test_message_publishes_and_shows_status(staff: Any, embedded: Settings) -> None:
    seed.operator()
    resp = staff.post("/admin/tools/test-message/", {"operator": "best", "channel": "sms",
                                                     "recipient": "+79121234567", "text": "Проверка"})
    assert resp.status_code == 302
    (event,) = router_bodies(embedded)
    assert event["type"] == "test_message" and event["abonent"]["contacts"] == {"sms": "+79121234567"}
    page = staff.get(resp["Location"])
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content


def test_manual_send_needs_template_or_explicit_all(staff: Any, embedded: Settings) -> None:
    seed.operator()
    base = {"operator": "best", "abonent_id": "1319", "sms": "+79121234567", "template": "", "channel": "",
            "text": "Работы", "admin_email": "admin@best.example"}
    resp = staff.post("/admin/tools/manual-send/", base)
    assert resp.status_code == 200 and router_bodies(embedded) == []
    assert "all_templates" in resp.content.decode() or "template" in resp.content.decode()
    assert "choose a template, or set all_templates: true to send every matching template" in resp.content.decode()
    assert router_bodies(embedded) == []  # nothing was published
    resp = staff.post("/admin/tools/manual-send/", {**base, "all_templates": "on"})
    assert resp.status_code == 302
    (event,) = router_bodies(embedded)
    assert event["manual"] == {"template_id": None, "channel": None, "admin_email": "admin@best.example",
                               "all_templates": True}


def test_manual_send_text_is_needed_only_where_it_is_shown(staff: Any, embedded: Settings) -> None:
    """As the API: every matching template (their %(text)s) or a template showing it need the text;
    a chosen template with text of its own is sent without it."""
    op = seed.operator()
    own = seed.template("manual", "sms", body="Плановые работы 1 мая", owner=op, name="own")
    shows = seed.template("manual", "sms", body="%(text)s", owner=op, name="shows")
    base = {"operator": "best", "abonent_id": "1319", "sms": "+79121234567", "channel": "", "text": "",
            "admin_email": "admin@best.example"}
    for form in ({**base, "template": "", "all_templates": "on"}, {**base, "template": str(shows.id)}):
        resp = staff.post("/admin/tools/manual-send/", form)
        assert resp.status_code == 200, form
        assert re.search(r'<ul class="errorlist"[^>]*><li>required[^<]*%\(text\)s', resp.content.decode()), form
        assert router_bodies(embedded) == []
    resp = staff.post("/admin/tools/manual-send/", {**base, "template": str(own.id)})
    assert resp.status_code == 302
    (event,) = router_bodies(embedded)
    assert event["manual"]["template_id"] == own.id and "text" not in event.get("data", {})


def test_broker_refusal_is_shown_and_logged(staff: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed.operator()
    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:secretpw@127.0.0.1:1//")
    with structlog.testing.capture_logs() as logs:
        resp = staff.post("/admin/tools/test-message/", {"operator": "best", "channel": "sms",
                                                         "recipient": "+79121234567", "text": "Проверка"},
                          follow=True)
    page = resp.content.decode()
    assert resp.status_code == 200 and "the broker did not accept the event: " in page.lower()
    assert "secretpw" not in page
    (failure,) = [e for e in logs if e["event"].startswith("publish failed")]
    assert failure["log_level"] == "error" and failure["error_type"] and failure["event_ids"][0].startswith(
        "test_message-")
    assert "secretpw" not in repr(logs)


def test_message_log_search_and_attempts(staff: Any) -> None:
    import datetime as dt

    from tests.test_web_api import make_message

    m = make_message("4242", "failed", dt.datetime.now(dt.UTC), attempts=2)
    make_message("1", "sent", dt.datetime.now(dt.UTC))
    page = staff.get("/admin/msgd/message/", {"q": "4242"}).content.decode()
    assert str(m.id) in page and "failed reason" in page
    assert staff.get("/admin/msgd/message/", {"state__exact": "sent"}).content.decode().count('title="sent reason"') == 1
    detail = staff.get(f"/admin/msgd/message/{m.id}/change/").content.decode()
    assert "try 1" in detail and "try 2" in detail


def test_parking_replay(staff: Any, embedded: Settings) -> None:
    from msgd.broker.embedded import EmbeddedBroker
    from msgd.parking import Parked

    b = EmbeddedBroker(embedded)
    source = topo.queue_for_route("msgd", topo.router_route("bulk"))  # an event goes back via the exchange
    b.publish([Outgoing(route="low_balance", body=b'{"gen_pwd": "Xq7mPa2k", "x": 1}', exchange="parking",
                        headers={"x-msgd-reason": "schema: bad", "x-msgd-source-queue": source}),
               Outgoing(route="x", body=b"?", exchange="parking", headers={"x-msgd-reason": "lost"})])
    page = staff.get("/admin/tools/parking/").content.decode()
    assert "schema: bad" in page and "Xq7mPa2k" not in page
    parked, unknown = b.messages(topo.parking_queue("msgd"))
    key = Parked(parked).key  # the list names a message by its key, on both brokers
    assert f'value="{key}"' in page
    assert staff.post("/admin/tools/parking/", {"ids": [key]}).status_code == 302
    assert [d.tag for d in b.messages(topo.parking_queue("msgd"))] == [unknown.tag]  # no source: kept
    (back,) = b.messages(source)
    assert back.body == parked.body and "x-msgd-reason" not in back.headers
    b.close()


def test_parking_replay_all_and_a_stale_selection(staff: Any, embedded: Settings) -> None:
    from msgd.broker.embedded import EmbeddedBroker

    b = EmbeddedBroker(embedded)
    source = topo.queue_for_route("msgd", topo.router_route("bulk"))
    b.publish([Outgoing(route="low_balance", body=b'{"x": 1}', exchange="parking",
                        headers={"x-msgd-reason": "r", "x-msgd-source-queue": source}),
               Outgoing(route="x", body=b"?", exchange="parking", headers={"x-msgd-reason": "lost"})])
    try:
        resp = staff.post("/admin/tools/parking/", {"ids": ["no-such-key"]}, follow=True)
        assert "0 messages sent back to their queues; 1 kept" in resp.content.decode()
        assert len(b.messages(topo.parking_queue("msgd"))) == 2
        resp = staff.post("/admin/tools/parking/", {"all": "Replay all"}, follow=True)
        assert "1 message sent back to its queue; 1 kept" in resp.content.decode()
        assert [d.headers["x-msgd-reason"] for d in b.messages(topo.parking_queue("msgd"))] == ["lost"]
        assert len(b.messages(source)) == 1
    finally:
        b.close()


def test_parking_on_rabbitmq_lists_without_taking_and_replays_all(
        staff: Any, rabbit_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from msgd.broker import make_broker
    from services.senders.registry import live_channels

    monkeypatch.setenv("MSGD_BROKER_URL", rabbit_url)
    monkeypatch.setenv("MSGD_NAMESPACE", namespace)
    settings = Settings.from_env()
    broker = make_broker(settings)
    try:
        broker.setup(live_channels())
        bulk = topo.queue_for_route(namespace, topo.router_route("bulk"))
        broker.publish([Outgoing(route="low_balance", body=b'{"x": 1}', exchange="parking",
                                 headers={"x-msgd-reason": "operator 'zz' is not configured",
                                          "x-msgd-source-queue": bulk})])
        parking_q = topo.parking_queue(namespace)
        from tests.support import wait_for

        wait_for(lambda: broker.queue_depths([parking_q])[parking_q] == 1, what="the parked message")
        for _ in range(2):  # listing does not consume
            assert "operator &#x27;zz&#x27; is not configured" in staff.get("/admin/tools/parking/").content.decode()
        assert staff.post("/admin/tools/parking/", {"all": "Replay all"}).status_code == 302
        wait_for(lambda: broker.queue_depths([bulk])[bulk] == 1, what="the message back in the router queue")
        assert broker.queue_depths([parking_q])[parking_q] == 0
    finally:
        broker.close()
