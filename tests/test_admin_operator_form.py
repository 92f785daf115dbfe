"""The admin's operator form saves only what ``msgd config load`` would load, and says why in the
reader's language at the field (a new operator's trial): an operator saved with the time zone
"Moscow" had stopped every stage (each event of every operator parked with ZoneInfoNotFoundError);
a code with a space, quiet hours with one end or 25:00, 0 or 1000 attempts, a sender address
without "@" were saved, or refused in English."""

from __future__ import annotations

from typing import Any

import pytest

from tests import seed
from tests.test_admin_channel_form import embedded, errors, staff  # noqa: F401 - fixtures
from tests.test_admin_form_words import ru_post

ADD = "/admin/msgd/operator/add/"


def operator_form(**fields: str) -> dict[str, str]:
    """The operator form as a browser posts it (no channel slots)."""
    data = {"code": "north", "name": "Северный", "email": "noc@north.example", "timezone": "Europe/Moscow",
            "quiet_start": "", "quiet_end": "", "attempts": "3", "default_subject": "", "warn_days": "",
            "channels-TOTAL_FORMS": "0", "channels-INITIAL_FORMS": "0", "channels-MIN_NUM_FORMS": "0",
            "channels-MAX_NUM_FORMS": "0"}
    return data | fields


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"timezone": "Moscow"}, "timezone", "Неизвестный часовой пояс «Moscow»"),
    ({"timezone": "Europe/Москва"}, "timezone", "Неизвестный часовой пояс «Europe/Москва»"),
    ({"code": "a b"}, "code", "Только латинские буквы, цифры"),
    ({"code": "северный"}, "code", "Только латинские буквы, цифры"),
    ({"code": "<b>x</b>"}, "code", "Только латинские буквы, цифры"),
    ({"quiet_start": "22:00"}, "quiet_end", "Укажите и начало, и окончание тихого часа"),
    ({"quiet_end": "08:00"}, "quiet_start", "Укажите и начало, и окончание тихого часа"),
    ({"quiet_start": "22:00", "quiet_end": "22:00"}, "quiet_end", "Тихий час кончается в то же время"),
    ({"quiet_start": "25:00", "quiet_end": "08:00"}, "quiet_start", "Введите правильное время."),
    ({"quiet_start": "22-7", "quiet_end": "08:00"}, "quiet_start", "Введите правильное время."),
    ({"attempts": "0"}, "attempts", "больше либо равно 1"),
    ({"attempts": "1000"}, "attempts", "меньше либо равно 20"),
    ({"attempts": "-1"}, "attempts", "больше либо равно 1"),
    ({"warn_days": "100000"}, "warn_days", "меньше либо равно 365"),
    ({"warn_days": "-3"}, "warn_days", "больше либо равно 0"),
    ({"email": "noc"}, "email", "неверный e-mail отправителя 'noc': в адресе e-mail должен быть знак @"),
    ({"email": "noc@north .example"}, "email", "после знака @ недопустимые символы: пробел"),
    ({"email": "noc..x@north.example"}, "email", "не может быть двух точек подряд"),
])
def test_a_refused_operator_is_named_at_its_field_in_russian_and_not_saved(
        staff: Any, fields: dict[str, str], field: str, words: str) -> None:  # noqa: F811
    from msgd.store.models import Operator

    page = ru_post(staff, ADD, operator_form(**fields))
    assert page.status_code == 200
    shown = errors(page)
    assert any(words in e for e in shown.get(field, [])), shown
    assert not Operator.objects.exists()


def test_a_code_already_taken_is_said_plainly(staff: Any) -> None:  # noqa: F811
    seed.operator("north")
    page = ru_post(staff, ADD, operator_form())
    assert errors(page)["code"] == ["Оператор связи с таким кодом уже есть."]  # not "с таким Код уже существует"


@pytest.mark.parametrize("fields", [
    {}, {"timezone": "Asia/Yekaterinburg", "quiet_start": "22:00", "quiet_end": "07:00"},
    {"code": "best-2.north_1", "email": "noc@пример.рф", "attempts": "20", "warn_days": "365"},
    {"email": "Провайдер <noc@north.example>", "attempts": "1", "warn_days": "0", "timezone": "UTC"},
])
def test_what_config_load_takes_the_form_takes(staff: Any, fields: dict[str, str]) -> None:  # noqa: F811
    from msgd.config import load_config
    from msgd.config.dump import dump_config
    from msgd.store.models import Operator

    page = ru_post(staff, ADD, operator_form(**fields))
    assert page.status_code == 302, errors(page)
    assert Operator.objects.count() == 1
    load_config(dump_config())  # what the admin saved loads back from the file


def test_an_unknown_zone_already_stored_stops_no_stage(db: str) -> None:
    """A row from before the check (or written by hand): that operator's quiet hours fall back to
    UTC; the other operators and the rest of the snapshot load."""
    from zoneinfo import ZoneInfo

    from msgd.store.cache import ConfigCache

    seed.operator("best")
    seed.operator("north", timezone="Moscow")
    cache = ConfigCache(refresh_seconds=3600)
    zones = {op.code: op.timezone for op in cache.operators()}
    assert zones == {"best": ZoneInfo("Europe/Moscow"), "north": ZoneInfo("UTC")}
