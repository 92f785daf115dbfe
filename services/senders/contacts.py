"""One contact field holding several addresses or numbers, as billing data often does.

``kuz@mail.ru, buh@romashka.ru`` or ``8(912)1234567; 8(913)7654321`` are two recipients, each
sent its own message (with its own message id, claim and log row). Separators are ``,``, ``;``
and line breaks; a plain space separates only where every piece is a whole address or number on
its own — ``8 (912) 123-45-67`` is one number, ``Иван <ivan@x.ru>`` one address, and
``sidorov@yand ex.ru`` one (invalid) address, never ``sidorov@yand``. Commas inside quotes or
angle brackets (``"Петров, Иван" <p@x.ru>``) do not separate. Repeats are dropped (the first
spelling is kept), compared by each channel's identity (services/senders/sms/phone.py
``phone_identity``, services/senders/email/address.py ``email_identity``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_SEPARATORS = ",;\r\n"


def split_outside_quotes(text: str, separators: str = _SEPARATORS) -> list[str]:
    """``text`` cut at ``separators`` that are not inside "quotes" or <angle brackets>."""
    pieces: list[str] = []
    current: list[str] = []
    quoted, angle, escaped = False, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch in separators and not quoted and not angle:
            pieces.append("".join(current))
            current = []
            continue
        current.append(ch)
    pieces.append("".join(current))
    return [p.strip() for p in pieces if p.strip()]


def split_by_spaces(piece: str, whole: Callable[[str], bool]) -> list[str]:
    words = piece.split()
    return words if len(words) > 1 and all(whole(w) for w in words) else [piece]


def split_words(text: str) -> list[str]:
    """Ids without spaces (Telegram chat ids): any separator or whitespace."""
    return [w for w in re.split(r"[,;\s]+", text) if w]


def unique(entries: Iterable[str], identity: Callable[[str], str]) -> list[str]:
    """``entries`` without repeats (same identity), first spelling kept, order kept. One entry
    is returned as it is: its identity (a phone number's parse) is only worked out to compare."""
    entries = list(entries)
    if len(entries) < 2:
        return entries
    seen: set[str] = set()
    out = []
    for entry in entries:
        key = identity(entry)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out
