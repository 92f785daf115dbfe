"""Failure reasons keep a stable code beside the far side's own words (issue 13, point 1): every
failure the senders can meet has one, explained in Russian and English; the code is stored on
the message and its attempts, in the API and `msgd log --json`, and the admin explains it in
the reader's language with the gateway's words beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from msgd.envelope import FAILED, FAULTS, RETRYING, SENT
from msgd.reasons import DEFAULT_BY_FAULT, REASONS, explain
from services.senders.base import SendError
from services.senders.email.errors import after_data, classify
from services.senders.http_errors import network_error
from services.senders.sms.problems import PROBLEMS
from tests import seed
from tests.support import Gateway
from tests.test_failure_words import HTTP_CASES, SMTP_CASES, URL
from tests.test_sender_stage import outbound
from tests.test_sms_error_answers import deliver, preset_settings, recorded

CODE = re.compile(r"(gateway|recipient|content|transient|unknown)\.[a-z_]+")


def _explained_in_both(code: str) -> None:
    assert code in REASONS, f"{code!r} is not a known reason code"
    with translation.override("en"):
        en = explain(code)
    with translation.override("ru"):
        ru = explain(code)
    assert en and ru and en != ru, (code, en, ru)
    assert re.search(r"[А-Яа-яЁё]{4,}", ru), ru


def test_every_code_is_well_formed_and_explained_in_russian_and_english() -> None:
    assert len(REASONS) >= 30
    for code in REASONS:
        assert CODE.fullmatch(code), code
        _explained_in_both(code)
    assert set(DEFAULT_BY_FAULT) == set(FAULTS) and set(DEFAULT_BY_FAULT.values()) <= set(REASONS)


@pytest.mark.parametrize("service", ["SMS gateway", "Telegram Bot API", "push service"])
def test_every_http_failure_of_the_failure_words_has_an_explained_code(service: str) -> None:
    """The cases of tests/test_failure_words.py: every exception class requests, urllib3,
    http.client, ssl and socket raise, as requests wraps them."""
    seen = set()
    for _case, exc in HTTP_CASES:
        for proxy in ("", "socks5h://proxy.example:1080"):
            err = network_error(exc, service, URL, 15.0, proxy)
            _explained_in_both(err.code)
            seen.add(err.code)
    # a timeout, a refusal, DNS, TLS, a proxy, a setting and "it may have gone out" are told apart
    assert {"transient.timeout", "transient.connection_refused", "transient.dns", "gateway.tls", "transient.proxy",
            "gateway.bad_setting", "unknown.maybe_delivered"} <= seen, seen


def test_every_smtp_failure_of_the_failure_words_has_an_explained_code() -> None:
    seen = set()
    for _case, exc in SMTP_CASES:
        for err in (classify(exc, "smtp.example:465", "smtp.example", 15.0, "user@example.net"),
                    after_data(exc, "smtp.example:465", 15.0)):
            _explained_in_both(err.code)
            seen.add(err.code)
    assert {"gateway.credentials", "recipient.refused", "gateway.sender_name", "transient.unavailable",
            "transient.dns", "gateway.tls", "unknown.maybe_delivered"} <= seen, seen


def test_every_sms_problem_and_exception_class_has_an_explained_code() -> None:
    import services.senders.base as base

    for name, p in PROBLEMS.items():
        _explained_in_both(p.code)
        assert p.code.split(".")[0] in p.fault or (p.transient and p.code.startswith("transient.")) \
            or p.code.startswith(p.fault), (name, p)
    classes = [c for c in vars(base).values() if isinstance(c, type) and issubclass(c, SendError)]
    assert len(classes) >= 7
    for cls in classes:
        _explained_in_both(cls.code)


def test_a_failed_report_always_carries_a_code() -> None:
    from msgd.status import status

    def body(**kw: Any) -> dict[str, Any]:
        return dict(json.loads(status("0f8fad5b-d9cb-469f-a165-70867728950e", message={}, **kw).body))

    assert body(state=FAILED, fault="gateway", code="gateway.no_money")["code"] == "gateway.no_money"
    assert body(state=FAILED, fault="recipient")["code"] == "recipient.refused"  # by its fault class
    assert body(state=FAILED, fault="content", code="no.such_code")["code"] == "content.refused"
    assert body(state=FAILED)["code"] == "unknown.failure"
    assert body(state=RETRYING, code="transient.timeout")["code"] == "transient.timeout"
    assert "code" not in body(state=SENT, code="transient.timeout")


@pytest.mark.store
def test_the_code_is_stored_shown_in_the_api_the_log_and_the_admin_in_the_readers_language(
    db: str, gateway: Gateway, tmp_path: Path
) -> None:
    """smsc.ru's "ERROR = 3" (no money, https://smsc.ru/api/http/send/sms/sms_answer/) from a real
    local server: the message and its attempt get ``gateway.no_money``; the API explains it in
    the language asked for, `msgd log --json` carries the code, and the admin's message log and
    message page show the Russian explanation with smsc.ru's own words beside it."""
    from django.test import Client

    from msgd.cli_staff import log_json
    from msgd.store.models import Attempt
    from msgd.web.models import ApiToken
    from tests.test_staff_access import client_for, user

    gateway.default = (200, "ERROR = 3 (not enough money)")
    preset_settings(seed.operator(attempts=3), "smsc", gateway.url)
    row = recorded(deliver(tmp_path, outbound(1)))
    assert (row.state, row.fault, row.reason_code) == ("failed", "gateway", "gateway.no_money")
    assert "ERROR = 3" in row.reason  # the gateway's words stay
    assert Attempt.objects.get(message=row, state="failed").reason_code == "gateway.no_money"
    assert log_json(row)["reason_code"] == "gateway.no_money"

    _token, key = ApiToken.create("reader", scopes=("read",))
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    for lang, words in (("ru", "Недостаточно денег на счёте шлюза"), ("en", "Not enough money on the gateway")):
        got = api.get(f"/api/v1/messages/{row.id}", HTTP_ACCEPT_LANGUAGE=lang).json()
        assert got["reason_code"] == "gateway.no_money" and got["reason_explained"].startswith(words), got
        assert got["history"][-1]["reason_code"] == "gateway.no_money"

    staff = client_for(user("boss", superuser=True))
    listing = staff.get("/admin/msgd/message/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Недостаточно денег на счёте шлюза" in listing and "ERROR = 3" in listing
    page = staff.get(f"/admin/msgd/message/{row.id}/change/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Недостаточно денег на счёте шлюза" in page and "gateway.no_money" in page and "ERROR = 3" in page
    english = staff.get(f"/admin/msgd/message/{row.id}/change/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Not enough money on the gateway account" in english


@pytest.mark.store
def test_messages_that_failed_before_codes_get_their_fault_classs_code(db: str) -> None:
    import importlib

    from django.apps import apps

    from tests.test_staff_access import message

    migration = importlib.import_module("msgd.store.migrations.0008_reason_code")
    old = message(state="failed", fault="gateway")
    unknown = message(state="failed", fault="")
    sent = message(state="sent")
    migration.codes_for_old_failures(apps, None)
    for m, code in ((old, "gateway.refused"), (unknown, "unknown.failure"), (sent, "")):
        m.refresh_from_db()
        assert m.reason_code == code
