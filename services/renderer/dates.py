"""Date-like event fields: text for ``slice`` and ``%(x)s``, a date for Django's ``date`` filter.

Billing sends dates as JSON strings (``"enough_to_date": "2026-12-05 00:00:00"``).
The manual cuts the time off with ``{{ enough_to_date|slice:":-9" }}``, so the
value must stay that exact text; ``{{ enough_to_date|date:"d.m.Y" }}`` needs a
date, and Django's ``date`` filter prints "" for a string.  A date-like value
becomes :class:`DateText`: a ``str`` (it prints, slices, compares and formats
exactly as the text billing sent) that also carries the parsed date or
datetime, which the sandbox's ``date``, ``time``, ``timesince`` and
``timeuntil`` filters use (``services.renderer.django_engine``).

Date-like means:

* a value matching ISO 8601 as billing writes it: ``YYYY-MM-DD``, optionally
  followed by ``T`` or a space, ``HH:MM``, ``:SS``, a fraction of up to 6
  digits and ``Z`` or a UTC offset (``+03:00``, ``+0300``, ``+03``);
* or, for a field whose name ends in ``_date`` (``block_date``,
  ``activate_date``), also the Russian ``DD.MM.YYYY`` with an optional
  ``HH:MM[:SS]``.

Text that looks like a date but is not one (``2026-02-30``) stays plain text.
A datetime with a UTC offset keeps it: ``date`` shows the wall time billing
sent, not the server's.
"""

from __future__ import annotations

import datetime as dt
import re

# Linear-time patterns: fixed-width digit groups, each optional part at most once.
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_RUSSIAN = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})(?: (\d{2}):(\d{2})(?::(\d{2}))?)?")


class DateText(str):
    """A date as billing wrote it: ``str`` behaviour, plus :meth:`when` (the parsed value)."""

    _when: dt.date

    def __new__(cls, text: str, when: dt.date) -> DateText:
        obj = super().__new__(cls, text)
        obj._when = when
        return obj

    def when(self) -> dt.date:
        """The parsed ``datetime.date`` or ``datetime.datetime``."""
        return self._when

    def __getnewargs__(self) -> tuple[str, dt.date]:  # type: ignore[override]  # copy, pickle
        return (str(self), self._when)


def parse_date(text: str, *, named_as_date: bool = False) -> dt.date | None:
    """The date or datetime ``text`` spells (see the module docstring), else None."""
    if len(text) > 40:
        return None
    if _ISO.fullmatch(text):
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text.replace(",", "."))
        except ValueError:
            return None
    m = _RUSSIAN.fullmatch(text) if named_as_date else None
    if m:
        day, month, year, hour, minute, second = m.groups()
        try:
            if hour is None:
                return dt.date(int(year), int(month), int(day))
            return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
        except ValueError:
            return None
    return None


def date_like(key: str | None, value: str) -> str:
    """``value`` as :class:`DateText` when it is date-like, else unchanged."""
    if isinstance(value, DateText):
        return value
    text = value.strip()
    # Most text is no date: both forms are at least 10 characters, ISO has "-" at 4 and the
    # Russian form "." at 2 (a cheap test before the patterns; the answer is the same).
    if len(text) < 10 or (text[4] != "-" and text[2] != "."):
        return value
    when = parse_date(text, named_as_date=bool(key) and str(key).endswith("_date"))
    return value if when is None else DateText(value, when)


def as_date(value: object) -> object:
    """What Django's date filters should see: the parsed value of a :class:`DateText`."""
    return value.when() if isinstance(value, DateText) else value


__all__ = ["DateText", "as_date", "date_like", "parse_date"]
