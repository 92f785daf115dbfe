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

from msgd.problem_words import shown_sentence

# (the sentence as msgd writes it, with named groups; its text in the reader's language). Writers:
# msgd/resend.py (resend notes), services/senders/stage.py, services/router/matching.py and
# services/renderer/stage.py (the rest).
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
    # a failed send's verdict (services/senders/stage.py): the channel's words before it are read in turn
    (re.compile('(?P<words>.*) \\(permanent error\\)', re.S), _('%(words)s (permanent error)')),
    (re.compile('(?P<words>.*) \\(gave up after (?P<n>\\d+) attempt\\(s\\)\\)', re.S), _('%(words)s (gave up after %(n)s attempt(s))')),
    (re.compile(r"written to (?P<path>\S+)"), _("written to %(path)s")),  # an outbox slot's file
    # the router's and the renderer's reasons (services/router/matching.py, services/renderer/stage.py)
    (re.compile("no template for event type (?P<type>'[^']*') for operator (?P<operator>\\S+)"),
     _('no template for event type %(type)s for operator %(operator)s')),
    (re.compile("no template for event type (?P<type>'[^']*')"),
     _('no template for event type %(type)s')),
    (re.compile('subscriber has no contact for any channel \\(no SMS number, e-mail, \\.\\.\\.\\)'),
     _('subscriber has no contact for any channel (no SMS number, e-mail, ...)')),
    (re.compile('subscriber has no (?P<key>\\S+) contact for (?P<channel>\\S+)'),
     _('subscriber has no %(key)s contact for %(channel)s')),
    (re.compile('template #(?P<id>\\d+) is disabled \\(\\"send message\\" is off\\)'),
     _('template #%(id)s is disabled ("send message" is off)')),
    (re.compile('template #(?P<id>\\d+) is only for subscriber status (?P<statuses>.*); subscriber status is (?P<got>.*)'),
     _('template #%(id)s is only for subscriber status %(statuses)s; subscriber status is %(got)s')),
    (re.compile('template #(?P<id>\\d+) is only for contract type (?P<kind>.*); subscriber has (?P<got>.*)'),
     _('template #%(id)s is only for contract type %(kind)s; subscriber has %(got)s')),
    (re.compile('operator (?P<operator>\\S+) has no \\"warn N days before blocking\\" setting'),
     _('operator %(operator)s has no "warn N days before blocking" setting')),
    (re.compile('event has no data\\.days_left'),
     _('event has no data.days_left')),
    (re.compile('days left is (?P<days>-?\\d+); template #(?P<id>\\d+) sends at (?P<at>\\d+) \\(or fewer: \\"send every day\\" is on\\)'),
     _('days left is %(days)s; template #%(id)s sends at %(at)s (or fewer: "send every day" is on)')),
    (re.compile('days left is (?P<days>-?\\d+); template #(?P<id>\\d+) sends at (?P<at>\\d+)'),
     _('days left is %(days)s; template #%(id)s sends at %(at)s')),
    (re.compile("replaced by operator (?P<operator>\\S+)'s own template on (?P<channel>\\S+)"),
     _("replaced by operator %(operator)s's own template on %(channel)s")),
    (re.compile("unsupported channel (?P<channel>'[^']*'): a legacy channel kept for compatibility; nothing is sent"),
     _('unsupported channel %(channel)s: a legacy channel kept for compatibility; nothing is sent')),
    (re.compile("unsupported channel (?P<channel>'[^']*'): not a known channel; nothing is sent"),
     _('unsupported channel %(channel)s: not a known channel; nothing is sent')),
    (re.compile('template #(?P<id>\\d+) does not exist or belongs to another operator'),
     _('template #%(id)s does not exist or belongs to another operator')),
    (re.compile('template #(?P<id>\\d+) was deleted before the message was rendered'),
     _('template #%(id)s was deleted before the message was rendered')),
    (re.compile("operator (?P<operator>'[^']*') was deleted before the message was rendered"),
     _('operator %(operator)s was deleted before the message was rendered')),
]


def shown_reason(reason: str) -> str:
    """``reason`` in the reader's language when msgd wrote it (see above), else as it is."""
    for pattern, text in _SENTENCES:
        found = pattern.fullmatch(reason)
        if found:
            groups = found.groupdict()
            if groups.get("words"):  # the channel's own sentence (an address, a number) where msgd knows it
                groups["words"] = shown_sentence(groups["words"])
            return str(text) % groups
    return reason
