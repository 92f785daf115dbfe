"""Russian and English (issue 13, point 1): the default language, catalogs that compile without
GNU gettext, and the browser's Accept-Language choosing the admin's language."""

from __future__ import annotations

import gettext
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from msgd.i18n import LOCALE_DIR, BadLanguage, catalogs, compile_catalogs, default_language

ROOT = Path(__file__).resolve().parent.parent
RU_PO = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.po"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "en"),
    ({"MSGD_LANGUAGE": "ru"}, "ru"),
    ({"MSGD_LANGUAGE": "RU"}, "ru"),
    ({"MSGD_LANGUAGE": "ru-RU"}, "ru"),
    ({"MSGD_LANGUAGE": "en", "LANG": "ru_RU.UTF-8"}, "en"),
    ({"LANG": "ru_RU.UTF-8"}, "ru"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "ru_RU.UTF-8"}, "en"),
    ({"LC_MESSAGES": "ru_RU.UTF-8", "LANG": "en_GB.UTF-8"}, "ru"),
])
def test_the_default_language(env: dict[str, str], expected: str) -> None:
    assert default_language(env) == expected


@pytest.mark.parametrize("value", ["de", "russian", "ру"])
def test_a_language_msgd_does_not_speak_is_refused_by_name(value: str) -> None:
    with pytest.raises(BadLanguage, match="MSGD_LANGUAGE.*use ru or en"):
        default_language({"MSGD_LANGUAGE": value})


def test_a_bad_msgd_language_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "MSGD_LANGUAGE": "de", "MSGD_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    done = subprocess.run([sys.executable, "-m", "msgd", "migrate"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "msgd: MSGD_LANGUAGE='de' is not a language msgd speaks: use ru or en"


def test_catalogs_compile_without_gnu_gettext(tmp_path: Path) -> None:
    """Babel compiles them: no msgfmt on PATH (a fresh machine), and the result is a catalog
    Python's own gettext reads with the Russian texts."""
    code = ("import sys; from pathlib import Path; from msgd.i18n import compile_catalogs;"
            "print(len(compile_catalogs(target=Path(sys.argv[1]))))")
    env = {**os.environ, "PATH": str(tmp_path / "no-tools")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(catalogs()) >= 1
    with (tmp_path / "ru" / "LC_MESSAGES" / "django.mo").open("rb") as f:
        ru = gettext.GNUTranslations(f)
    assert ru.gettext("Message log") == "Журнал сообщений"
    assert ru.ngettext("%(counter)s message is skipped:", "%(counter)s messages are skipped:", 5) \
        == "%(counter)s сообщений пропущено:"


def test_only_a_changed_catalog_is_compiled_again(tmp_path: Path) -> None:
    base = tmp_path / "locale"
    (base / "ru" / "LC_MESSAGES").mkdir(parents=True)
    po = base / "ru" / "LC_MESSAGES" / "django.po"
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Yes"\nmsgstr "Да"\n',
                  encoding="utf-8")
    assert compile_catalogs(base) == [po.with_suffix(".mo")]
    assert compile_catalogs(base) == []  # up to date: nothing written
    mo_time = po.with_suffix(".mo").stat().st_mtime
    po.write_text(po.read_text(encoding="utf-8").replace("Да", "Ага"), encoding="utf-8")
    os.utime(po, (mo_time + 5, mo_time + 5))
    assert compile_catalogs(base) == [po.with_suffix(".mo")]
    with po.with_suffix(".mo").open("rb") as f:
        assert gettext.GNUTranslations(f).gettext("Yes") == "Ага"


def test_a_fuzzy_entry_is_left_out_as_msgfmt_leaves_it(tmp_path: Path) -> None:
    from msgd.i18n import compile_catalog

    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n#, fuzzy\nmsgid "Yes"\n'
                  'msgstr "Нет"\n\nmsgid "No"\nmsgstr "Нет"\n', encoding="utf-8")
    assert compile_catalog(po, tmp_path / "x.mo") == 1
    with (tmp_path / "x.mo").open("rb") as f:
        t = gettext.GNUTranslations(f)
    assert (t.gettext("Yes"), t.gettext("No")) == ("Yes", "Нет")


def test_the_russian_catalog_has_no_untranslated_or_fuzzy_entry() -> None:
    """Every msgid of ours has a Russian text (every plural form), none marked fuzzy, and the
    placeholders of the English text are all in the Russian one."""
    import re

    from babel.messages.pofile import read_po

    with RU_PO.open("rb") as f:
        catalog = read_po(f, locale="ru")
    assert len(catalog) > 100
    placeholder = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdfr]|\{\w*\}")
    bad = []
    for m in catalog:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy or not all(strings) or (len(ids) == 2 and len(strings) != 4):
            bad.append(ids[0])
        elif any(set(placeholder.findall(ids[-1])) - set(placeholder.findall(s)) for s in strings):
            bad.append(f"placeholders: {ids[0]}")
    assert not bad, bad


