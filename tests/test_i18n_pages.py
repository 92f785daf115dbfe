"""Every admin page in Russian and in English (issue 13, point 1): Django's test client asks with
``Accept-Language``; the Russian page carries Russian text and none of msgd's English texts
left untranslated, the English one none of msgd's Russian texts. The page list is the one
tests/test_staff_access.py checks per role."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from msgd.i18n import LOCALE_DIR
from tests.test_staff_access import client_for, embedded, pages, user, world  # noqa: F401 - fixtures

CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]{3,}")


@pytest.fixture(autouse=True)
def _language_kept() -> Any:
    """The pages' requests activate their language; it must not stay active for the next test
    (tests/test_resend.py read its reasons in Russian after this module)."""
    from django.utils import translation

    with translation.override(None):
        yield


class _Text(HTMLParser):
    """What a person reads: text outside scripts and styles, and the words of buttons, titles,
    placeholders and option labels."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        a = dict(attrs)
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.parts.append(str(a["value"]))
        for name in ("title", "placeholder", "aria-label"):
            if a.get(name):
                self.parts.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _catalog() -> Any:
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.po").open("rb") as f:
        return read_po(f, locale="ru")


def _telling(catalog: Any) -> tuple[list[tuple[str, re.Pattern[str]]], list[tuple[str, re.Pattern[str]]]]:
    """Patterns for msgd's English texts and their Russian ones that may not appear in a page of
    the other language: whole texts with their placeholders as wildcards, leaving out texts
    that are the same in both languages (``msgd``, ``id``) or that occur inside the other
    language's texts; for Russian, phrases only (a single word may be the data's)."""
    pairs = []
    for m in catalog:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        pairs += [(i, s) for i in ids for s in strings if s]
    every_ru = "\n".join(s for _i, s in pairs)
    every_en = "\n".join(i for i, _s in pairs)

    def pattern(text: str) -> re.Pattern[str]:
        parts = re.split(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdfr]|%[sd]", text)
        return re.compile(r"(?<!\w)" + r".{1,200}?".join(re.escape(p) for p in parts) + r"(?!\w)")

    english = [(i, pattern(i)) for i, s in pairs if i != s and not pattern(i).search(every_ru)]
    # Russian single words may be the data's (a sample message's text): phrases only.
    russian = [(s, pattern(s)) for i, s in pairs if i != s and len(s.split()) > 1 and not pattern(s).search(every_en)]
    return english, russian


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_admin_page_speaks_the_browsers_language(world: dict[str, Any], lang: str) -> None:  # noqa: F811
    english, russian = _telling(_catalog())
    c = client_for(user("boss", superuser=True))
    every = {"index": "/admin/", **pages(world), "operator": f"/admin/msgd/operator/{world['best'].id}/change/",
             "users": "/admin/auth/user/", "log filtered": "/admin/msgd/message/?state__exact=failed"}
    checked = 0
    for name, path in every.items():
        resp = c.get(path, HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9" if lang == "ru" else "en-US,en;q=0.9")
        assert resp.status_code == 200, (name, resp.status_code)
        html = resp.content.decode()
        assert f'<html lang="{lang}"' in html, name
        text = visible_text(html)
        if lang == "ru":
            assert len(CYRILLIC_WORD.findall(text)) >= 10, (name, text[:500])
            left = sorted({msgid for msgid, p in english if p.search(text)})
            assert not left, f"{name} ({path}): English left in the Russian page: {left}"
        else:
            left = sorted({msgstr for msgstr, p in russian if p.search(text)})
            assert not left, f"{name} ({path}): Russian in the English page: {left}"
        checked += 1
    assert checked == len(every)


def test_the_russian_pages_use_the_manuals_terms(world: dict[str, Any]) -> None:  # noqa: F811
    """What an operator knows from the original's Russian interface."""
    c = client_for(user("boss", superuser=True))
    ru = {"HTTP_ACCEPT_LANGUAGE": "ru"}
    form = visible_text(c.get(f"/admin/msgd/template/{world['tpl_best'].id}/change/", **ru).content.decode())
    for term in ("Текст заголовка", "Текст шаблона", "Отправлять сообщение", "Отправлять каждый день",
                 "Статус абонента", "Использовать шаблонизатор django", "Тип отправки"):
        assert term.lower() in form.lower(), term
    operator = visible_text(c.get(f"/admin/msgd/operator/{world['best'].id}/change/", **ru).content.decode())
    for term in ("Начало тихого часа", "Окончание тихого часа", "Количество попыток отправки",
                 "Предупреждать о блокировке за n дней", "Заголовок сообщения"):
        assert term.lower() in operator.lower(), term
    log = visible_text(c.get("/admin/msgd/message/", **ru).content.decode())
    assert "Журнал сообщений" in visible_text(c.get("/admin/", **ru).content.decode())
    assert "ошибка отправки" in log  # the state "failed"
    manual = visible_text(c.get("/admin/tools/manual-send/", **ru).content.decode())
    assert "Номер SMS для оповещений" in manual and "Email для оповещений" in manual
