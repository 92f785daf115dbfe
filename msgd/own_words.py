"""msgd's own words in a log row's reason, in the reader's language.

A reason is stored as written, in English (``msgd log``, the API and ``msgd log --json`` show it
so); the sentences msgd itself writes there (a resend's note, quiet hours, an operator without
settings, a retry's count) are recognised here and shown translated in the admin. The far side's
words inside them (a gateway's error text) stay as they came.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy as _

# (the sentence as msgd writes it, with named groups; its text in the reader's language). Writers:
# msgd/resend.py (resend notes), services/senders/stage.py (the rest).
_SENTENCES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"sent again by (?P<by>.+?): resend (?P<number>\d+) of message (?P<message>\S+?),"
                r" to the corrected contact \(was (?P<was>.*)\)"),
     _("sent again by %(by)s: resend %(number)s of message %(message)s, to the corrected contact (was %(was)s)")),
    (re.compile(r"sent again by (?P<by>.+?): resend (?P<number>\d+) of message (?P<message>\S+)"),
     _("sent again by %(by)s: resend %(number)s of message %(message)s")),
    (re.compile(r"quiet hours: held until (?P<until>.+)"), _("quiet hours: held until %(until)s")),
    (re.compile(r"operator (?P<operator>\S+) has no (?P<channel>\S+) settings: configure the channel,"
                r" then (?:resend|replay)"),
     _("operator %(operator)s has no %(channel)s settings: configure the channel, then send the message again")),
    (re.compile(r"operator (?P<operator>\S+) is no longer configured"),
     _("operator %(operator)s is no longer configured")),
    (re.compile(r"(?P<words>.*) \(attempt (?P<attempt>\d+) of (?P<of>\d+); next in (?P<next>\d+) s\)", re.S),
     _("%(words)s (attempt %(attempt)s of %(of)s; next in %(next)s s)")),
    (re.compile(r"not sent: (?P<problem>.*)", re.S), _("not sent: %(problem)s")),
    (re.compile(r"written to (?P<path>\S+)"), _("written to %(path)s")),  # an outbox slot's file
]


def shown_reason(reason: str) -> str:
    """``reason`` in the reader's language when msgd wrote it (see above), else as it is."""
    for pattern, text in _SENTENCES:
        found = pattern.fullmatch(reason)
        if found:
            return str(text) % found.groupdict()
    return reason