def test_the_browser_chooses_the_admin_language(db: str) -> None:
    from django.test import Client

    c = Client()
    ru = c.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="ru"' in ru and "Имя пользователя" in ru
    en = c.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9,ru;q=0.5").content.decode()
    assert '<html lang="en"' in en and "Username" in en


@pytest.mark.parametrize(("setting", "marker"), [("ru", "Имя пользователя"), ("en", "Username")])
def test_msgd_language_is_the_admin_language_when_the_browser_asks_for_neither(tmp_path: Path, setting: str,
                                                                               marker: str) -> None:
    code = ("import sys; from msgd import store; store.setup(sys.argv[1]);"
            "from django.test import Client;"
            "print(Client().get('/admin/login/', HTTP_ACCEPT_LANGUAGE='de-DE,de;q=0.9').content.decode())")
    env = {**os.environ, "MSGD_LANGUAGE": setting}
    done = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path / 'x.sqlite3'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f'<html lang="{setting}"' in done.stdout and marker in done.stdout


# -- every text msgd marks for translation is in the Russian catalog -----------------------------------

KEYWORDS = {"_": None, "gettext": None, "gettext_lazy": None, "ngettext": (1, 2), "ngettext_lazy": (1, 2),
            "pgettext": ((1, "c"), 2), "pgettext_lazy": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
            "npgettext_lazy": ((1, "c"), 2, 3)}
_TAG = re.compile(r"""\{%\s*(?:translate|trans)\s+(?P<q>["'])(?P<text>.*?)(?P=q)(?:\s+context\s+(?P<cq>["'])"""
                  r"""(?P<ctx>.*?)(?P=cq))?[^%]*%\}""", re.S)
_BLOCK = re.compile(r"\{%\s*blocktranslate\b(?P<args>[^%]*)%\}(?P<body>.*?)\{%\s*endblocktranslate\s*%\}", re.S)
_UNDERSCORE = re.compile(r"""_\((?P<q>["'])(?P<text>.*?)(?P=q)\)""")
_VAR = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def template_messages(text: str) -> set[tuple[str | None, str]]:
    """The msgids of a Django template, as Django's makemessages writes them."""
    out: set[tuple[str | None, str]] = set()
    for m in _TAG.finditer(text):
        out.add((m["ctx"], m["text"]))
    for m in _BLOCK.finditer(text):
        singular = m["body"].split("{% plural %}")[0]
        ctx = re.search(r"""context\s+["'](.*?)["']""", m["args"])
        out.add((ctx[1] if ctx else None, _VAR.sub(r"%(\1)s", singular)))
    for m in _UNDERSCORE.finditer(text):
        out.add((None, m["text"]))
    return out


def source_messages() -> set[tuple[str | None, str]]:
    """Every (context, msgid) msgd's Python code and templates mark (Babel reads the Python)."""
    from babel.messages.extract import extract_python

    found: set[tuple[str | None, str]] = set()
    package = ROOT / "msgd"
    for path in package.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        with path.open("rb") as f:
            for _line, func, args, _comments in extract_python(f, KEYWORDS.keys(), [], {}):
                spec = KEYWORDS[func]
                values = args if isinstance(args, tuple) else (args,)
                if spec and isinstance(spec[0], tuple):  # (context, msgid, ...)
                    if isinstance(values[0], str) and isinstance(values[1], str):
                        found.add((values[0], values[1]))
                elif isinstance(values[0], str):
                    found.add((None, values[0]))
    for path in package.rglob("*.html"):
        found |= template_messages(path.read_text(encoding="utf-8"))
    return found


def test_every_text_msgd_marks_has_a_russian_text() -> None:
    from babel.messages.pofile import read_po

    with RU_PO.open("rb") as f:
        catalog = read_po(f, locale="ru")
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0])
                  for m in catalog if m.id and m.string and not m.fuzzy}
    found = source_messages()
    assert len(found) > 200
    missing = sorted(found - translated, key=lambda cm: cm[1])
    assert not missing, f"not in {RU_PO.relative_to(ROOT)} (msgd i18n extract, then translate): {missing}"


def test_the_first_start_password_speaks_the_staffs_language(db: str) -> None:
    """The one-time password of the first admin, printed at first start, in MSGD_LANGUAGE."""
    import io

    from django.contrib.auth import get_user_model
    from django.utils import translation

    from msgd.web.server import ensure_admin

    for lang, words in (("ru", "создана первая учётная запись администратора"), ("en", "created the first admin")):
        get_user_model().objects.all().delete()
        out = io.StringIO()
        with translation.override(lang):
            password = ensure_admin(out)
        assert password and words in out.getvalue() and password in out.getvalue(), out.getvalue()
