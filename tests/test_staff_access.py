"""Who may do what in the admin: every page against every role (Django's test client), operator
scope, login throttling and the admin-account commands (issue 13 point 3)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests

embedded = api_tests.embedded  # the fixture: an embedded broker in tmp_path
router_bodies = api_tests.queued
PASSWORD = "pw-for-tests-1"


def message(operator: str = "best", state: str = "failed", **fields: Any) -> Any:
    from msgd.store.models import Message

    now = dt.datetime.now(dt.UTC)
    values = {"id": uuid.uuid4(), "event_id": f"ev-{uuid.uuid4().hex[:8]}", "event_type": "low_balance",
              "operator_code": operator, "abonent_id": "1319", "channel": "sms", "recipient": "+79121234567",
              "body": f"Баланс для {operator}", "subject": "", "state": state, "reason": f"{state} for {operator}",
              "created_at": now, "updated_at": now, "lane": "bulk"}
    values.update(fields)
    return Message.objects.create(**values)


def user(name: str, role: str | None = None, *, operators: tuple[str, ...] = (), superuser: bool = False) -> Any:
    """A staff user in a role group (msgd/web/access.py), limited to ``operators`` if given."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from msgd.store.models import Operator
    from msgd.web.models import StaffProfile

    model = get_user_model()
    model.objects.filter(username=name).delete()
    u = model.objects.create_user(name, f"{name}@example.net", PASSWORD, is_staff=True, is_superuser=superuser)
    if role:
        u.groups.add(Group.objects.get(name=role))
    if operators:
        StaffProfile.objects.create(user=u).operators.set(Operator.objects.filter(code__in=operators))
    return u


def client_for(u: Any) -> Any:
    from django.test import Client

    c = Client()
    c.force_login(u)
    return c


@pytest.fixture
def world(db: str, embedded: Settings) -> dict[str, Any]:
    """Two operators, a template and a failed message of each, the log of both."""
    best, north = seed.operator("best"), seed.operator("north", name="Северный")
    return {
        "best": best, "north": north,
        "tpl_best": seed.template("test_message", "sms", body="Тест %(text)s", owner=best, name="best's"),
        "tpl_north": seed.template("test_message", "sms", body="Север %(text)s", owner=north, name="north's"),
        "tpl_all": seed.template("test_message", "sms", body="Все %(text)s", name="global"),
        "msg_best": message("best"), "msg_north": message("north"),
    }


def pages(w: dict[str, Any]) -> dict[str, str]:
    m = w["msg_best"]
    return {
        "test message": "/admin/tools/test-message/",
        "manual send": "/admin/tools/manual-send/",
        "parking": "/admin/tools/parking/",
        "preview": f"/admin/tools/templates/{w['tpl_best'].id}/preview/",
        "event status": f"/admin/tools/events/{m.event_id}/",
        "message log": "/admin/msgd/message/",
        "message": f"/admin/msgd/message/{m.id}/change/",
        "resend": f"/admin/tools/messages/{m.id}/resend/",
        "templates": "/admin/msgd/template/",
        "template": f"/admin/msgd/template/{w['tpl_best'].id}/change/",
        "new template": "/admin/msgd/template/add/",
        "operators": "/admin/msgd/operator/",
        "channel settings": "/admin/msgd/channelsettings/",
        "users": "/admin/auth/user/",
        "api tokens": "/admin/web/apitoken/",
    }


ALLOWED = {
    # role -> the pages it opens (every other page: 403)
    None: set(),
    "helpdesk": {"event status", "message log", "message"},
    "operator staff": {"test message", "manual send", "preview", "event status", "message log", "message", "resend",
                       "templates", "template", "new template", "operators"},
    "administrator": {"test message", "manual send", "parking", "preview", "event status", "message log", "message",
                      "resend", "templates", "template", "new template", "operators", "channel settings", "users",
                      "api tokens"},
}


@pytest.mark.parametrize("role", list(ALLOWED), ids=lambda r: r or "no permissions")
def test_every_page_checks_its_permission(world: dict[str, Any], role: str | None) -> None:
    c = client_for(user("someone", role))
    for name, path in pages(world).items():
        status = c.get(path).status_code
        assert status == (200 if name in ALLOWED[role] else 403), (role, name, status)


