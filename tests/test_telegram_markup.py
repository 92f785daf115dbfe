"""Telegram parse modes: values substituted into a template are escaped for the channel's
markup, the template's own markup survives, and data can no longer break a message.

The Bot API emulator here checks the markup as Telegram's formatting rules state them
(https://core.telegram.org/bots/api#formatting-options) and refuses what Telegram refuses.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.renderer.markup import channel_markup, escape_markdown_v2
from services.renderer.render import render
from services.senders.base import ChannelConfig
from tests import seed
from tests.support import (
    Pipeline,
    StageProcess,
    event,
    msgd,
    publish_with_pika,
    stage_env,
    wait_for,
)
from tests.test_sender_telegram import TOKEN, BotApi, Call

NASTY = 'ООО «Рога & Копыта» <VIP> "1" a_b *c* [d](e) ~f` >g #h +i -j =k |l {m} n. o! \\p'

HTML_TAGS = ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
             "pre", "blockquote", "tg-emoji")
_HTML_TOKEN = re.compile(r"<(/?)([a-z-]+)((?:\s[^<>]*)?)>|&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);|[<>&]")
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse ``text`` as HTML (None: it parses)."""
    open_tags: list[str] = []
    for m in _HTML_TOKEN.finditer(text):
        token = m.group(0)
        if token in "<>&":
            return f"unescaped {token!r} at {m.start()}"
        if token.startswith("&"):
            continue
        closing, tag = m.group(1), m.group(2)
        if tag not in HTML_TAGS:
            return f"unsupported tag {tag!r}"
        if not closing:
            open_tags.append(tag)
        elif not open_tags or open_tags.pop() != tag:
            return f"unbalanced </{tag}>"
    return f"unclosed <{open_tags[-1]}>" if open_tags else None


def html_shown(text: str) -> str:
    return html.unescape(re.sub(r"</?[a-z-]+(?:\s[^<>]*)?>", "", text))


def markdown_v2_problem(text: str) -> str | None:
    """Why Telegram would refuse ``text`` as MarkdownV2: a reserved character that is neither
    escaped nor one of the ``*bold*`` markers these tests' templates use."""
    unescaped = re.sub(r"\\[\x01-\x7e]", "", text)
    stray = [ch for ch in unescaped if ch in _MDV2_RESERVED and ch != "*"]
    if stray:
        return f"unescaped {stray[0]!r}"
    return "unbalanced *" if unescaped.count("*") % 2 else None


def markdown_v2_shown(text: str) -> str:
    return re.sub(r"\\([\x01-\x7e])|\*", lambda m: m.group(1) or "", text)


class StrictBotApi(BotApi):
    """The Bot API emulator, refusing markup Telegram cannot parse (as Telegram does: 400)."""

    def _answer(self, call: Call) -> Any:
        mode, text = call.payload.get("parse_mode"), str(call.payload.get("text", ""))
        problem = html_problem(text) if mode == "HTML" else markdown_v2_problem(text) \
            if mode == "MarkdownV2" else None
        if problem:
            return 400, {"ok": False, "error_code": 400,
                         "description": f"Bad Request: can't parse entities: {problem}"}
        return super()._answer(call)

    def shown(self) -> list[tuple[str | None, str]]:
        """(parse mode, text as the subscriber reads it) of each accepted message."""
        with self.lock:
            calls = [c.payload for c in self.calls if c.payload.get("_ok")]
        return [(p.get("parse_mode"), html_shown(p["text"]) if p.get("parse_mode") == "HTML"
                 else markdown_v2_shown(p["text"]) if p.get("parse_mode") == "MarkdownV2" else p["text"])
                for p in calls]


def the_event(name: str = NASTY, **abonent: Any) -> dict[str, Any]:
    return {"event_id": "e1", "type": "low_balance", "occurred_at": "2026-11-27T10:00:00+03:00",
            "operator": {"code": "best"},
            "abonent": {"id": 7, "name": name, "balance": 12.5, "currency": "руб.",
                        "enough_to_date": "2026-12-05 00:00:00", **abonent},
            "data": {"text": "a < b & c > d"}}


