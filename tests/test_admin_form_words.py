"""The admin's forms in the reader's language and all at once: a channel form names every problem
of one save (a bad rate_limit and the login and password its preset needs), the problems of a
channel or template form are shown in Russian to a Russian browser (msgd/problem_words.py),
while ``msgd config load`` keeps its English words."""

from __future__ import annotations

from typing import Any

import pytest

from services.senders.model import SettingsInvalid
from services.senders.sms.settings import SmsSettings
from tests import seed
from tests.test_admin_channel_form import ADD, embedded, errors, form, staff  # noqa: F401 - fixtures


def test_one_save_names_every_problem(staff: Any) -> None:  # noqa: F811
    op = seed.operator()
    page = staff.post(f"{ADD}?channel=sms", form(op, preset="smsc", rate_limit="быстро"))
    assert errors(page) == {
        "setting_rate_limit": ["rate_limit: must be a number, got 'быстро'"],
        "setting_login": ["login: is required by preset smsc (%login% in params: login)"],
        "setting_password": ["password: is required by preset smsc (%password% in params: password)"],
    }


def test_a_refused_preset_decides_nothing_else() -> None:
    """An unknown preset is the one problem: what it would require is not guessed."""
    with pytest.raises(SettingsInvalid) as caught:
        SmsSettings.parse({"preset": "nosuch", "rate_limit": "x"})
    assert [p.loc for p in caught.value.problems] == [("preset",), ("rate_limit",)]