def test_a_staff_user_without_permissions_sends_nothing(world: dict[str, Any], embedded: Settings) -> None:
    """The issue's case: POSTs to test-message and manual-send sent a real SMS; replay worked."""
    c = client_for(user("nobody"))
    test = {"operator": "best", "channel": "sms", "recipient": "+79121234567", "text": "Проверка"}
    manual = {"operator": "best", "abonent_id": "1319", "sms": "+79121234567", "template": str(world["tpl_best"].id),
              "channel": "", "text": "x", "admin_email": "a@best.example"}
    assert c.post("/admin/tools/test-message/", test).status_code == 403
    assert c.post("/admin/tools/manual-send/", manual).status_code == 403
    assert c.post("/admin/tools/parking/", {"all": "Replay all"}).status_code == 403
    assert c.post(f"/admin/tools/messages/{world['msg_best'].id}/resend/", {"confirm": "yes"}).status_code == 403
    assert router_bodies(embedded) == []
    index = c.get("/admin/").content.decode()
    assert "msgd-actions" not in index and "/admin/tools/" not in index


def test_parking_bodies_and_replay_need_their_permissions(world: dict[str, Any], embedded: Settings) -> None:
    from django.contrib.auth.models import Permission

    from msgd import topology as topo
    from msgd.broker import Outgoing
    from msgd.broker.embedded import EmbeddedBroker

    b = EmbeddedBroker(embedded)
    source = topo.queue_for_route("msgd", topo.router_route("bulk"))
    b.publish([Outgoing(route="low_balance", body=b'{"abonent": {"name": "Secret Person"}}', exchange="parking",
                        headers={"x-msgd-reason": "schema: bad", "x-msgd-source-queue": source})])
    try:
        viewer = user("viewer")
        viewer.user_permissions.add(Permission.objects.get(codename="view_parking"))
        c = client_for(viewer)
        page = c.get("/admin/tools/parking/").content.decode()
        assert "schema: bad" in page and "Secret Person" in page and 'name="ids"' not in page
        assert c.post("/admin/tools/parking/", {"all": "Replay all"}).status_code == 403
        assert len(b.messages(topo.parking_queue("msgd"))) == 1
        # a user limited to one operator never sees parked bodies (they may be anyone's)
        scoped = user("scoped-viewer", "administrator", operators=("best",))
        assert client_for(scoped).get("/admin/tools/parking/").status_code == 403
    finally:
        b.close()


# -- operator scope --------------------------------------------------------------------------------
def test_a_user_scoped_to_one_operator_sees_and_sends_only_for_it(world: dict[str, Any], embedded: Settings) -> None:
    c = client_for(user("branch", "operator staff", operators=("best",)))
    log = c.get("/admin/msgd/message/").content.decode()
    assert "Баланс для best" not in log  # bodies are not in the list; reasons are
    assert "failed for best" in log and "failed for north" not in log
    assert c.get(f"/admin/msgd/message/{world['msg_north'].id}/change/").status_code in (302, 404)
    assert "failed for north" not in c.get(f"/admin/tools/events/{world['msg_north'].event_id}/").content.decode()
    assert c.get(f"/admin/tools/messages/{world['msg_north'].id}/resend/").status_code == 404
    # operators, templates: only theirs; global templates readable, not changeable
    assert "Северный" not in c.get("/admin/msgd/operator/").content.decode()
    assert c.get(f"/admin/msgd/operator/{world['north'].id}/change/").status_code in (302, 404)
    templates = c.get("/admin/msgd/template/").content.decode()
    assert "best&#x27;s" in templates and "global" in templates and "north&#x27;s" not in templates
    assert "Северный" not in templates  # not even in the owner filter
    assert c.get(f"/admin/tools/templates/{world['tpl_north'].id}/preview/").status_code == 404
    tall = c.get(f"/admin/msgd/template/{world['tpl_all'].id}/change/").content.decode()
    assert 'name="_save"' not in tall  # view only
    from tests.test_web_admin import template_form

    assert c.post(f"/admin/msgd/template/{world['tpl_all'].id}/change/", template_form(name="x")).status_code == 403
    refused = c.post("/admin/msgd/template/add/", template_form(owner=""))  # a new global template
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert c.post("/admin/msgd/template/add/", template_form(owner=str(world["north"].id))).status_code == 200
    assert c.post("/admin/msgd/template/add/", template_form(owner=str(world["best"].id))).status_code == 302
    # the tools offer only their operator, and refuse another one
    form = c.get("/admin/tools/test-message/").content.decode()
    assert 'value="best"' in form and 'value="north"' not in form
    resp = c.post("/admin/tools/test-message/", {"operator": "north", "channel": "sms", "recipient": "+79121234567",
                                                 "text": "x"})
    assert resp.status_code == 200 and router_bodies(embedded) == []
    manual = c.get("/admin/tools/manual-send/").content.decode()
    assert f'value="{world["tpl_north"].id}"' not in manual and f'value="{world["tpl_best"].id}"' in manual
    assert c.post("/admin/tools/test-message/", {"operator": "best", "channel": "sms", "recipient": "+79121234567",
                                                 "text": "x"}).status_code == 302
    (event,) = router_bodies(embedded)
    assert event["operator"]["code"] == "best"
    # accounts and tokens serve every operator: not for a scoped user
    assert c.get("/admin/auth/user/").status_code == 403


