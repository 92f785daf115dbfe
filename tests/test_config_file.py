"""`msgd config load/dump`: strict, all-or-nothing, idempotent, secrets masked."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pytest

from msgd.config import ConfigError, LoadReport, dump_config, load_config, parse_yaml
from msgd.redact import redact_text

ROOT = Path(__file__).resolve().parent.parent
# What `make run` loads: the example operator and channels, then the preinstalled templates.
PREINSTALLED = ROOT / "msgd" / "data" / "templates.ru.yaml"
EXAMPLE = (ROOT / "examples" / "config.yaml").read_text(encoding="utf-8") + PREINSTALLED.read_text(
    encoding="utf-8"
).split("version: 1", 1)[1]
TEMPLATES = 26
KNOWN_TYPES = {
    "low_balance",
    "blocked",
    "days_before_block",
    "password_reset",
    "helpdesk_ticket",
    "manual",
    "payment_received",
    "test_message",
}


def state() -> dict[str, Any]:
    """Everything the config file controls, without ids and timestamps."""
    from msgd.store.models import ChannelSettings, Operator, Template

    skip = ("id", "updated_at")
    ops = {
        o.code: {
            f.name: getattr(o, f.attname) for f in o._meta.concrete_fields if f.name not in skip
        }
        for o in Operator.objects.all()
    }
    channels = {
        (c.operator.code, c.channel, c.position): (c.enabled, c.outbox, c.params, c.secrets)
        for c in ChannelSettings.objects.select_related("operator")
    }
    templates = {
        (t.owner.code if t.owner else None, t.event_type, t.channel, t.name): (
            t.subject,
            t.body,
            t.enabled,
            t.every_day,
            t.status_filter,
            t.contract_type,
            t.use_django,
        )
        for t in Template.objects.select_related("owner")
    }
    return {"operators": ops, "channels": channels, "templates": templates}


def revision() -> int:
    from msgd.store.models import Revision

    return Revision.current()


def refused(source: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(source, **kwargs)
    return info.value.errors


FULL = textwrap.dedent(
    """\
    operators:
      - code: best
        name: ООО Лучший провайдер
        email: noc@best.example
        timezone: Asia/Yekaterinburg
        quiet_hours: {start: 22:00, end: "08:00:30"}
        attempts: 5
        default_subject: Сообщение от провайдера
        warn_days: 3
        channels:
          SMS:
            - url: https://smsc.ru/sys/send.php
              request_type: post
              params: "charset=utf-8&login=best&psw=Gw7-smsc-pass&phones=%sms%&mes=%text%"
              strip_plus: true
              login: best-basic
              password: basic-s3cret
            - url: http://gate.prostor-sms.ru/send/
              params: "login=best&password='prostor-pass'&phone=%sms%&text=%text%"
              outbox: true
          E-mail: {host: smtp.yandex.ru, port: 465, security: ssl, login: noc@best.example, password: mail-s3cret}
      - code: north
        name: Северный филиал
        channels: {}
    templates:
      - owner: north
        name: Низкий баланс (север)
        event: low_balance
        channel: sms
        body: "Северный филиал: баланс %(balance).2f %(currecy)s"
        status_filter: [active, "2"]
        contract_type: legal
      - owner: null
        name: Старый агент
        event: low_balance
        channel: Agent
        body: "%(text)s"
        enabled: false
      - event: days_before_block
        channel: email
        subject: Предупреждение
        body: |
          Через %(days_left)s дн. обслуживание будет приостановлено.
          Баланс: %(balance).2f
        every_day: true
        django: false
    """
)


# -- the example ---------------------------------------------------------------


def test_example_loads_into_a_fresh_store(db: str) -> None:
    from msgd.store.models import ChannelSettings, Operator, Template

    report = load_config(EXAMPLE)

    assert report.created == {"operators": 1, "channels": 2, "templates": TEMPLATES}
    assert report.updated == {"operators": 0, "channels": 0, "templates": 0}
    assert report.notes == []
    op = Operator.objects.get(code="best")
    assert (op.name, op.email, op.timezone, op.attempts, op.warn_days) == (
        "ООО Лучший провайдер",
        "noc@best.example",
        "Europe/Moscow",
        3,
        3,
    )
    assert op.quiet_start is None and op.quiet_end is None  # a first try delivers at once
    channels = {c.channel: c for c in ChannelSettings.objects.filter(operator=op)}
    assert set(channels) == {"sms", "email"}
    assert all(c.outbox and c.position == 1 and c.enabled for c in channels.values())
    assert channels["email"].params == {"host": "localhost", "port": 25, "security": "none"}
    assert {t.event_type for t in Template.objects.all()} == KNOWN_TYPES
    sms = Template.objects.get(event_type="low_balance", channel="sms")
    assert sms.owner is None and sms.name == "Низкий баланс (SMS)"
    assert (
        sms.body
        == "Уважаемый абонент %(name)s! Ваш баланс %(balance).2f %(currecy)s — пополните счёт."
    )
    assert Template.objects.get(event_type="password_reset", channel="sms").body == (
        "Код для сброса пароля: %(psw_token)s"
    )
    manual = Template.objects.get(event_type="manual")
    assert (manual.channel, manual.body) == (None, "%(text)s")


def test_loading_the_example_twice_changes_nothing(db: str) -> None:
    load_config(EXAMPLE)
    before, rev = state(), revision()

    report = load_config(EXAMPLE)

    assert not report.changed
    assert report.unchanged == {"operators": 1, "channels": 2, "templates": TEMPLATES}
    assert state() == before
    assert revision() == rev  # nothing was even saved: caches are not told to reload


def test_report_reads_as_counts(db: str) -> None:
    text = str(load_config(EXAMPLE))
    assert "operators: 1 created, 0 updated, 0 unchanged" in text
    assert f"templates: {TEMPLATES} created" in text


# -- what a full file stores ---------------------------------------------------


def test_full_file_is_stored_field_by_field(db: str) -> None:
    from msgd.store.models import ChannelSettings, Operator, Template

    report = load_config(FULL)

    assert report.created == {"operators": 2, "channels": 3, "templates": 3}
    op = Operator.objects.get(code="best")
    assert (op.timezone, op.attempts) == ("Asia/Yekaterinburg", 5)
    # an unquoted 22:00 is a time, not YAML 1.1's base-60 number 1320
    assert (op.quiet_start, op.quiet_end) == (dt.time(22, 0), dt.time(8, 0, 30))
    main = ChannelSettings.objects.get(operator=op, channel="sms", position=1)
    assert main.secrets == {"login": "best-basic", "password": "basic-s3cret"}
    assert main.params["strip_plus"] is True and "login" not in main.params
    assert not main.outbox
    assert ChannelSettings.objects.get(operator=op, channel="sms", position=2).outbox
    email = ChannelSettings.objects.get(operator=op, channel="email")
    assert email.secrets == {"login": "noc@best.example", "password": "mail-s3cret"}
    north = Template.objects.get(owner__code="north")
    assert (north.status_filter, north.contract_type) == (["active", "2"], "legal")
    legacy = Template.objects.get(channel="agent")
    assert legacy.owner is None and not legacy.enabled
    unnamed = Template.objects.get(event_type="days_before_block")
    assert unnamed.name == "days_before_block/email" and unnamed.every_day
    assert unnamed.body.endswith("Баланс: %(balance).2f\n")
    assert any("templates[2]: has no name" in n for n in report.notes)
    assert any("params: holds secret values" in n for n in report.notes)
    assert load_config(FULL).changed is False  # the generated name keeps it matched


def test_secrets_are_registered_for_redaction(db: str) -> None:
    load_config(FULL)
    assert redact_text("login failed for basic-s3cret at smtp") == "login failed for *** at smtp"
    assert "Gw7-smsc-pass" not in redact_text("GET /send.php?x=Gw7-smsc-pass")


# -- dump ----------------------------------------------------------------------


def test_dump_masks_secrets(db: str) -> None:
    load_config(FULL)

    text = dump_config()

    for secret in ("basic-s3cret", "mail-s3cret", "best-basic", "Gw7-smsc-pass", "prostor-pass"):
        assert secret not in text
    assert "password: '***'" in text
    assert "psw=***&phones=%sms%" in text
    assert "password=***&phone=%sms%" in text
    shown = dump_config(include_secrets=True)
    assert "basic-s3cret" in shown and "Gw7-smsc-pass" in shown


def test_loading_a_masked_dump_keeps_the_stored_secrets(db: str) -> None:
    load_config(FULL)
    before = state()

    report = load_config(dump_config())

    assert not report.changed, report
    assert state() == before


def test_dump_load_round_trip_is_exact(db: str) -> None:
    load_config(EXAMPLE)
    load_config(FULL)
    before = state()
    dumped = dump_config(include_secrets=True)

    from msgd.store.models import ChannelSettings, Operator, Template

    for model in (Template, ChannelSettings, Operator):
        model.objects.all().delete()
    report = load_config(dumped)

    assert report.notes == [] or all("secret values" in n for n in report.notes)
    assert state() == before
    assert dump_config(include_secrets=True) == dumped


def test_a_changed_secret_replaces_the_stored_one(db: str) -> None:
    from msgd.store.models import ChannelSettings

    load_config(FULL)
    data = parse_yaml(dump_config())
    email = data["operators"][0]["channels"]["email"]
    assert email["login"] == email["password"] == "***"
    email["password"] = "new-mail-pass"

    report = load_config(data)

    assert report.updated["channels"] == 1 and report.unchanged["channels"] == 2
    stored = ChannelSettings.objects.get(channel="email")
    assert stored.secrets == {"login": "noc@best.example", "password": "new-mail-pass"}


def test_masked_secret_without_a_stored_one_is_refused(db: str) -> None:
    errors = refused(
        "operators:\n  - code: best\n    name: Best\n    channels:\n      sms: {url: 'https://x.example', password: '***'}\n"
    )
    assert errors == [
        "operators[best].channels.sms.password: '***' means 'keep the stored secret', but none is stored (line 5)"
    ]


# -- updates and deletions -----------------------------------------------------


def test_changes_are_updates_not_duplicates(db: str) -> None:
    from msgd.store.models import Operator, Template

    load_config(EXAMPLE)
    changed = (
        EXAMPLE
        .replace("name: ООО Лучший провайдер", "name: ООО Самый лучший провайдер")
        .replace("  body: 'Код для сброса пароля: %(psw_token)s'", "  body: 'Ваш код: %(psw_token)s'", 1)
    )

    report = load_config(changed)

    assert report.created == {"operators": 0, "channels": 0, "templates": 0}
    assert report.updated == {"operators": 1, "channels": 0, "templates": 1}
    assert Operator.objects.get().name == "ООО Самый лучший провайдер"
    assert Template.objects.count() == TEMPLATES
    assert (
        Template.objects.get(event_type="password_reset", channel="sms").body
        == "Ваш код: %(psw_token)s"
    )


def test_channels_listed_are_the_complete_list(db: str) -> None:
    from msgd.store.models import ChannelSettings

    load_config(FULL)
    only_main = parse_yaml(FULL)
    del only_main["operators"][0]["channels"]["SMS"][1]

    report = load_config(only_main)

    assert report.deleted["channels"] == 1
    assert "operators[best].channels: deleted sms position 2 (not in the file)" in report.notes
    assert list(
        ChannelSettings.objects.filter(channel="sms").values_list("position", flat=True)
    ) == [1]


def test_without_channels_key_stored_channels_are_left_alone(db: str) -> None:
    from msgd.store.models import ChannelSettings

    load_config(EXAMPLE)
    report = load_config("operators:\n  - {code: best, name: ООО Лучший провайдер, warn_days: 3}\n")
    assert report.deleted["channels"] == 0
    assert ChannelSettings.objects.count() == 2


# -- strictness ----------------------------------------------------------------


def test_unknown_channel_key_names_the_place(db: str) -> None:
    text = EXAMPLE.replace(
        "        outbox: true                  # false = really send through the gateway below",
        "        outbox: true\n        request_typo: post",
    )
    errors = refused(text)
    assert len(errors) == 1
    assert errors[0].startswith("operators[best].channels.sms.request_typo: unknown key, did you mean 'request_type'?"
                                " (known: preset, url, request_type, ")
    assert errors[0].endswith(f"(line {text.splitlines().index('        request_typo: post') + 1})")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("colour: red\n", "colour: unknown key"),
        (
            "operators:\n  - {code: best, name: B, channels: {pigeon: {}}}\n",
            "operators[best].channels.pigeon: unknown channel",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {whatsapp: {}}}\n",
            "operators[best].channels.whatsapp: 'whatsapp' is a legacy channel",
        ),
        (
            "operators:\n  - {code: best, name: B, timezone: Europe/Mordor}\n",
            "operators[best].timezone: unknown time zone 'Europe/Mordor'",
        ),
        (
            "operators:\n  - {code: best, name: B, quiet_hours: {start: '25:00', end: '08:00'}}\n",
            "operators[best].quiet_hours.start: '25:00' is not a time",
        ),
        (
            "operators:\n  - {code: best, name: B, quiet_hours: {start: '22:00'}}\n",
            "operators[best].quiet_hours.end: is required",
        ),
        (  # YAML reads an unquoted 8 as a number: it was stored as 00:00:08 UTC (SQLite: a traceback)
            "operators:\n  - {code: best, name: B, quiet_hours: {start: '22:00', end: 8}}\n",
            "operators[best].quiet_hours.end: 8 is not a time \"HH:MM\" or \"HH:MM:SS\": write it in quotes,"
            " e.g. \"08:00\" (line 2)",
        ),
        (
            "operators:\n  - {code: best, name: B, quiet_hours: {start: 1320, end: '08:00'}}\n",
            "operators[best].quiet_hours.start: 1320 is not a time",
        ),
        (
            "operators:\n  - {code: best, name: B, quiet_hours: {start: 2024-01-01 22:00:00, end: '08:00'}}\n",
            "operators[best].quiet_hours.start: 2024-01-01 22:00:00 is not a time",
        ),
        (
            "operators:\n  - {code: best, name: B, quiet_hours: {start: '22:00', end: '22:00'}}\n",
            "operators[best].quiet_hours: start and end are equal",
        ),
        (
            "operators:\n  - {code: best, name: B, attempts: 0}\n",
            "operators[best].attempts: must be at least 1, got 0",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {email: {port: 'twenty-five'}}}\n",
            "operators[best].channels.email.port: must be a port number 1..65535, got 'twenty-five'",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {email: {security: tls1.3}}}\n",
            "operators[best].channels.email.security: 'tls1.3' is not one of none, ssl or starttls",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {sms: {outbox: maybe}}}\n",
            "operators[best].channels.sms.outbox: must be true or false, got 'maybe'",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {sms: {on_timeout: sometimes}}}\n",
            "operators[best].channels.sms.on_timeout: 'sometimes' is not one of unknown or retry",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {sms: {max_segments: 0}}}\n",
            "operators[best].channels.sms.max_segments: must be at least 1, got 0",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {email: {max_bytes: 1.5}}}\n",
            "operators[best].channels.email.max_bytes: must be a whole number, got 1.5",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {telegram: {max_parts: many}}}\n",
            "operators[best].channels.telegram.max_parts: must be a whole number, got 'many'",
        ),
        (
            "operators:\n  - {code: best, name: B, channels: {sms: {dedupes_message_id: maybe}}}\n",
            "operators[best].channels.sms.dedupes_message_id: must be true or false, got 'maybe'",
        ),
        ("operators:\n  - {name: B}\n", "operators[0].code: is required"),
        (
            "operators:\n  - {code: best, name: B}\n  - {code: best, name: C}\n",
            "operators[1].code: 'best' is already used by operators[best]",
        ),
        (
            "templates:\n  - {event: low_balance, body: x, contract_type: ip}\n",
            "templates[0].contract_type: 'ip' is not one of individual or legal",
        ),
        (
            "templates:\n  - {event: low_balance, body: x, channel: pigeon}\n",
            "templates[0].channel: unknown channel 'pigeon'",
        ),
        (
            "templates:\n  - {event: low_balance, body: x, chanel: sms}\n",
            "templates[0].chanel: unknown key, did you mean 'channel'?",
        ),
        (
            "templates:\n  - {event: Low Balance, body: x}\n",
            "templates[0].event: 'Low Balance' must be",
        ),
        ("templates:\n  - {event: low_balance}\n", "templates[0].body: is required"),
        (
            "templates:\n  - {event: low_balance, body: x, status_filter: {a: 1}}\n",
            "templates[0].status_filter: must be a list",
        ),
        (
            "templates:\n  - {name: a, event: low_balance, body: x}\n  - {name: a, event: low_balance, body: y}\n",
            "templates[1]: same owner, event, channel and name as templates[a]",
        ),
        ("operators:\n  - code: a\n    code: b\n", "key 'code' appears twice"),
        ("operators: [\n", "line "),
        ("version: 2\n", "version: unsupported version 2"),
    ],
)
def test_strict_errors_name_the_place(db: str, yaml_text: str, expected: str) -> None:
    errors = refused(yaml_text)
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_every_problem_is_reported_at_once(db: str) -> None:
    errors = refused(
        textwrap.dedent(
            """\
            operators:
              - code: best
                name: B
                timezone: Nowhere/City
                channels: {sms: {request_typo: post}}
            templates:
              - {event: low_balance, body: x, contract_type: ip}
            """
        )
    )
    assert [e.split(":")[0] for e in errors] == [
        "operators[best].timezone",
        "operators[best].channels.sms.request_typo",
        "templates[0].contract_type",
    ]


def test_template_owner_must_exist(db: str) -> None:
    errors = refused("templates:\n  - {owner: nobody, event: low_balance, body: x}\n")
    assert errors == [
        "templates[0].owner: no operator with code 'nobody' (in this file or the store) (line 2)"
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    errors = refused(tmp_path / "nope.yaml")
    assert errors == [f"{tmp_path / 'nope.yaml'}: no such file"]


# -- all or nothing ------------------------------------------------------------


def test_a_bad_template_at_the_end_leaves_nothing_loaded(db: str) -> None:
    from msgd.store.models import ChannelSettings, Operator, Template

    seen: list[str] = []

    def check_template(template: Any) -> str | None:
        seen.append(template.name)
        if template.event_type == "test_message":
            return "line 1: unknown variable %(operator_nam)s"
        return None

    errors = refused(EXAMPLE, check_template=check_template)

    (error,) = errors
    assert error.startswith("templates[Тестовое сообщение]: line 1: unknown variable %(operator_nam)s (line ")
    assert len(seen) == TEMPLATES  # every template was checked before the refusal
    assert Operator.objects.count() == 0
    assert ChannelSettings.objects.count() == 0
    assert Template.objects.count() == 0


def test_a_refused_reload_keeps_the_previous_state(db: str) -> None:
    load_config(EXAMPLE)
    before, rev = state(), revision()
    changed = EXAMPLE.replace("attempts: 3", "attempts: 4")
    changed += "- {owner: ghost, event: manual, body: x}\n"

    errors = refused(changed)

    assert errors[0].startswith(f"templates[{TEMPLATES}].owner: no operator with code 'ghost'")
    assert state() == before
    assert revision() == rev


def test_check_template_sees_the_final_fields(db: str) -> None:
    bodies: dict[str, str] = {}

    def check_template(template: Any) -> str | None:
        bodies[template.name] = template.body
        return None

    report = load_config(EXAMPLE, check_template=check_template)

    assert isinstance(report, LoadReport)
    assert bodies["Ручная отправка"] == "%(text)s"


def test_a_masked_dump_cannot_seed_an_empty_store(db: str) -> None:
    load_config(FULL)
    masked = dump_config()
    from msgd.store.models import ChannelSettings, Operator, Template

    for model in (Template, ChannelSettings, Operator):
        model.objects.all().delete()

    errors = refused(masked)

    assert any(e.startswith("operators[best].channels.email.password: '***' means 'keep the stored secret', but"
                            " none is stored (line ") for e in errors), errors
    assert any(e.startswith("operators[best].channels.sms[0].params: holds a masked secret") for e in errors)
    assert Operator.objects.count() == 0


def test_yaml_text_on_one_long_line_is_not_taken_for_a_file_name(db: str) -> None:
    one_line = "operators: [{code: best, name: '" + "Лучший провайдер " * 10 + "'}]"
    assert load_config(one_line).created["operators"] == 1


def test_an_alias_inside_its_own_anchor_is_refused_not_looped_over() -> None:
    """`name: &a [*a]` made `msgd config load` run forever (a list that contains itself): the
    reading refuses it, so nothing after it (load_config, the admin) ever sees one."""
    for text, line in [("operators:\n  - code: x\n    name: &a [*a]\n", 3),
                       ("base: &b\n  nested: {again: *b}\noperators: []\n", 1),
                       ("operators:\n  - &op\n    code: x\n    <<: *op\n", 2)]:
        with pytest.raises(ConfigError) as refused:
            parse_yaml(text)
        [error] = refused.value.errors
        assert error.startswith(f"line {line}, column "), (text, error)  # where the anchor is
        assert error.endswith(": this anchor's value refers to itself through an alias (*name): it would never end")


def test_aliases_that_expand_past_the_limit_are_refused_before_anything_is_built(db: str) -> None:
    """A "billion laughs": 10 levels of 10 aliases is 10**10 values from a few lines."""
    from msgd.config.yamlio import MAX_VALUES

    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 6)]
    with pytest.raises(ConfigError) as refused:
        load_config("\n".join([*lines, "operators: []"]))
    assert refused.value.errors == [f"the file expands to more than {MAX_VALUES} values through its"
                                    " aliases (*name): write the repeated parts out, or repeat them less"]
    shared = ("operators:\n  - &d {code: a, name: A, timezone: Europe/Moscow, attempts: 2}\n"
              "  - {<<: *d, code: b}\n")
    assert load_config(shared).created["operators"] == 2  # an alias used as intended still loads


def test_a_file_not_in_utf8_names_the_line_in_plain_words(db: str, tmp_path: Path) -> None:
    """A file saved as Windows-1251 was refused with Python's codec message."""
    path = tmp_path / "cp1251.yaml"
    path.write_bytes("operators:\n  - code: cp\n    name: Тест\n".encode("cp1251"))
    assert refused(path) == [f"{path}, line 3: not UTF-8 text (byte 34): save the file as UTF-8"
                             " (an editor's \"Windows-1251\" or \"ANSI\" encoding is not read)"]
    assert refused(tmp_path) == [f"{tmp_path}: cannot read (Is a directory)"]
    with_bom = tmp_path / "bom.yaml"
    with_bom.write_bytes(b"\xef\xbb\xbf" + "operators:\n  - {code: bom, name: Тест}\n".encode())
    assert load_config(with_bom).created["operators"] == 1
