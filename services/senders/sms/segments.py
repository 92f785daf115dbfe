"""How many SMS parts a text takes (what the subscriber's operator bills).

GSM-7 (3GPP TS 23.038): the basic table costs one septet per character, the
extension table (``^ { } [ ] ~ | \\ €`` and form feed) two (an escape and the
character).  A single SMS holds 160 septets; a concatenated one 153 per part
(the user data header takes the rest).  Any character outside both tables
makes the whole text UCS-2: 70 UTF-16 code units in a single SMS, 67 per part;
a character outside the Basic Multilingual Plane (most emoji) takes two.

Parts are filled the way gateways split: an escaped GSM character or a UTF-16
surrogate pair is never cut between two parts, so a part may end one unit
short of its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.senders.base import ContentError

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet (without the escape character itself).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    parts: int  # SMS parts billed (0 for an empty text)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


_GSM_ALL = GSM_BASIC | GSM_EXTENSION


def encoding_of(text: str) -> str:
    """``GSM-7`` when every character is in the basic or extension table, else ``UCS-2``."""
    return GSM7 if _GSM_ALL.issuperset(text) else UCS2


def _cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _units(text: str, encoding: str) -> int:
    """Septets (an extension character takes two) or UTF-16 code units (a lone surrogate one)."""
    if encoding == GSM7:
        return len(text) if GSM_EXTENSION.isdisjoint(text) else len(text) + sum(map(text.count, GSM_EXTENSION))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def count_segments(text: str) -> Segments:
    """The parts and units of ``text`` (tests/test_sms_segments.py holds it to a count character
    by character). Counted by C-speed string methods; only a long text with two-unit characters
    is walked character by character, as gateways never split those between parts."""
    encoding = encoding_of(text)
    single, multi = LIMITS[encoding]
    units = _units(text, encoding)
    if units == 0:
        return Segments(encoding, 0, 0)
    if units <= single:
        return Segments(encoding, 1, units)
    if units == len(text):  # every character one unit: nothing to keep together
        return Segments(encoding, -(-units // multi), units)
    parts, used = 1, 0
    for cost in (_cost(ch, encoding) for ch in text):
        if used + cost > multi:  # an escape pair or surrogate pair stays in one part
            parts += 1
            used = 0
        used += cost
    return Segments(encoding, parts, units)


def sms_segments(text: str, limit: int) -> Segments:
    """The text's SMS parts; ContentError when they are more than ``limit`` (the ``max_segments``
    setting): the gateway bills every part, so a runaway text fails before any request."""
    parts = count_segments(text)
    if parts.parts > limit:
        raise ContentError(
            f"the text takes {parts.parts:,} SMS parts ({len(text):,} characters, {parts.encoding}), more than"
            f" max_segments {limit} — the gateway would bill every part: check the template and the event's"
            " data, or raise max_segments in the SMS settings"
        )
    return parts
