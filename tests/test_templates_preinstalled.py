"""Preinstalled templates, the preview command, and refusal of templates that cannot render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msgd.config_file import load_config
from tests.support import ROOT, msgd, stage_env

PREINSTALLED = ROOT / "msgd" / "data" / "templates.ru.yaml"
EVENTS = ROOT / "examples" / "events"
PER_CHANNEL = ("low_balance", "blocked", "days_before_block", "password_reset", "helpdesk_ticket",
               "payment_received")


def test_every_event_type_has_a_russian_template_for_every_channel(db: str) -> None:
    from msgd.store.models import Template
    from services.senders import live_channels

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
