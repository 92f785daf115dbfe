"""One contact field holding several addresses or numbers, as billing data often does.

``kuz@mail.ru, buh@romashka.ru`` or ``8(912)1234567; 8(913)7654321`` are two recipients, each
sent its own message (with its own message id, claim and log row). Separators are ``,``, ``;``
and line breaks; a plain space separates only where every piece is a whole address or number on
its own — ``8 (912) 123-45-67`` is one number, ``Иван <ivan@x.ru>`` one address, and
``sidorov@yand ex.ru`` one (invalid) address, never ``sidorov@yand``. Commas inside quotes or
angle brackets (``"Петров, Иван" <p@x.ru>``) do not separate. Repeats are dropped (the first
spelling is kept), compared by :func:`email_identity` / :func:`phone_identity`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from services.senders.sms.phone import normalize_phone

_SEPARATORS = ",;\r\n"
_MIN_DIGITS = 7  # a piece with fewer digits is part of a number written with spaces


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


def _by_spaces(piece: str, whole: Callable[[str], bool]) -> list[str]:
    words = piece.split()
    return words if len(words) > 1 and all(whole(w) for w in words) else [piece]


def split_emails(text: str) -> list[str]:
    """E-mail addresses in one contact string (display forms kept whole)."""
    out: list[str] = []
    for piece in split_outside_quotes(text):
        plain = not any(c in piece for c in '"<>')
        out += _by_spaces(piece, lambda w: w.count("@") == 1) if plain else [piece]
    return out


def split_phones(text: str) -> list[str]:
    """Phone numbers in one contact string (a number may contain spaces and parentheses)."""
    out: list[str] = []
    for piece in split_outside_quotes(text):
        out += _by_spaces(piece, lambda w: sum(c.isdigit() for c in w) >= _MIN_DIGITS)
    return out


def split_words(text: str) -> list[str]:
    """Ids without spaces (Telegram chat ids): any separator or whitespace."""
    return [w for w in re.split(r"[,;\s]+", text) if w]


def email_identity(entry: str) -> str:
    """What makes two spellings one mailbox: the address part, case-folded."""
    match = re.search(r"<([^<>]*)>\s*$", entry)
    return (match[1] if match else entry).strip().casefold()


def phone_identity(entry: str) -> str:
    """What makes two spellings one number: E.164 in the default region, else the digits."""
    try:
        return normalize_phone(entry)
    except ValueError:
        return re.sub(r"\D", "", entry) or entry


def unique(entries: Iterable[str], identity: Callable[[str], str]) -> list[str]:
    """``entries`` without repeats (same identity), first spelling kept, order kept."""
    seen: set[str] = set()
    out = []
    for entry in entries:
        key = identity(entry)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out
