"""Choosing rows of the message log: one set of filters for ``msgd log``, ``msgd resend`` and
``msgd purge`` (the admin filters with its own list filters, the API with its parameters).

Times a person types are read in the configured zone (msgd/localtime.py): ``09:00`` is
today at 09:00 there, ``2026-11-30`` that day's midnight there, ``2026-11-30 09:00`` or
ISO 8601 with an offset as given, and ``3h`` / ``2d`` / ``180d`` / ``30m`` ago.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from msgd import localtime


@dataclass(frozen=True)
class LogFilter:
    """A filter of the message log: option name, model lookup, help for ``--help``."""

    name: str
    lookup: str
    help: str
    choices: tuple[str, ...] | None = None


def _states() -> tuple[str, ...]:
    from msgd.envelope import ALL_STATES

    return ALL_STATES


def _faults() -> tuple[str, ...]:
    from msgd.envelope import FAULTS

    return FAULTS


# Exact-match filters of msgd log / msgd resend; one line adds one.
LOG_FILTERS = (
    LogFilter("event", "event_id", "messages of this billing event (its event_id)"),
    LogFilter("abonent", "abonent_id", "messages to this subscriber (abonent id)"),
    LogFilter("state", "state", "messages in this state", _states()),
    LogFilter("fault", "fault", "failed messages of this fault class (README: Fault classes)", _faults()),
    LogFilter("operator", "operator_code", "messages of this operator (its code)"),
    LogFilter("channel", "channel", "messages on this channel (sms, email, telegram, push, ...)"),
    LogFilter("type", "event_type", "messages of this event type (low_balance, manual, ...)"),
)

_AGO = re.compile(r"([0-9]{1,6})\s*([mhdw])")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadTime(ValueError):
    """A time or age a person typed that msgd cannot read; the message says what it takes."""


def parse_age(text: str) -> dt.timedelta:
    """``180d``, ``12h``, ``30m``, ``2w`` as a duration; BadTime otherwise."""
    m = _AGO.fullmatch(text.strip().lower())
    if not m:
        raise BadTime(f"{text!r} is not an age such as 180d, 12h, 30m or 2w")
    return dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_when(text: str, now: dt.datetime | None = None, tz: dt.tzinfo | None = None) -> dt.datetime:
    """A moment a person typed (see the module docstring) as an aware datetime; BadTime otherwise."""
    raw = text.strip()
    zone = tz or localtime.zone()
    now = now or dt.datetime.now(dt.UTC)
    if _AGO.fullmatch(raw.lower()):
        return now - parse_age(raw)
    if m := _CLOCK.fullmatch(raw):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise BadTime(f"{text!r} is not a time of day")
        today = now.astimezone(zone).date()
        return dt.datetime.combine(today, dt.time(hour, minute), zone)
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadTime(f"{text!r} is not a time: give 09:00 (today), 2026-11-30, 2026-11-30 09:00,"
                      " an ISO 8601 time with its offset, or an age such as 3h") from None
    return when if when.tzinfo else when.replace(tzinfo=zone)


def select(qs: Any, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
           **exact: str | None) -> Any:
    """``qs`` narrowed by LOG_FILTERS (by name; None = not given) and a created_at window."""
    lookups = {f.name: f.lookup for f in LOG_FILTERS}
    for name, value in exact.items():
        if name not in lookups:
            raise TypeError(f"unknown log filter {name!r}")
        if value is not None:
            qs = qs.filter(**{lookups[name]: value})
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs


_HEX = re.compile(r"[0-9a-f]{1,32}")


def message_ids(qs: Any, given: list[str]) -> list[str]:
    """The whole ids of the messages ``given`` names in ``qs``: each a whole UUID or a prefix of
    its hex digits (``msgd log`` shows the first 8; dashes may be left out), as long as the
    prefix names exactly one message. LookupError, in words, for a prefix that names none or
    several, and for text that is no id."""
    import uuid

    found: list[str] = []
    for text in given:
        digits = text.strip().lower().replace("-", "")
        if not _HEX.fullmatch(digits):
            raise LookupError(f"{text!r} is not a message id: give the id msgd log shows (8 hex digits) or the whole one")
        low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
        ids = [str(i) for i in qs.filter(id__gte=low, id__lte=high).order_by("id").values_list("id", flat=True)[:3]]
        if not ids:
            raise LookupError(f"no message has an id starting with {text!r}")
        if len(ids) > 1:
            raise LookupError(f"{len(ids) if len(ids) < 3 else 'several'} messages have ids starting with {text!r}"
                              f" ({', '.join(ids[:2])}…): give more of the id")
        found.append(ids[0])
    return found


def add_arguments(parser: Any, *, window: bool = True) -> None:
    """The filters as ``--event``, ``--state``, ... options (and ``--since``/``--until``)."""
    for f in LOG_FILTERS:
        parser.add_argument(f"--{f.name}", choices=f.choices, help=f.help)
    if window:
        parser.add_argument("--since", metavar="WHEN",
                            help="created at or after: 09:00 (today), 2026-11-30, '2026-11-30 09:00', 3h (ago);"
                                 " read in MSGD_TIME_ZONE")
        parser.add_argument("--until", metavar="WHEN", help="created before (same forms as --since)")


def from_arguments(args: Any) -> dict[str, Any]:
    """The keyword arguments of ``select`` from parsed options; BadTime for a bad time."""
    out: dict[str, Any] = {f.name: getattr(args, f.name, None) for f in LOG_FILTERS}
    for name in ("since", "until"):
        value = getattr(args, name, None)
        out[name] = parse_when(value) if value else None
    return out
