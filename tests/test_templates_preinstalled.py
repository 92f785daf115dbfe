"""Preinstalled templates, the preview command, and refusal of templates that cannot render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from msgd.config import load_config
from tests.support import ROOT, msgd, stage_env

PREINSTALLED = ROOT / "msgd" / "data" / "templates.ru.yaml"
EVENTS = ROOT / "examples" / "events"
PER_CHANNEL = ("low_balance", "blocked", "days_before_block", "password_reset", "helpdesk_ticket",
               "payment_received")


def test_every_event_type_has_a_russian_template_for_every_channel(db: str) -> None:
    from msgd.store.models import Template
    from services.senders.registry import live_channels

    load_config(ROOT / "examples" / "config.yaml")
    load_config(PREINSTALLED)
    pairs = set(Template.objects.values_list("event_type", "channel"))
    for event_type in PER_CHANNEL:
        for channel in live_channels():
            assert (event_type, channel) in pairs, (event_type, channel)
    assert ("manual", None) in pairs and ("test_message", None) in pairs
    assert all(t.owner_id is None and any("а" <= ch <= "я" for ch in t.body) or t.body == "%(text)s"
               for t in Template.objects.all())


def test_each_preinstalled_template_renders_for_the_example_event_of_its_type(db: str) -> None:
    from msgd.store.models import Template
    from services.renderer.preview import preview

    load_config(ROOT / "examples" / "config.yaml")
    load_config(PREINSTALLED)
    for template in Template.objects.all():
        event = json.loads((EVENTS / f"{template.event_type}.json").read_text(encoding="utf-8"))
        channel, rendered = preview(template, event)
        assert rendered.body.strip() and "%(" not in rendered.body, template.name
        assert rendered.subject, template.name


def test_a_template_that_cannot_render_is_refused_when_saved(db: str) -> None:
    from django.core.exceptions import ValidationError

    from msgd.store.models import Template

    broken = Template(event_type="low_balance", channel="sms", body="Баланс %(balance")
    with pytest.raises(ValidationError) as refused:
        broken.full_clean()
    assert "balance" in str(refused.value)
    Template(event_type="low_balance", channel="sms", body="Баланс %(balance).2f").full_clean()


def test_preview_command_prints_exactly_what_would_be_sent(tmp_path: Path) -> None:
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    msgd("migrate", env=env)
    msgd("config", "load", "--preinstalled", str(ROOT / "examples/config.yaml"), env=env)
    event = str(EVENTS / "low_balance.json")
    out = msgd("template", "render", "Низкий баланс (SMS)", "--event", event, env=env)
    assert out.stdout == ("Channel: sms\nSubject: Низкий баланс\n\n"
                          "Уважаемый абонент Новый абонент! Ваш баланс 12.50 руб. — пополните счёт.\n")
    email = msgd("template", "render", "Низкий баланс (SMS)", "--channel", "email", "--event", event, env=env)
    assert email.stdout.startswith("Channel: email\n")

    broken = json.loads(Path(event).read_text(encoding="utf-8"))
    del broken["abonent"]["balance"]
    failed = msgd("template", "render", "Низкий баланс (SMS)", "--event", "-", env=env, check=False,
                  stdin=json.dumps(broken))
    assert failed.returncode == 1
    assert "render error" in failed.stderr and "'balance'" in failed.stderr and "Низкий баланс (SMS)" in failed.stderr
    missing = msgd("template", "render", "nope", "--event", event, env=env, check=False)
    assert missing.returncode == 2 and "no template with id or name 'nope'" in missing.stderr


# --- every preinstalled template against an event built only from the README's contract table ---

# A value for every field the README's table names; the test fails when the table names one
# that has no value here (so the table and this test cannot drift apart).
README_VALUES: dict[str, object] = {
    "id": 1319, "name": "Иванов Иван Иванович", "login": "ivanov", "contract_number": "10001319",
    "balance": 12.5, "status": "active", "contract_type": "individual", "currency": "руб.",
    "tarif_name": "Анлим 30мб", "text": "15 мая с 02:00 до 04:00 плановые работы", "psw_token": "482915",
    "days_left": 3, "block_date": "2026-12-05", "subscriber_name": "Петров Пётр",
    "subscriber_sms": "+79127654321", "subscriber_email": "petrov@example.net",
    "subscriber_home": "ул. Ленина, 1", "amount": 500.0,
    "total_abonpay": 650.0, "allow_limit": 0,
    "sms": "+79121234567", "email": "abonent@example.net", "telegram_id": "555001",
}
NOT_FIELDS = {"individual", "legal", "push", "abonent_id_users", "contacts"}  # values, lists, groups
DOUBLED = re.compile(r"(?<!\.)\.\.(?!\.)|,,|;;|::|[,;:][.,;:]|[ \t][.,;:!?]")


def readme_fields(row: str) -> list[str]:
    line = next(x for x in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                if x.startswith(f"| `{row}` |"))
    names: list[str] = []
    for token in re.findall(r"`([^`]+)`", line.split("|")[2]):
        first, *more = token.split("/")
        names += [first, *(first.rsplit("_", 1)[0] + suffix for suffix in more)]  # subscriber_name/_sms
    return [n for n in names if n not in NOT_FIELDS]


def readme_event(event_type: str, **overrides: object) -> dict[str, object]:
    """An event with exactly the fields the README's table lists (and the contacts it names)."""
    abonent_part, contacts_part = re.split(r"`contacts`", next(
        x for x in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if x.startswith("| `abonent` |")))
    abonent_names = [n for n in readme_fields("abonent") if f"`{n}`" in abonent_part]
    contact_names = [n for n in re.findall(r"`([^`]+)`", contacts_part) if n not in NOT_FIELDS]
    values = {**README_VALUES, **overrides}
    missing = [n for n in [*abonent_names, *contact_names, *readme_fields("data")] if n not in values]
    assert not missing, f"the README's table names fields this test has no value for: {missing}"
    return {"event_id": "readme-1", "type": event_type, "occurred_at": "2026-11-27T10:00:00+03:00",
            "operator": {"code": "best"},
            "abonent": {**{n: values[n] for n in abonent_names}, "contacts": {n: values[n] for n in contact_names}},
            "data": {n: values[n] for n in readme_fields("data")}}


