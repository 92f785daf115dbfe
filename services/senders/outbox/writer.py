"""The outbox: messages written to files instead of (or besides) being sent.

Used when a channel's settings say ``outbox`` (the sender stage decides, not
the channel).  One readable UTF-8 text file per message:

    <UTC YYYYmmddTHHMMSS>-<channel>-<message_id>.txt

with header lines, a blank line and the body (and the HTML version, when the
message has one, after a marker line).  The file is written under a temporary
name in the same folder and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from services.senders.base import Outbound

HTML_MARKER = "----- HTML -----"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "unknown"


def _one_line(value: object) -> str:
    return " ".join(str(value).splitlines()).strip()


def render(message: Outbound) -> str:
    headers = [
        ("Channel", message.channel),
        ("To", message.recipient),
        ("From", message.sender),
        ("Subject", message.subject),
        ("Event", message.event_type),
        ("Event-Id", message.event_id),
        ("Operator", message.operator_code),
        ("Message-Id", message.message_id),
        ("Attempt", message.attempt),
    ]
    text = "".join(f"{name}: {_one_line(value)}\n" for name, value in headers)
    text += "\n" + message.body
    if not text.endswith("\n"):
        text += "\n"
    if message.html:
        text += f"\n{HTML_MARKER}\n{message.html}"
        if not text.endswith("\n"):
            text += "\n"
    return text


def write_outbox(outbox_dir: Path, message: Outbound) -> Path:
    """Write one message atomically; returns the file's path."""
    outbox_dir = Path(outbox_dir)
    outbox_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = outbox_dir / f"{stamp}-{_safe(message.channel)}-{_safe(message.message_id)}.txt"
    fd, tmp = tempfile.mkstemp(dir=outbox_dir, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(render(message))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
