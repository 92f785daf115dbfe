"""Quiet hours: nothing is sent inside the operator's window; messages wait for its end.

The window is a range of local wall-clock times (22:00-08:00 crosses midnight).
On days with a daylight-saving transition the wall clock jumps, so the release
is computed as a real instant (in UTC), never by subtracting wall-clock times:

* spring forward (Europe/Berlin, 2026-03-29 02:00 CET -> 03:00 CEST): the night
  is an hour shorter and a window ending at 08:00 ends at 08:00 CEST; a window
  ending at a time that does not exist that night (02:30) ends when the clock
  jumps past it (03:00 CEST);
* fall back (2026-10-25 03:00 CEST -> 02:00 CET): the night is an hour longer;
  an end time that occurs twice ends the window at its first occurrence.

Nothing is ever released inside the window: when a clock change skips the
whole free part of a day (a 00:29-01:00 gap in a 01:00-00:29 window, on a night
Santiago jumps from 00:00 to 01:00), the message waits for the next day's end.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_UTC = dt.UTC
_SAMPLE = dt.timedelta(hours=1)  # UTC offsets never change twice within an hour


def quiet_delay(
    start: dt.time | None, end: dt.time | None, tz: ZoneInfo, now: dt.datetime
) -> float | None:
    """Seconds until the quiet window ends, or None when sending is allowed now.

    ``start``/``end`` are local wall-clock times in ``tz`` (the end is exclusive; a
    start after the end crosses midnight); ``now`` is an aware datetime. The
    answer is real elapsed time up to the first instant at which the local time is
    outside the window (at least 1 s, the delay ladder's resolution).
    """
    if start is None or end is None or start == end:
        return None
    now = now.astimezone(_UTC)
    if not _inside(start, end, now.astimezone(tz)):
        return None
    return max(1.0, (release_at(start, end, tz, now) - now).total_seconds())


def release_at(start: dt.time, end: dt.time, tz: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The first instant (UTC) after ``now`` at which the local time in ``tz`` is
    outside the window ``start``-``end``; ``now`` must be inside it.

    The local time leaves the window either by reaching ``end`` (the first
    occurrence of that wall time after ``now`` that exists) or by a clock change
    that jumps out of it (a non-existent end time, or a fall-back out of a window
    that starts inside the repeated hour), whichever comes first.
    """
    end_at = _next_wall_time(end, tz, now)
    for jump in _offset_changes(tz, now, end_at):
        if not _inside(start, end, jump.astimezone(tz)):
            return jump
    return end_at


def _inside(start: dt.time, end: dt.time, local: dt.datetime) -> bool:
    t = local.time().replace(tzinfo=None, fold=0)
    return start <= t < end if start < end else (t >= start or t < end)


def _next_wall_time(wall: dt.time, tz: ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first instant after ``after`` whose local time in ``tz`` is ``wall``."""
    day = after.astimezone(tz).date() - dt.timedelta(days=1)
    while True:
        for fold in (0, 1):  # the first occurrence of a repeated time first
            local = dt.datetime.combine(day, wall, tzinfo=tz).replace(fold=fold)
            instant = local.astimezone(_UTC)
            exists = instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)
            if exists and instant > after:
                return instant
        day += dt.timedelta(days=1)


def _offset_changes(tz: ZoneInfo, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Instants in (``since``, ``until``] at which ``tz`` changes its UTC offset, in order.

    zoneinfo has no public list of transitions: the offset is sampled hourly and
    each change is narrowed down to the second (tz database transitions fall on
    whole seconds).
    """
    changes = []
    lo = since
    while lo < until:
        hi = min(lo + _SAMPLE, until)
        if hi.astimezone(tz).utcoffset() != lo.astimezone(tz).utcoffset():
            changes.append(_first_with_offset_of(tz, lo, hi))
        lo = hi
    return changes


def _first_with_offset_of(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> dt.datetime:
    """The first instant in (``lo``, ``hi``] that has ``hi``'s UTC offset."""
    target = hi.astimezone(tz).utcoffset()
    second = dt.timedelta(seconds=1)
    while hi - lo > second:
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    whole = hi.replace(microsecond=0)
    return whole if whole > lo and whole.astimezone(tz).utcoffset() == target else hi
