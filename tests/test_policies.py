"""Quiet hours, retry backoff, topology names and secret redaction (pure functions)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from msgd import topology as topo
from msgd.quiet import quiet_delay
from msgd.redact import MASK, redact, redact_text, redact_url, register_secrets
from msgd.retry import backoff

MSK = ZoneInfo("Europe/Moscow")


def at(hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 27, hh, mm, tzinfo=MSK)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(23, 0), 9 * 3600),  # inside, before midnight
        (at(3, 30), 4.5 * 3600),  # inside, after midnight
        (at(8, 0), None),  # the end is exclusive
        (at(12, 0), None),
        (at(22, 0), 10 * 3600),  # the start is inclusive
    ],
)
def test_quiet_hours_across_midnight(now: dt.datetime, expected: float | None) -> None:
    assert quiet_delay(dt.time(22), dt.time(8), MSK, now) == expected


def test_quiet_hours_same_day_window_and_other_time_zone() -> None:
    start, end = dt.time(13), dt.time(14)
    utc_now = dt.datetime(2026, 11, 27, 10, 30, tzinfo=dt.UTC)  # 13:30 in Moscow
    assert quiet_delay(start, end, MSK, utc_now) == 30 * 60
    assert quiet_delay(start, end, ZoneInfo("Asia/Yekaterinburg"), utc_now) is None  # 15:30 there


def test_no_quiet_hours_when_not_set_or_empty() -> None:
    assert quiet_delay(None, dt.time(8), MSK, at(3)) is None
    assert quiet_delay(dt.time(8), dt.time(8), MSK, at(8)) is None


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    first = [backoff(1, 30, 3600) for _ in range(50)]
    third = [backoff(3, 30, 3600) for _ in range(50)]
    assert all(24 <= d <= 36 for d in first)
    assert all(96 <= d <= 144 for d in third)
    assert all(d <= 3600 * 1.2 for d in (backoff(30, 30, 3600) for _ in range(20)))
    assert backoff(1, 1, 10, retry_after=120) == 120


def test_lanes_and_queue_names() -> None:
    assert topo.lane_for("password_reset", ("password_reset",)) == "tx"
    assert topo.lane_for("days_before_block", ("password_reset",)) == "bulk"
    assert topo.sender_queues("msgd", "sms") == ["msgd.send.sms.tx", "msgd.send.sms.bulk"]
    assert "status" in topo.internal_routes(["sms"])


def test_redaction_masks_known_values_keys_and_url_credentials() -> None:
    register_secrets(["s3cr3t-pass"])
    text = "HTTPSConnectionPool(host='gw', port=443): /send.php?login=best&psw=hunter22&mes=hi s3cr3t-pass"
    out = redact_text(text)
    assert "hunter22" not in out and "s3cr3t-pass" not in out
    assert "login=best" in out and "mes=hi" in out
    assert redact_url("amqp://guest:guest@127.0.0.1:5672//") == f"amqp://guest:{MASK}@127.0.0.1:5672//"
    assert redact({"password": "x1", "nested": [{"api_key": "k"}], "name": "Иван"}) == {
        "password": MASK, "nested": [{"api_key": MASK}], "name": "Иван",
    }
    assert "AAFmQXtNzLk" not in redact_text("/bot1876073174:AAFmQXtNzLk_aCFguXk6ZX0EfamGhQz9aps/getMe")
