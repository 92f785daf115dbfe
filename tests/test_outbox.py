"""The outbox: one readable UTF-8 file per message, written atomically."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.senders.base import Outbound
from services.senders.outbox.writer import HTML_MARKER, write_outbox
from services.senders.registry import sender_classes


def msg(**kw: object) -> Outbound:
    base: dict[str, object] = dict(
        message_id="m-42", event_id="ev-7", event_type="balance_low", operator_code="op1",
        channel="email", recipient="ivan@example.org", sender="Провайдер <noreply@isp.example>",
        subject="Напоминание\nоб оплате", body="Здравствуйте!\nБаланс: -15 руб.", attempt=2,
    )
    base.update(kw)
    return Outbound(**base)  # type: ignore[arg-type]


def test_writes_one_readable_file(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"  # created on demand
    before = datetime.now(UTC).replace(microsecond=0)
    path = write_outbox(folder, msg())
    after = datetime.now(UTC)

    assert path.parent == folder
    match = re.fullmatch(r"(\d{8}T\d{6})-email-m-42\.txt", path.name)
    assert match, path.name
    stamp = datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stamp <= after

    assert path.read_text(encoding="utf-8") == (
        "Channel: email\n"
        "To: ivan@example.org\n"
        "From: Провайдер <noreply@isp.example>\n"
        "Subject: Напоминание об оплате\n"
        "Event: balance_low\n"
        "Event-Id: ev-7\n"
        "Operator: op1\n"
        "Message-Id: m-42\n"
        "Attempt: 2\n"
        "\n"
        "Здравствуйте!\n"
        "Баланс: -15 руб.\n"
    )
    # nothing else left behind (no temporary files)
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_html_follows_the_text(tmp_path: Path) -> None:
    path = write_outbox(tmp_path, msg(html="<p>Здравствуйте!</p>"))
    text = path.read_text(encoding="utf-8")
    assert text.endswith(f"Баланс: -15 руб.\n\n{HTML_MARKER}\n<p>Здравствуйте!</p>\n")


def test_unsafe_names_are_sanitised(tmp_path: Path) -> None:
    path = write_outbox(tmp_path, msg(channel="sms", message_id="../../etc/passwd", recipient="+7912"))
    assert path.parent == tmp_path
    assert path.name.endswith("-sms-etc_passwd.txt")
    assert "To: +7912\n" in path.read_text(encoding="utf-8")


def test_several_messages_several_files(tmp_path: Path) -> None:
    paths = {write_outbox(tmp_path, msg(message_id=f"id-{i}")) for i in range(3)}
    assert len(paths) == 3 and all(p.exists() for p in paths)


def test_outbox_is_not_a_channel() -> None:
    assert "outbox" not in sender_classes()