def test_groups_are_made_by_migrate_and_kept(db: str) -> None:
    from django.contrib.auth.models import Group

    from msgd.web.access import ROLES, sync_roles

    perms = {g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
             for g in Group.objects.filter(name__in=ROLES)}
    assert set(perms) == set(ROLES)
    assert perms["helpdesk"] == {"msgd.view_message", "msgd.view_attempt"}
    assert {"web.send_test_message", "web.manual_send", "web.resend_message"} <= perms["operator staff"]
    assert "web.view_parking" not in perms["operator staff"] and "web.view_parking" in perms["administrator"]
    assert not any(p.startswith("msgd.delete_message") for g in perms.values() for p in g)
    helpdesk = Group.objects.get(name="helpdesk")
    helpdesk.permissions.clear()
    assert "group 'helpdesk' updated: 2 permissions (+2)" in sync_roles()


# -- the message log is an audit trail --------------------------------------------------------------
def test_nothing_deletes_a_log_row_in_the_admin(world: dict[str, Any]) -> None:
    from msgd.store.models import Message

    c = client_for(user("root", superuser=True))
    m = world["msg_best"]
    assert c.get(f"/admin/msgd/message/{m.id}/delete/").status_code == 403
    page = c.get("/admin/msgd/message/").content.decode()
    assert "delete_selected" not in page
    c.post("/admin/msgd/message/", {"action": "delete_selected", "_selected_action": [str(m.id)], "post": "yes"})
    assert Message.objects.filter(pk=m.pk).exists()


# -- logins --------------------------------------------------------------------------------------
def login(c: Any, name: str, password: str) -> int:
    return c.post("/admin/login/?next=/admin/", {"username": name, "password": password}).status_code


def test_logins_are_throttled_and_unlocked_by_command(db: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from axes.utils import reset
    from django.test import Client

    from msgd.cli import main

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    user("clerk", "helpdesk")
    reset(username="clerk")
    c = Client()
    for _ in range(4):
        assert login(c, "clerk", "wrong") == 200  # the form again, with its error
    assert login(c, "clerk", "wrong") == 429  # the fifth failure locks the name out from this address
    assert login(c, "clerk", PASSWORD) == 429  # the right password does not help now
    assert login(Client(REMOTE_ADDR="10.9.9.9"), "clerk", PASSWORD) == 302  # the lockout is per address
    assert main(["admin", "unlock", "clerk"]) == 0
    assert "'clerk' unlocked" in capsys.readouterr().out
    assert login(c, "clerk", PASSWORD) == 302


def test_a_lost_password_is_set_by_command(db: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from django.contrib.auth import get_user_model
    from django.test import Client

    from msgd.cli import main

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    get_user_model().objects.all().delete()
    user("boss", superuser=True)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-new-password-42\n"))
    assert main(["admin", "password", "boss", "--stdin"]) == 0
    assert login(Client(), "boss", "a-new-password-42") == 302
    assert main(["admin", "password", "--generate"]) == 0  # the first superuser
    generated = capsys.readouterr().out.strip().splitlines()[-1]
    assert login(Client(), "boss", generated) == 302
    assert main(["admin", "password", "nobody", "--generate"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
