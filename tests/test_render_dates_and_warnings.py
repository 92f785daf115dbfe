"""Date-like event fields in templates, and warnings for variables a Django template names
that the event lacks (preview, `msgd template render`, loading and saving)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from services.renderer.dates import DateText, parse_date
from services.renderer.render import render, template_warnings
from tests import seed
from tests.support import ROOT, msgd, stage_env

EVENTS = ROOT / "examples" / "events"


def event(**abonent: Any) -> dict[str, Any]:
    ab = {"id": 1319, "name": "Новый абонент", "contract_number": "10001319", "balance": 12.5, "total_abonpay": 650,
          "currency": "руб.", "enough_to_date": "2026-12-05 00:00:00",
          "abonent_id_users": [{"login": "user1", "gen_pwd": "secret1", "created_date": "01.02.2025"}]}
    ab.update(abonent)
    return {"event_id": "e1", "type": "days_before_block", "occurred_at": "2026-11-27T10:00:00+03:00",
            "operator": {"code": "best"}, "abonent": ab,
            "data": {"days_left": 3, "block_date": "2026-12-05", "paid_at": "2026-11-20T18:30:00+03:00",
                     "note": "2026-02-30", "when": "05.12.2026"}}


def django(body: str, ev: dict[str, Any] | None = None, **kw: Any) -> str:
    return render({"id": 1, "name": "d", "body": body, "use_django": True}, ev or event(), **kw).body


def standard(body: str, ev: dict[str, Any] | None = None) -> str:
    return render({"id": 1, "name": "s", "body": body}, ev or event()).body


# --- dates --------------------------------------------------------------------------------------


def test_the_issue_example_date_filter_and_the_manuals_slice() -> None:
    assert django('{{ enough_to_date|date:"d.m.Y" }}') == "05.12.2026"
    assert django('{{ enough_to_date|slice:":-9" }}') == "2026-12-05"
    assert django("{{ enough_to_date }}") == "2026-12-05 00:00:00"  # printed as billing sent it


@pytest.mark.parametrize(("source", "expected"), [
    ('{{ abonent.enough_to_date|date:"d.m.Y H:i" }}', "05.12.2026 00:00"),  # through the record
    ('{{ block_date|date:"d.m.Y" }}', "05.12.2026"),  # a date without a time
    ('{{ paid_at|date:"d.m.Y H:i O" }}', "20.11.2026 18:30 +0300"),  # keeps billing's offset
    ('{{ paid_at|time:"H:i" }}', "18:30"),
    ('{{ when|date:"Y-m-d" }}', ""),  # not named *_date: a Russian date stays text
    ('{% for u in abonent.abonent_id_users.all %}{{ u.created_date|date:"Y-m-d" }}{% endfor %}', "2025-02-01"),
    ('{{ note|date:"d.m.Y" }}', ""),  # 30 February is not a date: text, as Django treats text
    ('{{ block_date|slice:"5:7" }}.{{ block_date|length }}.{{ block_date|upper }}', "12.10.2026-12-05"),
    ("{% if enough_to_date %}есть{% endif %}", "есть"),
])
def test_date_like_fields_work_with_date_filters_and_as_text(source: str, expected: str) -> None:
    assert django(source) == expected


def test_standard_templates_print_dates_as_sent() -> None:
    assert standard("%(enough_to_date)s %(block_date)s %(enough_to_date).10s") == \
        "2026-12-05 00:00:00 2026-12-05 2026-12-05"


def test_date_values_are_escaped_for_telegram_markup_too() -> None:
    assert django('{{ enough_to_date|date:"d.m.Y" }}', markup="MarkdownV2") == "05\\.12\\.2026"


@pytest.mark.parametrize(("text", "named", "expected"), [
    ("2026-12-05", False, dt.date(2026, 12, 5)),
    ("2026-12-05T10:20", False, dt.datetime(2026, 12, 5, 10, 20)),
    ("2026-12-05 10:20:30.123456Z", False, dt.datetime(2026, 12, 5, 10, 20, 30, 123456, tzinfo=dt.UTC)),
    ("2026-12-05 10:20:30+0300", False, dt.datetime(2026, 12, 5, 10, 20, 30,
                                                     tzinfo=dt.timezone(dt.timedelta(hours=3)))),
    ("05.12.2026 10:20", True, dt.datetime(2026, 12, 5, 10, 20)),
    ("05.12.2026", False, None),
    ("2026-13-05", False, None),
    ("20261205", False, None),
    ("2026-12-05 x", False, None),
    ("+79121234567", True, None),
])
def test_what_is_date_like(text: str, named: bool, expected: dt.date | None) -> None:
    assert parse_date(text, named_as_date=named) == expected


def test_date_detection_is_linear_on_long_text() -> None:
    long = "2026-12-05 00:00:00" + "0" * 100_000  # would be quadratic with a backtracking pattern
    assert parse_date(long) is None and parse_date("2" * 100_000) is None
    value = DateText("2026-12-05", dt.date(2026, 12, 5))
    assert value == "2026-12-05" and json.dumps(value) == '"2026-12-05"'


# --- missing variables ------------------------------------------------------------------------


def warnings(body: str, ev: dict[str, Any] | None = None, django_syntax: bool = True) -> list[str]:
    return template_warnings({"id": 1, "name": "w", "body": body, "use_django": django_syntax}, ev or event())


def test_the_issue_example_is_reported_with_a_suggestion() -> None:
    assert warnings("Договор {{ abonent.contract_numbr }}") == [
        "body: variable 'abonent.contract_numbr' is not in the event (did you mean 'abonent.contract_number'?)"]
    assert django("Договор {{ abonent.contract_numbr }}") == "Договор "  # still renders empty


@pytest.mark.parametrize(("source", "missing"), [
    ("{{ balanse }}", ["balanse"]),  # a top-level standard variable
    ("{% if abonent.nope %}{{ contract_numbr }}{% endif %}", ["contract_numbr"]),  # a branch not taken
    ("{% load mathfilters %}{{ total_abonpay|sub:BALANSE }}", ["BALANSE"]),  # a filter argument
    ("{% if total_abonpay <= BALANSE %}0{% endif %}", ["BALANSE"]),  # compared, not tested for truth
    ("{% for u in abonent.abonent_id_users.all %}{{ u.logn }}{{ forloop.counter }}{% endfor %}", ["u.logn"]),
    ("{% for u in abonent.abonent_id_usrs.all %}{{ u.x }}{% endfor %}", ["abonent.abonent_id_usrs.all"]),
    ("{% with n=abonent.nam %}{{ n }}{% endwith %}", ["abonent.nam"]),
    ("{{ operator.nam }}", ["operator.nam"]),
])
def test_siblings_are_reported(source: str, missing: list[str]) -> None:
    found = warnings(source)
    assert [w.split("'")[1] for w in found] == missing, found


@pytest.mark.parametrize("source", [
    "{% if abonent.nope %}x{% endif %}{% if not abonent.nope %}y{% endif %}{% if abonent.nope is None %}z{% endif %}",
    "{{ abonent.nope|default:'—' }} {{ nope|default_if_none:'' }}",
    "{% firstof abonent.nick abonent.name %}",
    "{% for u in abonent.abonent_id_users.all %}{{ u.login }} {{ forloop.counter }}{% endfor %}",
    "{% with n=abonent.name %}{{ n }}{% endwith %} {% now 'Y' as year %}{{ year }}",
    "{{ abonent.abonent_id_users.0.login }} {{ enough_to_date|date:'Y' }} {{ operator.name }}",
])
def test_deliberate_uses_of_missing_values_are_not_reported(source: str) -> None:
    assert warnings(source) == []


def test_standard_templates_get_warnings_too() -> None:
    assert warnings("%(contract_numbr)s %(name)s", django_syntax=False) == [
        "body: variable 'contract_numbr' is not in the event (did you mean 'contract_number'?)"]


def test_cli_render_prints_warnings_on_stderr(tmp_path: Path) -> None:
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    config = tmp_path / "t.yaml"
    config.write_text(json.dumps({
        "operators": [{"code": "best", "name": "Лучший"}],
        "templates": [{"name": "Договор", "event": "low_balance", "channel": "sms", "django": True,
                       "body": 'Договор {{ abonent.contract_numbr }} до {{ enough_to_date|date:"d.m.Y" }}'}],
    }, ensure_ascii=False), encoding="utf-8")
    msgd("migrate", env=env)
    loaded = msgd("config", "load", str(config), env=env)
    assert "warning: body: variable 'abonent.contract_numbr' is not in the event (did you mean " \
           "'abonent.contract_number'?) (sample examples/events/low_balance.json)" in loaded.stdout
    out = msgd("template", "render", "Договор", "--event", str(EVENTS / "low_balance.json"), env=env)
    assert out.stdout.endswith("\n\nДоговор  до 04.05.2024\n")
    assert "warning: body: variable 'abonent.contract_numbr' is not in the event" in out.stderr


@pytest.mark.store
def test_preview_and_admin_save_warn(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from msgd.store.models import Template
    from services.renderer.preview import preview

    seed.operator()
    template = seed.template(body="{{ abonent.contract_numbr }}", use_django=True, name="dj")
    _, rendered = preview(template, json.loads((EVENTS / "low_balance.json").read_text(encoding="utf-8")))
    assert rendered.warnings == ["body: variable 'abonent.contract_numbr' is not in the event "
                                 "(did you mean 'abonent.contract_number'?)"]

    get_user_model().objects.create_superuser("boss", "boss@example.net", "pw-for-tests-1")
    staff = Client()
    assert staff.login(username="boss", password="pw-for-tests-1")
    page = staff.get(f"/admin/tools/templates/{template.id}/preview/").content.decode()
    assert "preview-missing" in page and "abonent.contract_numbr" in page
    form = {"owner": "", "name": "Дата", "event_type_0": "low_balance", "event_type_1": "", "channel": "sms",
            "subject": "", "body": "{{ abonent.tarif_nam }}", "use_django": "on", "enabled": "on",
            "status_other": "", "contract_type": ""}
    saved = staff.post("/admin/msgd/template/add/", form, follow=True)
    assert Template.objects.filter(name="Дата").exists(), "a warning does not refuse the template"
    assert "variable &#x27;abonent.tarif_nam&#x27; is not in the event (did you mean " \
           "&#x27;abonent.tarif_name&#x27;?) (sample examples/events/low_balance.json)" in saved.content.decode()


def test_a_missing_filter_argument_fails_without_dumping_the_event() -> None:
    from services.renderer.render import RenderError

    with pytest.raises(RenderError) as failed:
        django("{% load mathfilters %}{{ total_abonpay|sub:BALANSE }}")
    assert "'BALANSE', which is not in the event" in str(failed.value)
    assert "secret1" not in str(failed.value) and "Новый абонент" not in str(failed.value)
