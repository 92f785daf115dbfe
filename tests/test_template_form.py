"""The template form for a person (choices, checkboxes, no JSON, the variables of the event type),
the preview of an unsaved draft, and the small things of issue 13 points 6, 7, 8 (Django's
test client; the browser parts are in tests/test_web_live.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests
from tests.test_staff_access import client_for, user
from tests.test_web_admin import template_form

embedded = api_tests.embedded


@pytest.fixture
def boss(db: str, embedded: Settings) -> Any:
    seed.operator("best")
    return client_for(user("boss", superuser=True))


def test_the_form_has_choices_and_no_json(boss: Any) -> None:
    page = boss.get("/admin/msgd/template/add/").content.decode()
    assert '<select name="event_type_0"' in page and 'value="days_before_block"' in page and "__other__" in page
    assert '<select name="channel"' in page and "--- every channel" in page and 'value="push"' in page
    assert page.count('name="status_filter"') == 4 and 'type="checkbox" name="status_filter" value="blocked"' in page
    assert '<select name="contract_type"' in page and "Legal entity" in page
    assert "<textarea" not in page.replace('<textarea name="subject"', "").replace('<textarea name="body"', "")
    assert ">[]</textarea>" not in page and ">{}</textarea>" not in page  # no JSON to type anywhere


def test_choices_save_as_the_router_reads_them(boss: Any) -> None:
    from msgd.store.models import Template

    resp = boss.post("/admin/msgd/template/add/", template_form(
        name="custom", event_type_0="__other__", event_type_1="tariff_changed", channel="",
        status_filter=["active", "blocked"], status_other="2, vip", contract_type="legal"))
    assert resp.status_code == 302, resp.content.decode()[-3000:]
    t = Template.objects.get(name="custom")
    assert (t.event_type, t.channel, t.status_filter, t.contract_type) == (
        "tariff_changed", None, ["active", "blocked", "2", "vip"], "legal")
    page = boss.get(f"/admin/msgd/template/{t.id}/change/").content.decode()
    assert 'value="tariff_changed"' in page and 'value="2, vip"' in page
    assert 'value="blocked" id="id_status_filter_1" checked' in page
    bad = boss.post("/admin/msgd/template/add/", template_form(name="bad", event_type_0="__other__", event_type_1="Тип"))
    assert bad.status_code == 200 and "An event type is lower-case Latin letters" in bad.content.decode()


def test_the_variables_of_the_chosen_type_with_the_manuals_words() -> None:
    from django.utils import translation

    from msgd.web.admin_templates import variables_panel

    with translation.override("ru"):
        ru = str(variables_panel("password_reset"))
    with translation.override("en"):
        en = str(variables_panel("password_reset"))
    assert "проверочный код для сброса пароля личного кабинета" in ru and "номер договора" in ru
    assert "Verification code for resetting" in en
    assert 'data-standard="%(psw_token)s"' in en and 'data-django="{{ abonent.contract_number }}"' in en
    assert '<table class="msgd-vars" data-event-type="password_reset"><tbody>' in en  # shown
    assert '<table class="msgd-vars" data-event-type="manual" hidden>' in en  # the script shows it when chosen


def test_the_variables_document_is_generated_from_the_same_list() -> None:
    from msgd.vocabulary import DOC, markdown

    assert DOC.read_text(encoding="utf-8") == markdown(), "run: python -m msgd.vocabulary"


def test_every_listed_variable_is_one_the_renderer_fills() -> None:
    from msgd import vocabulary
    from services.renderer.context import build_context
    from services.renderer.preview import sample_event

    for event_type in vocabulary.known_event_types():
        ctx = build_context(sample_event(event_type)[1])
        missing = [v.name for v in vocabulary.variables_for(event_type) if v.name not in ctx and not v.sometimes]
        assert missing == [], event_type


def test_draft_preview_renders_the_unsaved_text(boss: Any) -> None:
    from msgd.store.models import Template

    draft = template_form(name="draft", event_type_0="password_reset", body="Код %(psw_token)s для %(contract_numbr)s",
                          preview_operator="best", preview_channel="")
    page = boss.post("/admin/tools/templates/preview/", draft).content.decode()
    assert "unsaved draft" not in page  # a standard template with a missing variable cannot render:
    assert "contract_numbr" in page and "preview-missing" in page and "did you mean &#x27;contract_number&#x27;" in page
    ok = boss.post("/admin/tools/templates/preview/", {**draft, "body": "Код %(psw_token)s"}).content.decode()
    assert '<pre id="preview-body" style="white-space: pre-wrap">Код 482915</pre>' in ok and "unsaved draft" in ok
    assert not Template.objects.filter(name="draft").exists()
    assert boss.get("/admin/tools/templates/preview/").status_code == 405


def test_save_disabled_preview_then_enable(boss: Any) -> None:
    from msgd.store.models import Template

    resp = boss.post("/admin/msgd/template/add/", template_form(name="new text", enabled=""))
    assert resp.status_code == 302
    t = Template.objects.get(name="new text")
    assert not t.enabled
    assert "Баланс 12.50" in boss.get(f"/admin/tools/templates/{t.id}/preview/").content.decode()
    boss.post("/admin/msgd/template/", {"action": "enable", "_selected_action": [str(t.id)]})
    t.refresh_from_db()
    assert t.enabled


def test_test_message_offers_every_channel_push_included(boss: Any, embedded: Settings) -> None:
    from services.senders.registry import live_channels

    page = boss.get("/admin/tools/test-message/").content.decode()
    for channel in live_channels():
        assert f'<option value="{channel}"' in page, channel
    sub = {"endpoint": "https://push.example.net/x", "keys": {"p256dh": "k", "auth": "a"}}
    resp = boss.post("/admin/tools/test-message/", {"operator": "best", "channel": "push", "recipient": json.dumps(sub),
                                                    "text": "Проверка"})
    assert resp.status_code == 302
    (event,) = api_tests.queued(embedded)
    assert event["abonent"]["contacts"] == {"push": [sub]}
    bad = boss.post("/admin/tools/test-message/", {"operator": "best", "channel": "push", "recipient": "not json",
                                                   "text": "x"})
    assert "paste the browser&#x27;s subscription" in bad.content.decode()


def test_no_view_site_link_and_the_root_leads_to_the_admin(boss: Any) -> None:
    assert "View site" not in boss.get("/admin/").content.decode()
    resp = boss.get("/")
    assert (resp.status_code, resp["Location"]) == (302, "/admin/")


def test_admin_shows_times_in_the_configured_zone(boss: Any) -> None:
    import datetime as dt

    from django.test import override_settings

    from tests.test_staff_access import message

    when = dt.datetime(2026, 11, 27, 10, 51, 42, tzinfo=dt.UTC)
    m = message(created_at=when, updated_at=when)
    with override_settings(TIME_ZONE="Europe/Moscow"):
        listing = boss.get("/admin/msgd/message/").content.decode()
        detail = boss.get(f"/admin/msgd/message/{m.id}/change/").content.decode()
    assert "2026-11-27 13:51 MSK" in listing and "10:51" not in listing
    assert "2026-11-27 13:51:42 MSK" in detail


def test_a_template_config_load_could_not_tell_apart_is_refused(boss: Any) -> None:
    """A new operator's trial saved two templates "Проба" for low_balance/sms: msgd config dump then
    could not be loaded back ("same owner, event, channel and name"). The admin refuses the second
    at its name, in Russian; another channel, owner or name, or the same template saved again, is
    fine, and what the admin holds dumps and loads back."""
    from msgd.config import load_config
    from msgd.config.dump import dump_config
    from msgd.store.models import Operator, Template
    from tests.test_admin_channel_form import errors
    from tests.test_admin_form_words import ru_post
    from tests.test_web_admin import template_form

    client = boss
    op = Operator.objects.get(code="best")
    add = "/admin/msgd/template/add/"
    assert ru_post(client, add, template_form(name="Проба")).status_code == 302
    page = ru_post(client, add, template_form(name=" Проба "))
    assert errors(page)["name"][0].startswith("У другого шаблона того же оператора связи, типа события")
    assert ru_post(client, add, template_form(name="", channel="email")).status_code == 302
    page = ru_post(client, add, template_form(name="low_balance/email", channel="email"))  # the blank one's key
    assert "name" in errors(page)
    for ok in (template_form(name="Проба", channel="email"), template_form(name="Проба", owner=str(op.id)),
               template_form(name="Проба 2")):
        assert ru_post(client, add, ok).status_code == 302, errors(ru_post(client, add, ok))
    first = Template.objects.filter(name="Проба", owner=None, channel="sms").get()
    page = ru_post(client, f"/admin/msgd/template/{first.id}/change/", template_form(name="Проба", body="Новый"))
    assert page.status_code == 302, errors(page)
    load_config(dump_config())
