"""The commands staff meet: `msgd log` (local time with its zone, cut reasons with "…", --json
with sender and details, option help), `msgd purge`, `msgd template list`, and a closed pipe
(issue 13 points 2, 5, 8)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import seed
from tests.support import ROOT, msgd, stage_env
from tests.test_staff_access import message

WHEN = dt.datetime(2026, 11, 27, 10, 51, 42, tzinfo=dt.UTC)


def env_for(db: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return stage_env(MSGD_DATABASE_URL=db, MSGD_VAR_DIR=str(tmp_path / "var"), MSGD_BROKER_URL="", **extra)


@pytest.fixture
def logged(db: str) -> Any:
    seed.operator("best")
    return message(state="failed", reason="gateway says: " + "the account balance is empty, top it up " * 4,
                   created_at=WHEN, updated_at=WHEN, sender="noc@best.example", gateway_message_id="gw-77", fault="gateway",
                   details={"segments": 2, "encoding": "UCS-2"})


def test_log_shows_local_time_with_its_zone(logged: Any, db: str, tmp_path: Path) -> None:
    moscow = msgd("log", env=env_for(db, tmp_path, MSGD_TIME_ZONE="Europe/Moscow")).stdout
    assert moscow.startswith(f"2026-11-27 13:51:42 MSK {logged.id.hex[:8]} best       low_balance"), moscow
    # the server's own zone when MSGD_TIME_ZONE is not set (tzlocal reads TZ)
    server = msgd("log", env=env_for(db, tmp_path, TZ="Asia/Yekaterinburg")).stdout
    assert server.startswith("2026-11-27 15:51:42 +05 "), server
    refused = msgd("log", env=env_for(db, tmp_path, MSGD_TIME_ZONE="Mars/Olympus"), check=False)
    assert refused.returncode == 2 and "MSGD_TIME_ZONE='Mars/Olympus' is not a time zone" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_log_cuts_reasons_with_an_ellipsis_and_json_has_everything(logged: Any, db: str, tmp_path: Path) -> None:
    env = env_for(db, tmp_path, MSGD_TIME_ZONE="Europe/Moscow")
    line = msgd("log", env=env).stdout.splitlines()[0]
    assert line.endswith("…") and "top it up" in line and len(line.split(" gateway ", 1)[1].strip()) == 80
    (row,) = json.loads(msgd("log", "--json", env=env).stdout)
    assert row["sender"] == "noc@best.example" and row["details"] == {"segments": 2, "encoding": "UCS-2"}
    assert row["gateway_message_id"] == "gw-77" and row["created_at"] == "2026-11-27T13:51:42+03:00"
    assert row["reason"] == logged.reason and row["fault"] == "gateway"  # whole in JSON
    details = msgd("log", "--details", env=env).stdout
    assert "SMS parts: 2" in details and "Gateway message id: gw-77" in details


def test_log_help_describes_every_option() -> None:
    from msgd.cli import parser

    (log,) = [a for a in parser()._subparsers._group_actions if a.dest == "command"]  # type: ignore[union-attr]
    for action in log.choices["log"]._actions:
        assert action.help, action.option_strings


def test_a_push_recipient_shows_as_its_service_host(db: str, tmp_path: Path) -> None:
    from django.test import Client

    from tests.test_staff_access import user

    seed.operator("best")
    sub = json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "BPUBKEY", "auth": "AUTHSECRET"}})
    m = message(channel="push", recipient=sub, created_at=WHEN, updated_at=WHEN)
    out = msgd("log", env=env_for(db, tmp_path)).stdout + msgd("log", "--json", env=env_for(db, tmp_path)).stdout
    c = Client()
    c.force_login(user("boss", superuser=True))
    pages = c.get("/admin/msgd/message/").content.decode() + c.get(f"/admin/msgd/message/{m.id}/change/").content.decode()
    for text in (out, pages):
        assert "push service fcm.googleapis.com" in text and "AUTHSECRET" not in text and "BPUBKEY" not in text


def test_purge_removes_only_old_rows_and_says_what(db: str, tmp_path: Path) -> None:
    from django.utils import timezone

    from msgd.resend import resend_id
    from msgd.store.models import Attempt, Claim, Message

    seed.operator("best")
    old = message(created_at=timezone.now() - dt.timedelta(days=200))
    Attempt.objects.create(message=old, number=1, state="failed", reason="x", at=old.created_at)
    Claim.objects.create(message_id=old.id, state="done", attempt=1, owner="s", updated_at=old.created_at)
    young = message(resend_of=old, id=uuid.UUID(resend_id(old.id, 1)))
    env = env_for(db, tmp_path, MSGD_TIME_ZONE="Europe/Moscow")
    dry = msgd("purge", "--older-than", "180d", "--dry-run", env=env).stdout
    assert dry.startswith("would remove 1 message(s), 1 attempt(s) and 1 send claim(s) created before ")
    assert " MSK; nothing else" in dry and Message.objects.count() == 2
    done = msgd("purge", "--older-than", "180d", env=env).stdout
    assert done.startswith("removed 1 message(s), 1 attempt(s) and 1 send claim(s)")
    assert list(Message.objects.values_list("id", "resend_of")) == [(young.id, None)]
    assert not Claim.objects.exists()
    bad = msgd("purge", "--older-than", "half a year", env=env, check=False)
    assert bad.returncode != 0 and "not an age such as 180d" in bad.stderr


def test_template_list_shows_ids_owners_events_channels(db: str, tmp_path: Path) -> None:
    op = seed.operator("best")
    own = seed.template("manual", None, body="%(text)s", owner=op, name="Ручная отправка")
    shared = seed.template("low_balance", "sms", name="Низкий баланс (SMS)", enabled=False)
    lines = msgd("template", "list", env=env_for(db, tmp_path)).stdout.splitlines()
    assert lines[0].split() == ["id", "event", "channel", "owner", "on", "name"]
    assert lines[1].split() == [str(own.id), "manual", "any", "best", "yes", "Ручная", "отправка"]
    assert lines[2].split() == [str(shared.id), "low_balance", "sms", "all", "no", "Низкий", "баланс", "(SMS)"]
    rows = json.loads(msgd("template", "list", "--json", env=env_for(db, tmp_path)).stdout)
    assert rows[0] == {"id": own.id, "name": "Ручная отправка", "owner": "best", "event": "manual",
                       "channel": None, "enabled": True}


@pytest.mark.parametrize("args", [["template", "render", "Баланс", "--event", "examples/events/low_balance.json"],
                                  ["log"], ["template", "list"]])
def test_a_closed_pipe_is_no_traceback(db: str, tmp_path: Path, args: list[str]) -> None:
    """`msgd template render … | head`: the reader went away before msgd wrote."""
    seed.operator("best")
    seed.template("low_balance", "sms", name="Баланс")
    message(reason="x" * 200)
    proc = subprocess.Popen([sys.executable, "-m", "msgd", *args], cwd=ROOT, env=env_for(db, tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before msgd has started up: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.mark.parametrize("command", [["log", "--limit"], ["log", "--width"], ["parking", "list", "--limit"],
                                     ["parking", "replay", "--limit"],
                                     ["resend", "--state", "failed", "--operator", "best", "--dry-run", "--limit"]])
@pytest.mark.parametrize("value", ["-1", "0", "x"])
def test_a_count_below_one_is_refused_in_words_not_a_traceback(command: list[str], value: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`msgd log --limit -1` and `msgd resend --limit -1` ended in "Negative indexing is not
    supported"; `parking list --limit -1` showed all but the last."""
    from msgd.cli import parser

    with pytest.raises(SystemExit) as refused:
        parser().parse_args([*command, value])
    assert refused.value.code == 2
    assert f"must be a whole number of at least 1, got {value!r}" in capsys.readouterr().err