def tg(body: str, django: bool = False) -> dict[str, Any]:
    return {"id": 1, "name": "t", "subject": "", "body": body, "use_django": django}


# --- rendering ----------------------------------------------------------------------------------

STANDARD_HTML = "<b>%(name)s</b>, баланс <i>%(balance).2f %(currecy)s</i>\n%(text)s"
DJANGO_HTML = ('<b>{{ abonent.name }}</b>, баланс <i>{{ balance|floatformat:2 }} {{ currency }}</i>\n'
               '{{ text }} {% firstof abonent.nick abonent.name %} <a href="https://x.example/?n={{ name|urlencode }}">'
               'кабинет</a>')


@pytest.mark.parametrize("template", [tg(STANDARD_HTML), tg(DJANGO_HTML, django=True)])
def test_html_values_are_escaped_and_the_template_markup_survives(template: dict[str, Any]) -> None:
    text = render(template, the_event(), markup="HTML").body
    assert html_problem(text) is None, text
    shown = html_shown(text)
    assert shown.startswith(f"{NASTY}, баланс 12.50 руб.\na < b & c > d")
    assert text.startswith("<b>ООО «Рога &amp; Копыта» &lt;VIP&gt; &quot;1&quot;")  # the tags are markup
    if template["use_django"]:
        assert shown.endswith(f"{NASTY} кабинет")


STANDARD_MDV2 = "*%(name)s*, баланс %(balance).2f %(currecy)s\n%(text)s"
DJANGO_MDV2 = "*{{ abonent.name }}*, баланс {{ balance|floatformat:2 }} {{ currency }}\n{{ text }}"


@pytest.mark.parametrize("template", [tg(STANDARD_MDV2), tg(DJANGO_MDV2, django=True)])
def test_markdown_v2_values_are_escaped_and_the_template_markup_survives(template: dict[str, Any]) -> None:
    text = render(template, the_event(), markup="MarkdownV2").body
    assert markdown_v2_problem(text) is None, text
    assert markdown_v2_shown(text) == f"{NASTY}, баланс 12.50 руб.\na < b & c > d"
    assert text.startswith("*ООО «Рога & Копыта» <VIP\\> ")


def test_every_character_telegram_reserves_is_escaped_in_markdown_v2() -> None:
    reserved = "_*[]()~`>#+-=|{}.!\\"
    assert escape_markdown_v2(reserved) == "".join("\\" + ch for ch in reserved)
    assert escape_markdown_v2("Иванов 1") == "Иванов 1"


def test_legacy_markdown_escapes_its_four_characters() -> None:
    text = render(tg("_%(name)s_"), the_event(name="a_b*c`d[e] (f)."), markup="Markdown").body
    assert text == "_a\\_b\\*c\\`d\\[e] (f)._"


@pytest.mark.parametrize("template", [tg(STANDARD_HTML), tg(DJANGO_HTML, django=True)])
def test_plain_channels_and_telegram_without_parse_mode_are_not_escaped(template: dict[str, Any]) -> None:
    text = render(template, the_event(), markup=None).body
    assert NASTY in text and "&amp;" not in text


def test_subject_is_never_escaped_for_telegram() -> None:
    rendered = render({**tg("%(name)s"), "subject": "%(name)s"}, the_event(), markup="HTML")
    assert rendered.subject == NASTY and rendered.body.startswith("ООО «Рога &amp;")


def test_the_markup_is_the_parse_mode_of_the_main_telegram_settings() -> None:
    def cfg(mode: str | None) -> ChannelConfig:
        return ChannelConfig("telegram", {"parse_mode": mode} if mode else {}, {})

    assert channel_markup("telegram", [cfg("html"), cfg(None)]) == "HTML"
    assert channel_markup("telegram", [cfg("MARKDOWNV2")]) == "MarkdownV2"
    assert channel_markup("telegram", [cfg(None)]) is None
    assert channel_markup("telegram", []) is None
    assert channel_markup("sms", [cfg("HTML")]) is None


# --- through the pipeline --------------------------------------------------------------------


@pytest.fixture
def strict_api() -> Iterator[StrictBotApi]:
    a = StrictBotApi()
    a.start()
    yield a
    a.stop()


