"""The message page of the Russian admin (msgd/web/admin_log.py): a readable title with the state
in Russian, history rows without Django's "Attempt object (6)", the event id and the event type
under distinct labels, and msgd's own sentences in a reason in Russian (msgd/own_words.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests
from tests.test_staff_access import client_for, message, user

embedded = api_tests.embedded


def page(client: Any, pk: Any) -> str:
    from django.urls import reverse
    from django.utils import translation

    with translation.override(None):  # the request's language does not stay active after it
        resp = client.get(reverse("admin:msgd_message_change", args=[pk]), HTTP_ACCEPT_LANGUAGE="ru")
    assert resp.status_code == 200
    return resp.content.decode()


def test_the_message_page_speaks_russian(db: str, embedded: Settings) -> None:
    from msgd.resend import resend
    from msgd.store.models import Attempt

    seed.operator("best")
    orig = message(event_type="test_message", channel="email", recipient="petrov@mail..ru",
                   reason="operator best has no email settings: configure the channel, then resend")
    Attempt.objects.create(message=orig, number=1, state="failed", reason=orig.reason, at=dt.datetime.now(dt.UTC))
    _plan, (new_id,) = resend(embedded, [orig], by="admin", recipient="petrov@mail.ru")
    client = client_for(user("boss", superuser=True))

    text = page(client, orig.pk)
    assert "test_message · email → petrov@mail..ru (ошибка отправки)" in text
    assert ": failed" not in text and "Attempt object" not in text
    assert "ID события:" in text and "Тип события:" in text and "Событие:" not in text
    assert ("у оператора best нет настроек отправки email: настройте способ отправки, затем отправьте"
            " сообщение повторно") in text
    assert "then resend" not in text
    # its contact was typed by staff: the form, not billing, is where it is corrected
    bad = message(event_type="test_message", channel="email", recipient="petrov@mail..ru",
                  reason_code="recipient.invalid_contact", reason="invalid e-mail address")
    text = page(client, bad.pk)
    assert "исправьте его в форме тестового сообщения" in text and "в биллинге." not in text
    billed = message(channel="email", recipient="petrov@mail..ru", reason_code="recipient.invalid_contact")
    assert "исправьте его в биллинге" in page(client, billed.pk)
    resent = page(client, new_id)
    assert (f"отправлено повторно (admin): повтор 1 сообщения {orig.pk}, на исправленный контакт"
            " (был petrov@mail..ru)") in resent
    assert "sent again by" not in resent


def test_what_msgd_did_not_write_stays_as_it_came() -> None:
    from django.utils import translation

    from msgd.own_words import shown_reason

    held = "quiet hours: held until 2026-11-30 08:00:00 Asia/Yekaterinburg"
    with translation.override("ru"):
        assert shown_reason("SMTP 535: bad login") == "SMTP 535: bad login"
        assert shown_reason(held) == "тихий час: отложено до 2026-11-30 08:00:00 Asia/Yekaterinburg"
        assert shown_reason("written to /var/lib/msgd/outbox/1.txt") == "записано в файл /var/lib/msgd/outbox/1.txt"
    with translation.override("en"):
        assert shown_reason(held) == held
