"""Splitting a text longer than one Telegram message into parts.

Telegram's sendMessage refuses a text over 4096 characters, counted in UTF-16 code units
(https://core.telegram.org/bots/api#sendmessage). Each part is cut at the last paragraph break
(blank line) within the limit, else the last line break, else the last space — each only when
the part keeps at least half the limit — else between two characters (never inside a
surrogate pair).
"""

from __future__ import annotations

MESSAGE_LIMIT = 4096  # UTF-16 code units, as Telegram counts them


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _fit(text: str, limit: int) -> int:
    """How many characters of ``text`` fit into ``limit`` UTF-16 code units."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _boundary(text: str, n: int) -> tuple[int, int] | None:
    """(cut, separator length) of the best break for a part of at most ``n`` characters."""
    least = max(1, n // 2)
    for sep in ("\n\n", "\n"):
        i = text.rfind(sep, 0, n + len(sep))
        if i >= least:
            return i, len(sep)
    for i in range(min(n, len(text) - 1), least - 1, -1):
        if text[i].isspace():
            return i, 1
    return None


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Parts of at most ``limit`` UTF-16 code units, in order, none empty (see the module doc)."""
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        n = _fit(rest, limit)
        found = _boundary(rest, n)
        if found is None:
            part, rest = rest[:n], rest[n:]
        else:
            cut, sep = found
            part, rest = rest[:cut].rstrip(), rest[cut + sep:].lstrip()
        if part.strip():
            parts.append(part)
    if rest.strip():
        parts.append(rest)
    return parts