def telegram_settings(op: Any, api: BotApi, mode: str) -> None:
    from msgd.store.models import ChannelSettings

    ChannelSettings.objects.create(operator=op, channel="telegram", params={"api_url": api.url, "parse_mode": mode},
                                   secrets={"token": TOKEN})


def telegram_event(n: int, operator: str, chat: str) -> dict[str, Any]:
    e = event(n, sms=None, operator=operator)
    e["abonent"].update(name=NASTY, balance=12.5, enough_to_date="2026-12-05 00:00:00")
    e["abonent"]["contacts"]["telegram_id"] = chat
    e["data"] = {"text": "a < b & c > d"}
    return e


DATED = " до {{ enough_to_date|date:\"d.m.Y\" }}"


@pytest.mark.slow
def test_pipeline_sends_escaped_values_in_html_and_markdown_v2(
    pipeline: Pipeline, strict_api: StrictBotApi, rabbit_url: str, namespace: str,
) -> None:
    from msgd.store.models import Message

    html_op, md_op = seed.operator("best"), seed.operator("md")
    telegram_settings(html_op, strict_api, "HTML")
    telegram_settings(md_op, strict_api, "MarkdownV2")
    seed.template(channel="telegram", body=STANDARD_HTML, owner=html_op, name="html standard")
    seed.template(channel="telegram", body=DJANGO_HTML + DATED, owner=html_op, name="html django", use_django=True)
    seed.template(channel="telegram", body=STANDARD_MDV2, owner=md_op, name="md standard")
    seed.template(channel="telegram", body=DJANGO_MDV2 + DATED, owner=md_op, name="md django", use_django=True)
    pipeline.start("router", "renderer", "recorder", "sender:telegram")
    publish_with_pika(rabbit_url, namespace, [telegram_event(1, "best", "555001"), telegram_event(2, "md", "555002")])
    wait_for(lambda: Message.objects.filter(state="sent").count() == 4, timeout=60, what="4 Telegram messages sent")

    shown = sorted(strict_api.shown())
    assert [mode for mode, _ in shown] == ["HTML", "HTML", "MarkdownV2", "MarkdownV2"], "no plain-text fallback"
    texts = [text for _, text in shown]
    assert f"{NASTY}, баланс 12.50 руб.\na < b & c > d" in texts
    assert any(t.startswith(f"{NASTY}, баланс 12.50 руб.\na < b & c > d {NASTY} кабинет до 05.12.2026")
               for t in texts)
    assert f"{NASTY}, баланс 12.50 руб.\na < b & c > d до 05.12.2026" in texts
    assert all("plain text" not in m.reason for m in Message.objects.all())


@pytest.mark.slow
def test_embedded_pipeline_sends_escaped_values(tmp_path: Path, strict_api: StrictBotApi) -> None:
    var = tmp_path / "var"
    env = stage_env(MSGD_VAR_DIR=str(var))
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "operators": [{"code": "best", "name": "Лучший", "channels": {
            "telegram": {"api_url": strict_api.url, "token": TOKEN, "parse_mode": "HTML"}}}],
        "templates": [{"name": "html", "event": "low_balance", "channel": "telegram", "body": STANDARD_HTML},
                      {"name": "dj", "event": "low_balance", "channel": "telegram", "django": True,
                       "body": DJANGO_HTML + DATED}],
    }, ensure_ascii=False), encoding="utf-8")
    msgd("migrate", env=env)
    msgd("config", "load", str(config), env=env)
    proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
    try:
        msgd("publish", "-", env=env, stdin=json.dumps(telegram_event(3, "best", "555003"), ensure_ascii=False))
        wait_for(lambda: len(strict_api.shown()) == 2, timeout=60, what="2 Telegram messages accepted")
    finally:
        proc.stop()
    shown = sorted(strict_api.shown())
    assert [mode for mode, _ in shown] == ["HTML", "HTML"]
    assert shown[0][1] == f"{NASTY}, баланс 12.50 руб.\na < b & c > d"
    assert shown[1][1].endswith(f"{NASTY} кабинет до 05.12.2026")
