"""The router's reasons in the reader's language (a new operator's trial: a test message after the
test_message template was deleted showed "no template for event type 'test_message' for operator
best" in English on the admin's event page). Every reason ``decide`` writes is made here by the
router itself and must read in Russian in the admin (msgd/own_words.py), unchanged in English."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from msgd.own_words import shown_reason
from services.router.matching import RENDER, decide
from tests.test_routing import OP, SENDERS, ev, tpl

ND = "days_before_block"
CASES: list[tuple[str, dict[str, Any], Any, list[Any]]] = [
    ("no template for the operator", ev("test_message"), OP, []),
    ("no contact on a channel", ev(contacts={"email": "a@b.c"}), OP, [tpl(1, "sms")]),
    ("no contact at all", ev(contacts={}), OP, [tpl(1, None)]),
    ("disabled", ev(), OP, [tpl(1, enabled=False)]),
    ("status filter", ev(), OP, [tpl(1, status_filter=("blocked",))]),
    ("contract type", ev(), OP, [tpl(1, contract_type="legal")]),
    ("no warn days", ev(ND, data={"days_left": 3}), dataclasses.replace(OP, warn_days=None), [tpl(1, event_type=ND)]),
    ("no days_left", ev(ND), OP, [tpl(1, event_type=ND)]),
    ("other day", ev(ND, data={"days_left": 5}), OP, [tpl(1, event_type=ND)]),
    ("other day, every day", ev(ND, data={"days_left": 5}), OP, [tpl(1, event_type=ND, every_day=True)]),
    ("replaced", ev(), OP, [tpl(1, "sms"), tpl(2, "sms", owner=1)]),
    ("legacy channel", ev(), OP, [tpl(1, "winpop")]),
    ("manual template gone", ev("manual", manual={"template_id": 99, "channel": None, "all_templates": False,
                                                  "admin_email": "a@b.c"}), OP, []),
]


@pytest.mark.parametrize(("case", "event", "op", "templates"), CASES, ids=[c[0] for c in CASES])
def test_every_reason_the_router_writes_reads_in_russian(case: str, event: dict[str, Any], op: Any,
                                                          templates: list[Any]) -> None:
    from django.utils import translation

    reasons = [d.reason for d in decide(event, op, templates, SENDERS) if d.outcome != RENDER]
    assert reasons, case
    for reason in reasons:
        with translation.override("ru"):
            russian = shown_reason(reason)
        with translation.override("en"):
            assert shown_reason(reason) == reason
        assert russian != reason and any("а" <= ch <= "я" for ch in russian.lower()), (reason, russian)


@pytest.mark.parametrize("reason", ["template #5 was deleted before the message was rendered",
                                    "operator 'best' was deleted before the message was rendered"])
def test_the_renderers_reasons_read_in_russian(reason: str) -> None:
    """services/renderer/stage.py: the template or operator deleted while its message was queued."""
    from django.utils import translation

    with translation.override("ru"):
        assert "удалён до того, как сообщение было составлено" in shown_reason(reason)


@pytest.mark.parametrize(("contact", "russian"), [
    ("12", "неверный номер телефона '12': слишком короткий (постоянная ошибка)"),
    ("абв", "неверный номер телефона 'абв': это не номер телефона (постоянная ошибка)"),
    ("+7912123456789012345", "неверный номер телефона '+7912123456789012345': слишком длинный (постоянная ошибка)"),
    ("ivan@", "неверный адрес e-mail 'ivan@': после знака @ должно что-то быть (постоянная ошибка)"),
])
def test_a_bad_contacts_failure_reads_in_russian(contact: str, russian: str) -> None:
    """The log's reason for a test message to '12' or 'ivan@' was "invalid phone number '12': too
    short (permanent error)" in English beside the Russian explanation of its code."""
    from django.utils import translation

    from services.senders.base import InvalidRecipient
    from services.senders.email.address import parse_recipient
    from services.senders.sms.phone import InvalidPhone, normalize_phone

    with pytest.raises((InvalidRecipient, InvalidPhone)) as caught:
        parse_recipient(contact) if "@" in contact else normalize_phone(contact, "RU")
    said = caught.value.reason if isinstance(caught.value, InvalidRecipient) else str(caught.value)
    reason = f"{said} (permanent error)"  # as services/senders/stage.py words a final failure
    with translation.override("ru"):
        assert shown_reason(reason) == russian
    with translation.override("en"):
        assert shown_reason(reason) == reason


def test_the_event_page_shows_msgds_own_reasons_in_russian(db: str) -> None:
    """The page a test message or manual send leads to (admin/tools/events/...) showed the reason
    as stored: "no template for event type 'test_message' for operator best"."""
    from tests.test_staff_access import client_for, message, user

    message(event_id="test_message-1", state="filtered", reason_code="",
            reason="no template for event type 'test_message' for operator best")
    message(event_id="test_message-1", recipient="12", reason_code="recipient.invalid_contact",
            reason="invalid phone number '12': too short (permanent error)")
    from django.utils import translation

    with translation.override(None):  # the request's language does not stay active after it
        page = client_for(user("boss", superuser=True)).get("/admin/tools/events/test_message-1/",
                                                             HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "нет шаблона для типа события &#x27;test_message&#x27; у оператора связи best" in page
    assert "неверный номер телефона &#x27;12&#x27;: слишком короткий (постоянная ошибка)" in page
    assert "no template for event type" not in page and "too short" not in page


@pytest.mark.parametrize("words", ["a: " * 5000, "x: " * 9 + "line 1, column 2: " * 800 + "q", "'" * 16000,
                                   "; or " * 3000])
def test_a_gateways_words_of_any_shape_are_shown(words: str) -> None:
    """A failure's words are read through the problem words now: a gateway answer holding thousands
    of "a: " (each a key to read past) raised RecursionError there, which would have made the message
    log's page fail; the depth is bounded and each level is read once."""
    from django.utils import translation

    with translation.override("ru"):
        shown = shown_reason(f"{words} (permanent error)")
    assert shown.endswith("(постоянная ошибка)") and shown.startswith(words[:20])
