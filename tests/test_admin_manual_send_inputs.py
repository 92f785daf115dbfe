"""The manual send as a new Russian operator fills it in (a trial of the admin): its refusals were
English (and spoke of the API's ``all_templates: true``), and a subscriber's e-mail with a
Cyrillic local part (``иван@пример.рф``), which the e-mail sender sends to and the test message
form takes, was refused by Django's ASCII-only rule; so was such an admin's address, here, in the
API and in a resend's corrected contact. Every e-mail field is now judged by the sender's own
check."""

from __future__ import annotations

from typing import Any

import pytest

from msgd.settings import Settings
from tests import seed
from tests.test_admin_channel_form import errors
from tests.test_admin_form_words import ru_post
from tests.test_staff_access import message
from tests.test_web_admin import embedded, router_bodies, staff  # noqa: F401 - fixtures

URL = "/admin/tools/manual-send/"
BASE = {"operator": "best", "abonent_id": "1319", "abonent_name": "Иван", "sms": "+79121234567", "email": "",
        "telegram_id": "", "template": "", "channel": "", "text": "Плановые работы",
        "admin_email": "admin@best.example"}


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({}, "template", "выберите шаблон или отметьте «Отправить по всем подходящим шаблонам»"),
    ({"all_templates": "on", "text": ""}, "text", "нужен при отправке по всем подходящим шаблонам (их %(text)s)"),
    ({"template": "SHOWS", "text": ""}, "text", "нужен: выбранный шаблон его выводит (%(text)s)"),
    ({"template": "SHOWS", "all_templates": "on"}, "all_templates", "выберите либо шаблон, либо отправку"),
    ({"all_templates": "on", "email": "bad@"}, "email", "неверный адрес e-mail 'bad@': после знака @ должно что-то"),
    ({"all_templates": "on", "email": "a@b.example, плохой"}, "email", "неверный адрес e-mail"),
    ({"all_templates": "on", "admin_email": "admin"}, "admin_email",
     "неверный e-mail отправителя 'admin': в адресе e-mail должен быть знак @"),
])
def test_a_refused_manual_send_says_why_in_russian_and_sends_nothing(
        staff: Any, embedded: Settings, fields: dict[str, str], field: str, words: str) -> None:  # noqa: F811
    op = seed.operator()
    shows = seed.template("manual", "sms", body="%(text)s", owner=op, name="shows")
    form = BASE | {k: (str(shows.id) if v == "SHOWS" else v) for k, v in fields.items()}
    page = ru_post(staff, URL, form)
    assert page.status_code == 200
    shown = errors(page)
    assert any(words in e for e in shown.get(field, [])), shown
    assert router_bodies(embedded) == []


def test_international_addresses_are_sent_to_and_from(staff: Any, embedded: Settings) -> None:  # noqa: F811
    seed.operator()
    page = ru_post(staff, URL, BASE | {"all_templates": "on", "sms": "", "email": "иван@пример.рф",
                                       "admin_email": "Админ <админ@пример.рф>"})
    assert page.status_code == 302, errors(page)
    (event,) = router_bodies(embedded)
    assert event["abonent"]["contacts"] == {"email": "иван@пример.рф"}
    assert event["manual"]["admin_email"] == "Админ <админ@пример.рф>"


def test_the_api_takes_the_admin_address_the_sender_sends_from(db: str) -> None:
    from msgd.web.api import build_manual_event
    from msgd.web.api_http import Invalid

    seed.operator()
    body = {"operator": "best", "abonent": {"id": 1, "contacts": {"sms": "+79121234567"}}, "all_templates": True,
            "text": "x"}
    assert build_manual_event(body | {"admin_email": "админ@пример.рф"})["manual"]["admin_email"] == "админ@пример.рф"
    for bad in ("admin", "a@b..example", ""):
        with pytest.raises(Invalid) as caught:
            build_manual_event(body | {"admin_email": bad})
        assert [e["field"] for e in caught.value.errors] == ["admin_email"]


