"""The time zone people read times in: the admin, ``msgd log`` and the API.

``MSGD_TIME_ZONE`` (an IANA name such as ``Europe/Moscow``) or, when unset, the
server's own zone (read by tzlocal from ``TZ``, ``/etc/timezone`` or
``/etc/localtime``), else UTC. Times are stored in UTC; they are shown in this
zone with the zone visible: ``2026-11-27 13:51:42 MSK`` for a person,
``2026-11-27T13:51:42.123456+03:00`` (ISO 8601 with the offset) for a program.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from functools import lru_cache


class BadTimeZone(ValueError):
    """MSGD_TIME_ZONE does not name a zone of the IANA database."""


def zone_name(env: dict[str, str] | None = None) -> str:
    """The configured zone's IANA name; BadTimeZone when MSGD_TIME_ZONE names none."""
    configured = ((env if env is not None else os.environ).get("MSGD_TIME_ZONE") or "").strip()
    if configured:
        try:
            zoneinfo.ZoneInfo(configured)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise BadTimeZone(f"MSGD_TIME_ZONE={configured!r} is not a time zone name such as"
                              " Europe/Moscow (see /usr/share/zoneinfo)") from None
        return configured
    return _server_zone()


@lru_cache(maxsize=1)
def _server_zone() -> str:
    try:
        import tzlocal

        name = str(tzlocal.get_localzone_name() or "")
        zoneinfo.ZoneInfo(name)
        return name
    except Exception:  # noqa: BLE001 - no readable zone on this machine: UTC, as stored
        return "UTC"


def zone(env: dict[str, str] | None = None) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(zone_name(env))


def local(when: dt.datetime, tz: dt.tzinfo | None = None) -> dt.datetime:
    """``when`` (aware; naive is taken as UTC) in the configured zone (or ``tz``)."""
    aware = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(tz or zone())


def shown(when: dt.datetime | None, tz: dt.tzinfo | None = None) -> str:
    """For a person: ``2026-11-27 13:51:42 MSK`` (the zone's abbreviation, or its offset
    such as ``+05`` where the zone has no abbreviation); ``-`` for None."""
    if when is None:
        return "-"
    there = local(when, tz)
    return f"{there:%Y-%m-%d %H:%M:%S} {there.tzname() or there.strftime('%z')}"


def iso(when: dt.datetime | None, tz: dt.tzinfo | None = None) -> str | None:
    """For a program: ISO 8601 with the offset of the configured zone; None for None."""
    return None if when is None else local(when, tz).isoformat()
