"""A contact field holding several addresses or numbers (issue 11, point 3): each is a recipient.

Billing data writes ``kuz@mail.ru, buh@romashka.ru`` or ``8(912)1234567; 8(913)7654321`` in
one field; a number with spaces and parentheses is still one number, and a display form or a
malformed address is never cut into pieces that look deliverable.
"""

from __future__ import annotations

import pytest

from services.senders.email.sender import EmailSender
from services.senders.sms.sender import SmsSender
from services.senders.telegram.sender import TelegramSender


@pytest.mark.parametrize(("contact", "expected"), [
    ("kuz@mail.ru, buh@romashka.ru", ["kuz@mail.ru", "buh@romashka.ru"]),
    ("kuz@mail.ru;buh@romashka.ru", ["kuz@mail.ru", "buh@romashka.ru"]),
    ("kuz@mail.ru\nbuh@romashka.ru\r\n", ["kuz@mail.ru", "buh@romashka.ru"]),
    ("kuz@mail.ru buh@romashka.ru", ["kuz@mail.ru", "buh@romashka.ru"]),  # each piece a whole address
    ("kuz@mail.ru,, ;buh@romashka.ru;", ["kuz@mail.ru", "buh@romashka.ru"]),
    ("Иван <ivan@x.ru>, buh@romashka.ru", ["Иван <ivan@x.ru>", "buh@romashka.ru"]),
    ('"Петров, Иван" <p@x.ru>; buh@romashka.ru', ['"Петров, Иван" <p@x.ru>', "buh@romashka.ru"]),
    ("Kuz@Mail.ru, kuz@mail.ru, Кузнецова <KUZ@MAIL.RU>", ["Kuz@Mail.ru"]),  # one mailbox, first spelling
    ("sidorov@yand ex.ru", ["sidorov@yand ex.ru"]),  # one malformed address, never "sidorov@yand"
    ("Иван Петров ivan@x.ru", ["Иван Петров ivan@x.ru"]),
    ("  ", []),
])
def test_email_contacts(contact: str, expected: list[str]) -> None:
    assert EmailSender.recipients({"email": contact}) == expected


def test_email_contact_lists_and_strings_mix() -> None:
    contacts = {"email": ["kuz@mail.ru, buh@romashka.ru", "buh@romashka.ru", "", None, "dir@romashka.ru"]}
    assert EmailSender.recipients(contacts) == ["kuz@mail.ru", "buh@romashka.ru", "dir@romashka.ru"]


@pytest.mark.parametrize(("contact", "expected"), [
    ("8(912)1234567; 8(913)7654321", ["8(912)1234567", "8(913)7654321"]),
    ("+79121234567, +79137654321", ["+79121234567", "+79137654321"]),
    ("89121234567 89137654321", ["89121234567", "89137654321"]),
    ("8 (912) 123-45-67", ["8 (912) 123-45-67"]),  # one number written with spaces
    ("+7 912 123 45 67\n8 913 765 43 21", ["+7 912 123 45 67", "8 913 765 43 21"]),
    ("8 (912) 123-45-67, +7 912 123 45 67, 89121234567", ["8 (912) 123-45-67"]),  # one number, thrice
    ("8(912)1234567;", ["8(912)1234567"]),
])
def test_sms_contacts(contact: str, expected: list[str]) -> None:
    assert SmsSender.recipients({"sms": contact}) == expected


def test_telegram_contacts() -> None:
    assert TelegramSender.recipients({"telegram_id": "123456, -100200; 123456"}) == ["123456", "-100200"]
    assert TelegramSender.recipients({"telegram_id": [123456, "789 101112"]}) == ["123456", "789", "101112"]


def test_the_event_schema_leaves_contacts_to_the_channels() -> None:
    """A contact string holding several recipients, or a malformed address, is not a reason to
    park the whole event: the other channels still send, and the bad address fails its own
    message ("invalid e-mail address")."""
    from msgd.schemas import validate_event
    from tests.support import event

    for email in ("kuz@mail.ru, buh@romashka.ru", "petrov", "sidorov@yand ex.ru", ["a@b@c.ru", "x@y.ru"]):
        for sms in ("8 (912) 123-45-67, 8 (913) 765-43-21; 8 (914) 111-22-33", ["8 (912) 123-45-67, 8 (913) 765-43-21"]):
            assert validate_event(event(1, sms=sms, email=email)) == [], (sms, email)
