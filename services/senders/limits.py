"""Per-channel settings that bound what one message may cost, and what a timeout means.

Limits (checked before any request; a message over one fails with a ``ContentError``, a
problem of the text, not of the gateway):

============  ================  ==============================================================
channel       setting           default and unit
============  ================  ==============================================================
sms           ``max_segments``  10 SMS parts as billed (GSM-7 153 / UCS-2 67 units per part of
                                a concatenated SMS, services/senders/sms/segments.py)
email         ``max_bytes``     1 MiB (1048576) of the built message as sent over SMTP
                                (services/senders/email/message.py)
telegram      ``max_parts``     5 Telegram messages of at most 4096 UTF-16 units each
                                (services/senders/telegram/sender.py)
============  ================  ==============================================================

``on_timeout`` (every channel): what a failure *after* the request was sent means — a read
timeout, a connection closed or reset before the answer, an SMTP server silent after the
message (``MaybeSent``). ``unknown`` (the default): the message ends failed "outcome
unknown" and is not sent again — the gateway may have delivered it, and a second request
would be a second SMS the subscriber gets and the operator pays for; if the gateway did *not*
deliver it, the subscriber gets nothing until staff resend it. ``retry``: it is retried like a
connection failure, up to the operator's attempt count — nothing is lost, but a gateway that
did deliver sends it again (a duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.senders.base import ContentError, PermanentError
from services.senders.sms.segments import Segments, count_segments

DEFAULT_MAX_SEGMENTS = 10
DEFAULT_MAX_PARTS = 5
ON_TIMEOUT = ("unknown", "retry")
DEFAULT_ON_TIMEOUT = "unknown"


def whole_number(params: Mapping[str, Any], key: str, default: int, label: str, unit: str) -> int:
    """A positive whole-number setting (``default`` when empty); PermanentError naming the
    setting otherwise. ``label`` names the channel ("SMS"), ``unit`` what is counted."""
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else 0
    except ValueError:
        number = 0
    if number < 1:
        raise PermanentError(f"{label} {key} {value!r} is not a positive whole number of {unit} — set it"
                             f" (e.g. {default}), or leave it empty for the default ({default})")
    return number


def on_timeout(params: Mapping[str, Any], label: str) -> str:
    """The ``on_timeout`` setting: ``unknown`` (default) or ``retry``; PermanentError otherwise."""
    value = params.get("on_timeout")
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_ON_TIMEOUT
    text = str(value).strip().lower()
    if text not in ON_TIMEOUT:
        raise PermanentError(f"{label} on_timeout {value!r} is not one of unknown, retry — unknown: a message"
                             " whose request timed out is not sent again; retry: it is, at the risk of a"
                             " duplicate")
    return text


def sms_segments(text: str, params: Mapping[str, Any]) -> Segments:
    """The text's SMS parts; ContentError when they are more than ``max_segments``."""
    limit = whole_number(params, "max_segments", DEFAULT_MAX_SEGMENTS, "SMS", "SMS parts")
    parts = count_segments(text)
    if parts.parts > limit:
        raise ContentError(
            f"the text takes {parts.parts:,} SMS parts ({len(text):,} characters, {parts.encoding}), more than"
            f" max_segments {limit} — the gateway would bill every part: check the template and the event's"
            " data, or raise max_segments in the SMS settings"
        )
    return parts