def test_a_resend_takes_a_corrected_international_address(db: str) -> None:
    from msgd.resend import ResendError, check_recipient

    m = message(channel="email", recipient="old@example.net")
    assert check_recipient(m, " иван@пример.рф ") == "иван@пример.рф"
    for bad in ("nope", "a@", "a@b c.example"):
        with pytest.raises(ResendError):
            check_recipient(m, bad)


@pytest.mark.parametrize("recipient", [
    "[]", '"str"', "{not json", '{"endpoint": "https://fcm.example/x"}',
    '{"endpoint": "https://fcm.example/x", "keys": {}}',
    '{"endpoint": "javascript:alert(1)", "keys": {"p256dh": "BXk", "auth": "a1"}}',
    '[{"endpoint": "https://fcm.example/x", "keys": {"p256dh": "BXk", "auth": "a1"}}, {}]',
])
def test_a_test_push_to_what_is_no_subscription_is_refused_in_russian(
        staff: Any, embedded: Settings, recipient: str) -> None:  # noqa: F811
    """The push sender's own judgement of a subscription (endpoint http(s), keys p256dh and auth):
    before, "[]" and a javascript: endpoint were published and "keys: required field is missing"
    was shown in English."""
    seed.operator()
    page = ru_post(staff, "/admin/tools/test-message/",
                   {"operator": "best", "channel": "push", "recipient": recipient, "text": "Проверка"})
    assert errors(page) == {"recipient": ["Для push вставьте подписку браузера: JSON с endpoint и keys."]}
    assert router_bodies(embedded) == []


def test_a_test_push_to_a_subscription_is_published(staff: Any, embedded: Settings) -> None:  # noqa: F811
    seed.operator()
    sub = '{"endpoint": "https://fcm.example/x", "keys": {"p256dh": "BXk", "auth": "a1"}}'
    page = ru_post(staff, "/admin/tools/test-message/",
                   {"operator": "best", "channel": "push", "recipient": sub, "text": "Проверка"})
    assert page.status_code == 302, errors(page)
    (event,) = router_bodies(embedded)
    assert event["abonent"]["contacts"]["push"][0]["endpoint"] == "https://fcm.example/x"


@pytest.mark.parametrize(("number", "words"), [
    ("абв", "неверный номер телефона 'абв': это не номер телефона"),
    ("12", "неверный номер телефона '12': слишком короткий"),
    ("+7912123456789012345", "слишком длинный"),
    ("+79121234567, 12345678", "неверный номер телефона '12345678'"),
])
def test_a_number_the_sms_sender_would_refuse_is_refused_at_the_field(
        staff: Any, embedded: Settings, number: str, words: str) -> None:  # noqa: F811
    """'абв' or '12' as a test message's or manual send's SMS number was published and failed in the
    log ("correct it in the test message form"); it is refused at the field now, in Russian."""
    seed.operator()
    page = ru_post(staff, "/admin/tools/test-message/",
                   {"operator": "best", "channel": "sms", "recipient": number, "text": "Проверка"})
    assert any(words in e for e in errors(page).get("recipient", [])), errors(page)
    page = ru_post(staff, URL, BASE | {"all_templates": "on", "sms": number})
    assert any(words in e for e in errors(page).get("sms", [])), errors(page)
    assert router_bodies(embedded) == []


@pytest.mark.parametrize("number", ["8-912-123-45-67", "+7 (912) 123-45-67", "89121234567", "9121234567",
                                    "+79121234567, +79131234567"])
def test_the_ways_operators_write_numbers_are_taken(staff: Any, embedded: Settings, number: str) -> None:  # noqa: F811
    seed.operator()
    page = ru_post(staff, "/admin/tools/test-message/",
                   {"operator": "best", "channel": "sms", "recipient": number, "text": "Проверка"})
    assert page.status_code == 302, errors(page)
    (event,) = router_bodies(embedded)
    assert event["abonent"]["contacts"]["sms"] == number  # as typed: the sender normalises it
