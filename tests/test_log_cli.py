"""``msgd log`` and ``msgd resend`` as a new user meets them: text and ``--json`` in one order
(oldest first, the newest ``--limit``), a short message id and the operator in each text line,
``msgd resend --id`` taking that short id, outbox paths under the current directory shown
relative to it, and ``msgd resend``'s own lines plain (no log line with a zoneless time)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path

from tests import seed
from tests.support import ROOT, msgd
from tests.test_staff_access import message
from tests.test_staff_cli import env_for

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


def test_text_and_json_share_one_order_and_the_text_names_id_and_operator(db: str, tmp_path: Path) -> None:
    seed.operator("best")
    seed.operator("north")
    made = [message(operator=("best", "north")[i % 2], created_at=T0 + dt.timedelta(minutes=i),
                    updated_at=T0, reason=f"reason {i}") for i in range(5)]
    env = env_for(db, tmp_path, MSGD_TIME_ZONE="Europe/Moscow")
    lines = msgd("log", "--limit", "3", env=env).stdout.splitlines()
    rows = json.loads(msgd("log", "--limit", "3", "--json", env=env).stdout)
    newest = made[2:]  # the newest three, oldest first
    assert [r["id"] for r in rows] == [str(m.id) for m in newest]
    assert [line.split()[3] for line in lines] == [m.id.hex[:8] for m in newest], lines
    assert [line.split()[4] for line in lines] == [m.operator_code for m in newest]
    assert [line.rsplit(" ", 2)[1:] for line in lines] == [["reason", str(i)] for i in (2, 3, 4)]
    assert lines[0].startswith("2026-11-27 13:02:00 MSK ")
    assert all(len(line) <= 125 + 80 for line in lines)
    help_text = msgd("log", "--help", env=env).stdout
    assert "oldest first" in " ".join(help_text.split())


def test_outbox_paths_under_the_current_directory_are_shown_relative(db: str, tmp_path: Path) -> None:
    seed.operator("best")
    inside = f"written to {ROOT}/var/outbox/20261127T100000-sms-x.txt"
    outside = "written to /elsewhere/outbox/20261127T100000-sms-y.txt"
    a = message(state="sent", reason=inside, created_at=T0, updated_at=T0)
    message(state="sent", reason=outside, created_at=T0 + dt.timedelta(seconds=1), updated_at=T0)
    env = env_for(db, tmp_path)
    text = msgd("log", env=env).stdout  # msgd runs in ROOT (tests/support.py)
    assert "sent        -                   written to var/outbox/20261127T100000-sms-x.txt\n" in text, text
    assert outside in text and str(ROOT) not in text
    (row, _) = json.loads(msgd("log", "--json", env=env).stdout)
    assert row["id"] == str(a.id) and row["reason"] == inside  # the stored reason is whole


def test_resend_takes_the_short_id_and_prints_plain_lines(db: str, tmp_path: Path) -> None:
    from msgd.store.models import Message

    seed.operator("best")
    failed = message(id=uuid.UUID("3f0c1a2b-0000-4000-8000-000000000001"), fault="gateway")
    twin = message(id=uuid.UUID("3f0c1a2b-9000-4000-8000-000000000002"), fault="gateway")
    env = env_for(db, tmp_path, MSGD_TIME_ZONE="Europe/Moscow", MSGD_LOG_FORMAT="console")

    shown = msgd("log", env=env).stdout
    assert shown.count(" 3f0c1a2b best ") == 2
    ambiguous = msgd("resend", "--id", "3f0c1a2b", env=env, check=False)
    assert ambiguous.returncode == 2 and "2 messages have ids starting with '3f0c1a2b'" in ambiguous.stderr
    assert "give more of the id" in ambiguous.stderr and not Message.objects.filter(resend_of__isnull=False).exists()
    for bad, words in [("ffffeeee", "no message has an id starting with 'ffffeeee'"),
                       ("not-an-id", "'not-an-id' is not a message id")]:
        refused = msgd("resend", "--id", bad, env=env, check=False)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr

    done = msgd("resend", "--id", "3f0c1a2b-0", "--id", str(twin.id), env=env)
    out = done.stdout.splitlines()
    assert sorted(out[:2]) == [f"sent again: {failed.id} -> {Message.objects.get(resend_of=failed).id}",
                       f"sent again: {twin.id} -> {Message.objects.get(resend_of=twin).id}"], done.stdout
    assert out[-1] == "2 sent again"
    assert "[info" not in done.stdout  # a structlog line is not the command's output
    for line in done.stderr.splitlines():  # log lines, if any, carry their zone
        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line):
            assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d MSK ", line), line
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d MSK \[info +\] message sent again", done.stderr, re.M), \
        done.stderr
