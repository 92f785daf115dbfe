"""How a row of the message log is shown to a person (admin, ``msgd log``) and a program (API,
``msgd log --json``): recipients without their secrets, cut text that says it was cut,
delivery details with names a person reads."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy as _

ELLIPSIS = "…"
# details key -> what a person calls it (senders add these: services/senders/*).
DETAIL_LABELS = {
    "segments": _("SMS parts"),
    "encoding": _("Encoding"),
    "phone": _("Number sent to"),
    "gateway": _("Gateway (1 = main, 2 = fallback)"),
    "parts": _("Telegram messages"),
}


def shown_recipient(channel: str, recipient: str) -> str:
    """The recipient as a person may see it: a web-push subscription (JSON with the browser's
    keys) as ``push service <host>``; anything else as it is."""
    if channel != "push" or not recipient.startswith("{"):
        return recipient
    try:
        endpoint = json.loads(recipient).get("endpoint", "")
        host = urlsplit(str(endpoint)).hostname
    except (ValueError, AttributeError):
        host = None
    return f"push service {host}" if host else "push subscription"


def cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters; a cut text ends with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def short_id(message_id: Any) -> str:
    """A message id as ``msgd log`` shows it: the first 8 hex digits of its UUID (``msgd resend
    --id`` takes such a prefix while it names one message)."""
    return str(message_id).replace("-", "")[:8]


def relative_paths(text: str, cwd: str | None = None) -> str:
    """``text`` with each absolute path under ``cwd`` (default the current directory) shown
    relative to it: ``written to /srv/msgd/var/outbox/x.txt`` in /srv/msgd reads ``written to
    var/outbox/x.txt``. Only for showing: the stored reason keeps the whole path."""
    base = (cwd or os.getcwd()).rstrip("/")
    if not base:
        return text
    return re.sub(rf"(?<![\w./-]){re.escape(base)}/(?=[^\s/])", "", text)


def detail_rows(details: dict[str, Any], gateway_message_id: str = "") -> list[tuple[str, str]]:
    """(label, value) rows for the details of a delivery, the gateway's message id first."""
    rows: list[tuple[str, str]] = []
    if gateway_message_id:
        rows.append((str(_("Gateway message id")), gateway_message_id))
    for key, value in (details or {}).items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((str(DETAIL_LABELS.get(key, key)), shown))
    return rows
