"""Quiet hours: nothing is sent inside the operator's window; messages wait for its end."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def quiet_delay(
    start: dt.time | None, end: dt.time | None, tz: ZoneInfo, now: dt.datetime
) -> float | None:
    """Seconds until the quiet window ends, or None when sending is allowed now.

    A window whose start is after its end crosses midnight (22:00-08:00).
    """
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    until = dt.datetime.combine(local.date(), end, tzinfo=tz)
    if until <= local:
        until = dt.datetime.combine(local.date() + dt.timedelta(days=1), end, tzinfo=tz)
    return max(1.0, (until - local).total_seconds())
