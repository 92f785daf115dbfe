"""One validation everywhere (issue 12): the channel's settings model refuses at load what could
only fail later, message by message; a file's problems are all reported at once with their YAML
path and line; the admin's channel form runs the same model, so what it saves dumps and loads back."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from msgd.config import ConfigError, load_config
from tests.support import msgd, stage_env

ROOT = Path(__file__).resolve().parent.parent

def vapid_pem() -> str:
    """A fresh P-256 key as PEM, its line breaks written as \\n (as a one-line YAML value)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return pem.replace("\n", "\\n")


def one_slot(channel: str, settings: str) -> str:
    return f"operators:\n  - code: best\n    name: B\n    channels:\n      {channel}: {settings}\n"


def refused(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(text)
    return err.value.errors


# -- required settings are required at load ----------------------------------------------------------

@pytest.mark.parametrize(("channel", "settings", "expected"), [
    # the cases
    ("sms", "{preset: rostelecom, login: L, password: P}",
     ["sender_name: is required by preset rostelecom (the Rostelecom JSON request)"]),
    ("sms", "{preset: digital_direct, password: API-KEY}",
     ["sender_name: is required by preset digital_direct (the Digital Direct JSON request: the sender name"
      " agreed with Digital Direct)"]),
    ("sms", "{preset: smsc, password: P}",
     ["login: is required by preset smsc (%login% in params: login)"]),
    ("sms", "{preset: smsc, login: L}",
     ["password: is required by preset smsc (%password% in params: password)"]),
    ("telegram", "{}", ["token: is required: the bot token from @BotFather"]),
    # their siblings: every preset's credentials, every channel's required settings
    ("sms", "{preset: digital_direct, sender_name: BEST}",
     ["password: is required by preset digital_direct (the Digital Direct JSON request: the API key from the"
      " Digital Direct account, or api_key)"]),
    ("sms", "{preset: prostor, login: L}", ["password: is required by preset prostor (%password% in params:"
                                            " password)"]),
    ("sms", "{preset: smspilot}", ["api_key: is required by preset smspilot (%api_key% in params: api_key (or"
                                   " password))"]),
    ("sms", "{preset: semysms, token: T}", ["device: is required by preset semysms (%device% in params: device)"]),
    ("sms", "{request_type: rostelecom_json, url: 'https://sms.rt.ru/api/v2/send_message', login: L}",
     ["password: is required by request type rostelecom_json (the Rostelecom JSON request)",
      "sender_name: is required by request type rostelecom_json (the Rostelecom JSON request)"]),
    ("sms", "{url: 'https://gw.example/send', params: 'user=%login%&to=%sms%&text=%text%'}",
     ["login: is required by request type post (%login% in params: login)"]),
    ("sms", "{strip_plus: true}", ["url: is required: the gateway's address (or choose a preset)"]),
    ("email", "{host: smtp.example, login: mailer-5518@best.example}",
     ["password: is required with a login (the server would refuse an empty password)"]),
    ("push", "{vapid_subject: 'mailto:noc@best.example'}",
     ["vapid_private_key: is required: the key browsers' subscriptions are signed with"]),
    # a server's address written as a URL or with its port: taken as the name, a DNS error at the
    # first message; a proxy without a scheme was named "?:80"
    *(("email", f"{{host: '{host}'}}", [f"host: '{host}' is not a host name: write the server's name alone,"
                                         " such as smtp.example.ru (no http://, no port: the port has its own"
                                         " setting)"])
      for host in ("ssl://smtp.yandex.ru", "smtp yandex.ru", "smtp.yandex.ru:465")),
    ("telegram", "{token: '1:A', proxy: 'proxy.local:3128'}",
     ["proxy: is not a proxy URL: write it with its scheme, http://host:port or socks5h://host:port"]),
    ("push", "{vapid_private_key: 'not a key', vapid_subject: 'mailto:noc@best.example'}",
     ["vapid_private_key: is not a VAPID key: use the PEM file's text, or the base64url private key (32 bytes)"
      " that web-push generate-vapid-keys prints"]),
])
def test_settings_that_could_only_fail_later_are_refused_at_load(db: str, channel: str, settings: str,
                                                                 expected: list[str]) -> None:
    from msgd.store.models import ChannelSettings

    errors = refused(one_slot(channel, settings))
    assert errors == [f"operators[best].channels.{channel}.{e} (line 5)" for e in expected]
    assert ChannelSettings.objects.count() == 0


@pytest.mark.parametrize(("channel", "settings"), [
    ("sms", "{preset: rostelecom, login: L, password: P, sender_name: BEST}"),
    ("sms", "{preset: 'Digital Direct', password: API-KEY, sender_name: BEST}"),
    ("sms", "{preset: SMSC.RU, login: L, password: 7351946}"),  # a number: YAML reads it so
    ("sms", "{preset: smspilot, password: KEY}"),
    ("sms", "{preset: semysms, password: T, device: '1'}"),
    ("telegram", "{token: '123:ABC'}"),
    ("email", "{host: smtp.example, port: '465', security: smtps, login: mailer-5518@best.example, password: P}"),
    ("push", f"{{vapid_private_key: '{vapid_pem()}', vapid_subject: 'mailto:noc@best.example'}}"),
    ("sms", "{outbox: true}"),  # an outbox sends nothing: the gateway may be left out
    ("sms", "{outbox: true, preset: rostelecom}"),
    ("telegram", "{outbox: true}"),
    ("email", "{host: smtp.пример.рф}"),  # an IDN host, an IPv6 address with or without brackets
    ("email", "{host: '::1'}"),
    ("email", "{host: '[::1]'}"),
])
def test_complete_settings_load(db: str, channel: str, settings: str) -> None:
    assert load_config(one_slot(channel, settings)).created["channels"] == 1


# -- every problem at once, with its place and line ----------------------------------------------

TWO_PROBLEMS = textwrap.dedent("""\
    operators:
      - code: best
        name: B
        channels:
          email: {host: smtp.example, port: "25x"}
          sms:
            - {preset: smsc, login: L, password: P}
            - {urll: 'https://gw.example', strip_plus: да}
    templates:
      - name: Низкий баланс
        event: low_balance
        channel: sms
        body: "Баланс 100% — %(balance).2f"
      - name: Оплата
        event: payment_received
        body: "Спасибо за оплату"
    """)


def test_a_bad_port_and_a_lone_percent_are_both_reported(db: str) -> None:
    from msgd.store.models import Operator, Template

    errors = refused(TWO_PROBLEMS)

    assert errors == [
        "operators[best].channels.email.port: must be a port number 1..65535, got '25x' (line 5)",
        "operators[best].channels.sms[1].strip_plus: must be true or false, got 'да' (line 8)",
        "operators[best].channels.sms[1].urll: unknown key, did you mean 'url'? (known: preset, url, request_type,"
        " params, strip_plus, login, password, md5_key, api_key, token, device, sender_name, region, reply_format,"
        " success_pattern, rate_limit, max_segments, encoding, dlr_poll, status_url, dlr_url, dedupes_message_id, balance_alert_below, timeout, verify, ca_bundle, on_timeout,"
        " outbox, enabled, position) (line 8)",
        'templates[Низкий баланс].body: line 1, column 11: a lone "%": write "%%" for a percent sign (line 13)',
    ]
    assert Operator.objects.count() == 0 and Template.objects.count() == 0


def test_the_command_prints_every_problem_with_its_line(tmp_path: Path) -> None:
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"))
    path = tmp_path / "bad.yaml"
    path.write_text(TWO_PROBLEMS, encoding="utf-8")
    msgd("migrate", env=env)
    result = msgd("config", "load", str(path), env=env, check=False)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: not loaded, nothing changed:"
    assert [line.rsplit("(", 1)[-1] for line in lines[1:]] == ["line 5)", "line 8)", "line 8)", "line 13)"]
    assert lines[1] == "- operators[best].channels.email.port: must be a port number 1..65535, got '25x' (line 5)"


def test_a_template_error_does_not_hide_the_store_s_own_findings(db: str) -> None:
    errors = refused("templates:\n  - {owner: nobody, event: low_balance, body: '%(name'}\n"
                     "  - {owner: ghost, event: manual, body: ok}\n")
    assert errors == [
        'templates[0].body: line 1, column 1: "%(name" is not closed with ")" (line 2)',
        "templates[1].owner: no operator with code 'ghost' (in this file or the store) (line 3)",
    ]


# The admin's channel form, which runs the same model: tests/test_admin_channel_form.py