def preinstalled() -> list[dict[str, object]]:
    import yaml

    data = yaml.safe_load(PREINSTALLED.read_text(encoding="utf-8"))
    return [{"id": i, "name": t["name"], "event_type": t["event"], "channel": t.get("channel"),
             "subject": t.get("subject") or "", "body": t["body"], "use_django": bool(t.get("django"))}
            for i, t in enumerate(data["templates"], start=1)]


@pytest.mark.parametrize("variant", [
    {},  # the README's example values
    {"currency": "₽"}, {"currency": "руб"},  # a currency without the abbreviation's dot
    # values that end in punctuation themselves: a template must not add its own after them
    {"name": "ИП Сидоров С.С.", "subscriber_name": "Сидоров С.С.", "tarif_name": "Тариф «Плюс».",
     "text": "Работы завершены.", "subscriber_home": "д. 1, кв. 2.", "currency": "тг."},
])
def test_every_preinstalled_template_renders_from_the_readme_contract(variant: dict[str, object]) -> None:
    from services.renderer.render import render
    from services.senders.registry import live_channels

    templates = preinstalled()
    assert len(templates) == 26
    for template in templates:
        event = readme_event(str(template["event_type"]), **variant)
        for channel in [template["channel"]] if template["channel"] else live_channels():
            rendered = render(template, event, {"name": "ООО Лучший провайдер"}, html=channel == "email")
            for text in (rendered.subject, rendered.body):
                assert "%(" not in text and "{{" not in text, (template["name"], text)
                doubled = DOUBLED.search(text)
                assert doubled is None, f"{template['name']} ({channel}): {doubled.group()!r} in {text!r}"


def test_payment_defaults_follow_the_manual() -> None:
    from services.renderer.context import build_context

    def ctx(**abonent: object) -> dict[str, object]:
        return build_context({"abonent": {"id": 1, **abonent}, "data": {}})

    owed = ctx(balance=-150.5)
    assert (str(owed["minimal_pay_sum"]), str(owed["recomend_pay_sum"])) == ("150.5", "150.5")
    monthly = ctx(balance=12.5, total_abonpay=650, allow_limit=100)
    assert (str(monthly["minimal_pay_sum"]), str(monthly["recomend_pay_sum"])) == ("87.5", "637.5")
    rich = ctx(balance=1000, total_abonpay=650)
    assert (str(rich["minimal_pay_sum"]), str(rich["recomend_pay_sum"])) == ("0", "0")
    sent = ctx(balance=12.5, total_abonpay=650, recomend_pay_sum=700, minimal_pay_sum=50)
    assert (str(sent["minimal_pay_sum"]), str(sent["recomend_pay_sum"])) == ("50", "700")  # billing's win
    assert "recomend_pay_sum" not in ctx(name="без баланса")
