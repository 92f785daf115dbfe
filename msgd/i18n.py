"""Languages: Russian and English, the catalogs and the default language.

The admin speaks the language the browser asks for (``Accept-Language``, through Django's
``LocaleMiddleware``); when the browser asks for neither Russian nor English, and for what the
command line prints, the language is ``MSGD_LANGUAGE`` (``ru`` or ``en``), else the server's
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``ru_RU.UTF-8`` is Russian), else English.

msgd's own texts are in ``msgd/locale/<lang>/LC_MESSAGES/django.po`` (GNU gettext PO files).
Django reads compiled ``.mo`` files; they are not kept in git: ``compile_catalogs`` makes them
with Babel (a Python library, so a fresh machine needs no GNU gettext tools), when a ``.mo``
is missing or older than its ``.po``. ``msgd i18n compile`` runs it (``make install`` does), and
every process that sets Django up runs it too (a stat per catalog when nothing changed). When
the package directory is read-only the catalogs are compiled into a cache directory instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = (("ru", "Русский"), ("en", "English"))
CODES = tuple(code for code, _name in LANGUAGES)


class BadLanguage(ValueError):
    """MSGD_LANGUAGE names a language msgd does not speak."""


def default_language(env: dict[str, str] | None = None) -> str:
    """``ru`` or ``en``: MSGD_LANGUAGE, else the server's locale, else ``en``. BadLanguage when
    MSGD_LANGUAGE is set to anything else (``ru_RU``, ``ru-RU`` and ``RU`` read as ``ru``)."""
    source = env if env is not None else os.environ
    configured = (source.get("MSGD_LANGUAGE") or "").strip()
    if configured:
        code = _code(configured)
        if code is None:
            raise BadLanguage(f"MSGD_LANGUAGE={configured!r} is not a language msgd speaks: use ru or en")
        return code
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = (source.get(name) or "").strip()
        if value:  # the first one set decides, as in POSIX
            return _code(value) or "en"
    return "en"


def _code(value: str) -> str | None:
    head = value.lower().replace("-", "_").split(".")[0].split("@")[0].split("_")[0]
    return head if head in CODES else None


def catalogs(base: Path = LOCALE_DIR) -> list[Path]:
    """Every ``.po`` file under ``base`` (``<lang>/LC_MESSAGES/<domain>.po``)."""
    return sorted(base.glob("*/LC_MESSAGES/*.po"))


def compile_catalog(po: Path, mo: Path) -> int:
    """Compile one PO file into ``mo`` (written to a temporary file, then renamed: a process
    reading it meanwhile sees the old or the new one). Fuzzy entries are left out, as GNU
    msgfmt leaves them out. Returns the number of translated messages. Raises OSError when
    ``mo`` cannot be written, babel's PoFileError for a malformed PO file."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, abort_invalid=True)
    mo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=".msgd-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sum(1 for m in catalog if m.id and m.string and not m.fuzzy)


def _stale(po: Path, mo: Path) -> bool:
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def compile_catalogs(base: Path = LOCALE_DIR, target: Path | None = None, force: bool = False) -> list[Path]:
    """Compile every stale catalog of ``base`` into ``target`` (default: beside each ``.po``);
    returns the ``.mo`` files written. OSError when a target cannot be written."""
    written = []
    for po in catalogs(base):
        mo = (target / po.relative_to(base)).with_suffix(".mo") if target else po.with_suffix(".mo")
        if force or _stale(po, mo):
            compile_catalog(po, mo)
            written.append(mo)
    return written


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """Where catalogs are compiled when the package directory is read-only."""
    source = env if env is not None else os.environ
    base = source.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "msgd" / "locale"


def locale_paths() -> list[str]:
    """Django's ``LOCALE_PATHS``: the package's catalogs, compiled first where stale; the cache
    directory's copy when the package directory cannot be written."""
    try:
        compile_catalogs()
        return [str(LOCALE_DIR)]
    except OSError:
        cache = cache_dir()
        compile_catalogs(LOCALE_DIR, cache)
        return [str(cache)]
