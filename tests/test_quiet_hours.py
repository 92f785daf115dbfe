"""Quiet hours on days with a daylight-saving transition: the release is a real instant.

The property tests check ``quiet_delay`` against a brute-force oracle that walks
the clock minute by minute (windows and tz database offsets since 1980 are whole
minutes, so the first outside minute is the exact release).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgd.quiet import quiet_delay

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)


def released(start: dt.time, end: dt.time, tz: ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    wait = quiet_delay(start, end, tz, now)
    return None if wait is None else (now.astimezone(UTC) + dt.timedelta(seconds=wait)).astimezone(tz)


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *,
          fold: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        # the table: 22:00-08:00
        (BERLIN, local(BERLIN, 2026, 3, 28, 23), "2026-03-29 08:00 +0200"),  # spring forward that night
        (BERLIN, local(BERLIN, 2026, 3, 29, 1, 30), "2026-03-29 08:00 +0200"),  # half an hour before the jump
        (BERLIN, local(BERLIN, 2026, 10, 24, 23), "2026-10-25 08:00 +0100"),  # fall back that night
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 22, 30), "2026-03-08 08:00 -0400"),
        # siblings: inside the repeated hour (both times), after the jump, southern hemisphere,
        # a 30-minute shift (Lord Howe) and a zone whose nights are never shifted
        (BERLIN, local(BERLIN, 2026, 10, 25, 2, 30, fold=0), "2026-10-25 08:00 +0100"),
        (BERLIN, local(BERLIN, 2026, 10, 25, 2, 30, fold=1), "2026-10-25 08:00 +0100"),
        (BERLIN, local(BERLIN, 2026, 3, 29, 3, 30), "2026-03-29 08:00 +0200"),
        (ZoneInfo("Australia/Sydney"), local(ZoneInfo("Australia/Sydney"), 2026, 4, 4, 23),
         "2026-04-05 08:00 +1000"),
        (ZoneInfo("Australia/Sydney"), local(ZoneInfo("Australia/Sydney"), 2026, 10, 3, 23),
         "2026-10-04 08:00 +1100"),
        (ZoneInfo("Australia/Lord_Howe"), local(ZoneInfo("Australia/Lord_Howe"), 2026, 10, 3, 23),
         "2026-10-04 08:00 +1100"),
        (ZoneInfo("Europe/Moscow"), local(ZoneInfo("Europe/Moscow"), 2026, 3, 28, 23), "2026-03-29 08:00 +0300"),
    ],
)
def test_a_night_window_ends_at_its_local_end_on_transition_nights(
    tz: ZoneInfo, now: dt.datetime, expected: str
) -> None:
    release = released(dt.time(22), dt.time(8), tz, now)
    assert release is not None and f"{release:%Y-%m-%d %H:%M %z}" == expected


def test_the_delay_is_real_elapsed_time() -> None:
    # 23:00 CET to 08:00 CEST is 8 hours of real time, not 9 (nor the 10 of a wall clock)
    assert quiet_delay(dt.time(22), dt.time(8), BERLIN, local(BERLIN, 2026, 3, 28, 23)) == 8 * 3600
    assert quiet_delay(dt.time(22), dt.time(8), BERLIN, local(BERLIN, 2026, 10, 24, 23)) == 10 * 3600


@pytest.mark.parametrize(
    ("start", "end", "now", "expected"),
    [
        # the end does not exist that night: the window ends when the clock jumps past it
        (dt.time(22), dt.time(2, 30), local(BERLIN, 2026, 3, 29, 1, 30), "2026-03-29 03:00 +0200"),
        (dt.time(22), dt.time(2, 30), local(BERLIN, 2026, 3, 28, 22, 0), "2026-03-29 03:00 +0200"),
        (dt.time(1), dt.time(2, 0), local(BERLIN, 2026, 3, 29, 1, 59), "2026-03-29 03:00 +0200"),
        # the end occurs twice: the first occurrence ends the window
        (dt.time(22), dt.time(2, 30), local(BERLIN, 2026, 10, 25, 1, 30), "2026-10-25 02:30 +0200"),
        # the window starts inside the repeated hour: falling back jumps out of it
        (dt.time(2, 30), dt.time(8), local(BERLIN, 2026, 10, 25, 2, 45), "2026-10-25 02:00 +0100"),
    ],
)
def test_end_times_that_do_not_exist_or_occur_twice(
    start: dt.time, end: dt.time, now: dt.datetime, expected: str
) -> None:
    release = released(start, end, BERLIN, now)
    assert release is not None and f"{release:%Y-%m-%d %H:%M %z}" == expected


# --- property: the first instant outside the window, never inside, never late --------------

DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
             "America/Santiago", "Pacific/Chatham", "America/St_Johns", "Europe/London",
             "Asia/Tehran", "Europe/Moscow", "America/Havana", "Africa/Casablanca", "Pacific/Apia"]


def inside(start: dt.time, end: dt.time, instant: dt.datetime, tz: ZoneInfo) -> bool:
    t = instant.astimezone(tz).time().replace(tzinfo=None)
    return start <= t < end if start < end else (t >= start or t < end)


def offset_changes(tz: ZoneInfo, year: int) -> list[dt.datetime]:
    """Hours of ``year`` (UTC) after which ``tz`` has another offset (where to look hard)."""
    hour = dt.datetime(year, 1, 1, tzinfo=UTC)
    found = []
    while hour.year == year:
        nxt = hour + dt.timedelta(hours=1)
        if hour.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            found.append(hour)
        hour = nxt
    return found


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[ZoneInfo, dt.datetime]:
    # ("right/" zones count leap seconds: their offsets are not whole minutes, nobody runs on them)
    tz = draw(st.one_of(st.sampled_from(DST_ZONES).map(ZoneInfo),
                        st.timezones().filter(lambda z: not z.key.startswith("right/"))))
    year = draw(st.integers(1980, 2037))
    changes = offset_changes(tz, year)
    near_a_change = draw(st.booleans())
    if changes and near_a_change:  # half the draws: within a day of a clock change
        around = draw(st.sampled_from(changes))
        return tz, around + dt.timedelta(seconds=draw(st.integers(-30 * 3600, 4 * 3600)))
    start = dt.datetime(year, 1, 1, tzinfo=UTC)
    return tz, start + dt.timedelta(seconds=draw(st.integers(0, 365 * 86400 - 1)))


minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: dt.time(m // 60, m % 60))


@settings(max_examples=300, deadline=None)
@given(zone_and_instant(), minutes_of_day, minutes_of_day)
def test_release_is_the_first_instant_outside_the_window(
    zone_now: tuple[ZoneInfo, dt.datetime], start: dt.time, end: dt.time
) -> None:
    tz, now = zone_now
    wait = quiet_delay(start, end, tz, now)
    if start == end or not inside(start, end, now, tz):
        assert wait is None
        return
    assert wait is not None
    # the oracle: walk the real clock from the next whole minute until the local time is outside
    step = now.replace(second=0) + MINUTE if now.second else now
    while inside(start, end, step, tz):
        step += MINUTE
    expected = max(1.0, (step - now).total_seconds())
    assert wait == expected, f"released {now + dt.timedelta(seconds=wait)} instead of {step}"
    release = now + dt.timedelta(seconds=wait)
    assert not inside(start, end, release, tz)
    length = (dt.datetime.combine(dt.date(2000, 1, 2), end) - dt.datetime.combine(dt.date(2000, 1, 1), start))
    length %= dt.timedelta(days=1)
    shift = abs(release.astimezone(tz).utcoffset() - now.astimezone(tz).utcoffset())  # type: ignore[operator]
    if dt.timedelta(days=1) - length > dt.timedelta(hours=2):
        # (a clock change can skip a free part shorter than itself, e.g. 00:29-01:00 when
        # Santiago's midnight becomes 01:00: then the window goes on until the next day's end)
        assert dt.timedelta(seconds=wait) <= length + shift, "never more than the window's length late"


# --- the sender stage holds a message until the real end of the night ------------------------


@pytest.mark.store
def test_sender_stage_holds_until_the_local_end_on_a_transition_night(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.utils import timezone

    from msgd.broker.base import Delivery
    from msgd.envelope import message_id
    from msgd.settings import Settings
    from msgd.stage import Received
    from services.senders.base import Outbound
    from services.senders.stage import SenderStage
    from tests import seed

    op = seed.operator(timezone="Europe/Berlin", quiet_start=dt.time(22), quiet_end=dt.time(8))
    seed.sms_gateway(op, "https://gateway.invalid/")
    msg = Outbound(message_id=message_id("ev1", 1, "sms", "+79121234567"), event_id="ev1",
                   event_type="low_balance", operator_code="best", channel="sms", recipient="+79121234567",
                   body="Баланс", attempt=1, template_id=None).to_wire()
    night = local(BERLIN, 2026, 3, 28, 23).astimezone(UTC)
    monkeypatch.setattr(timezone, "now", lambda: night)  # the stage's clock on the night of the jump
    stage = SenderStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path)}), "sms")
    out = stage.handle([Received(Delivery(body=json.dumps(msg).encode(), queue="q",
                                          routing_key="send.sms.bulk", headers={}), msg)])
    [again] = [o for o in out if o.route.startswith("send.")]
    [report] = [json.loads(o.body) for o in out if o.route == "status"]
    assert again.delay == 8 * 3600
    assert report["state"] == "delayed"
    assert "held until 2026-03-29 08:00:00 Europe/Berlin" in report["reason"]
