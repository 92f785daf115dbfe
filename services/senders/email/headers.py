"""Subject and address headers that decode to exactly the text they were given.

Python's own folder (``email.policy`` up to at least 3.13) loses text in two ways, both seen in
mail clients: it folds a long non-ASCII Subject between RFC 2047 encoded-words with the word space
*outside* them, and RFC 2047 section 6.2 has decoders drop whitespace between adjacent
encoded-words (``плановых работах`` reads ``плановыхработах``); and it splits a display name into
several encoded-words in the middle of a word, which Python's own parser (gh-128110) and others
read with a space inserted (``Серге евич``). So these headers are written here:

* **Subject** (RFC 2047 section 5(1), ``*text``): ASCII words before the first and after the
  last word that needs encoding (non-ASCII, or looking like an encoded-word) stay as they are;
  the text from that first to that last word becomes UTF-8 "B" encoded-words that carry its
  spaces *inside* them, each at most 75 characters and cut between characters, preferably just
  after a space. Lines are folded at spaces to 78 characters (RFC 5322 section 2.2.3), so
  unfolding restores every space.
* **Addresses** (From, To; RFC 2047 section 5(3), ``phrase``): a display name of atoms stays as
  it is, an all-ASCII one with specials is one quoted-string, and otherwise the text from the
  first to the last word that is not an atom is **one** encoded-word, even when that is longer
  than 75 characters (up to 900, within RFC 5322's 998-character line): several adjacent
  encoded-words are correct by RFC 2047 but misread by Python's parser and others, while a long
  encoded-word is read by every parser we know of. Only a longer name is split.

With SMTPUTF8 (RFC 6532) text goes as raw UTF-8 and only the folding applies. The header classes
plug into ``email.policy`` through ``HeaderRegistry.map_to_type`` (Python docs,
email.headerregistry), so ``EmailMessage`` is built as usual.
"""

from __future__ import annotations

import base64
import re
from email import headerregistry
from email.policy import SMTP, SMTPUTF8, EmailPolicy
from typing import Any, cast

EW_MAX = 75  # RFC 2047 section 2: an encoded-word is at most 75 characters
LINE_MAX = 998  # RFC 5322 section 2.1.1: a line MUST NOT be longer (without CRLF)
_PREFIX, _SUFFIX = "=?utf-8?b?", "?="
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_BREAKS = re.compile(r"[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` as one header line: lines stripped and joined by one space (as the renderer makes
    a subject), tabs and other controls as spaces; spaces inside a line are kept."""
    lines = (part.strip() for part in _BREAKS.split(text))
    return _CONTROL.sub(" ", " ".join(p for p in lines if p))


def _encoded(text: str) -> str:
    return _PREFIX + base64.b64encode(text.encode("utf-8")).decode("ascii") + _SUFFIX


def _fits(n_bytes: int) -> int:
    """Length of the encoded-word that carries ``n_bytes`` bytes."""
    return len(_PREFIX) + len(_SUFFIX) + (n_bytes + 2) // 3 * 4


def _cut(text: str, room: int) -> int:
    """How many leading characters of ``text`` fit in an encoded-word of at most ``room``
    characters (at least one); just after a space when one lies in the second half."""
    size, end, space = 0, 0, 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if end and _fits(size + n) > room:
            break
        size += n
        end += 1
        if ch == " ":
            space = end
    if end < len(text) and space > end // 2:
        return space
    return end


class _Lines:
    """Atoms joined by single spaces, folded (the space becomes CRLF + space) before an atom
    that would pass ``width``."""

    def __init__(self, head: str, width: int) -> None:
        self.lines = [head]
        self.width = width
        self.head = head

    @property
    def room(self) -> int:
        return self.width - len(self.lines[-1]) - 1

    def _fold_if(self, needed: int) -> None:
        # Never right after "Name:": a parser keeps the fold's space as a leading one.
        if needed > self.room and self.lines[-1].strip() and self.lines != [self.head]:
            self.lines.append("")

    def add(self, atom: str) -> None:
        if atom:  # never fold before an empty atom: no line of only spaces
            self._fold_if(len(atom))
        self.lines[-1] += " " + atom

    def add_encoded(self, text: str, limit: int, *, whole: bool) -> None:
        """``text`` as encoded-words of at most ``limit`` characters: with ``whole``, one word if
        it fits ``limit`` (on a line of its own if need be), else words that fill each line."""
        if whole and _fits(len(text.encode("utf-8"))) <= limit:
            self._fold_if(_fits(len(text.encode("utf-8"))))
            self.lines[-1] += " " + _encoded(text)
            return
        while text:
            self._fold_if(min(EW_MAX, _fits(len(text.encode("utf-8"))), _fits(12)))
            n = _cut(text, min(EW_MAX, max(self.room, _fits(12))))
            self.lines[-1] += " " + _encoded(text[:n])
            text = text[n:]

    def text(self, linesep: str) -> str:
        return linesep.join(self.lines) + linesep


def _atom(word: str, utf8: bool) -> bool:
    """An RFC 5322 atom (RFC 6532 with SMTPUTF8: UTF-8 letters too)."""
    if utf8:
        word = "".join("a" if not c.isascii() and c.isprintable() else c for c in word)
    return bool(_ATEXT.fullmatch(word))


def _needs_encoding(word: str, utf8: bool, phrase: bool) -> bool:
    if "=?" in word or len(word) > 900:
        return True
    if phrase:
        return not _atom(word, utf8)
    return not utf8 and not word.isascii()


def _runs(words: list[str], utf8: bool, phrase: bool) -> list[tuple[bool, str]]:
    """(encode?, text) runs of the space-separated ``words``: from the first word that needs
    encoding to the last, with the spaces and plain words between them, one encoded run; plain
    words before and after stay plain, one plain space apart from it."""
    flags = [bool(w) and _needs_encoding(w, utf8, phrase) for w in words]
    if not any(flags):
        return [(False, " ".join(words))]
    first = flags.index(True)
    last = len(flags) - 1 - flags[::-1].index(True)
    # Extra spaces around the run go inside it: exactly one plain space separates it.
    while first > 1 and words[first - 1] == "":
        first -= 1
    while last < len(words) - 2 and words[last + 1] == "":
        last += 1
    runs = [(False, " ".join(words[:first]))] if first else []
    runs.append((True, " ".join(words[first:last + 1])))
    if last < len(words) - 1:
        runs.append((False, " ".join(words[last + 1:])))
    return runs


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _add_text(lines: _Lines, text: str, *, utf8: bool, phrase: bool) -> None:
    """Unstructured text (a subject) or a display name (``phrase``) onto ``lines``."""
    words = text.split(" ")
    plain = "=?" not in text and (text.isascii() or utf8) and text.isprintable()
    if phrase and plain and not all(_atom(w, utf8) for w in words if w):
        for atom in _quoted(text).split(" "):  # one quoted-string, folded at its spaces
            lines.add(atom)
        return
    for encode, run in _runs(words, utf8, phrase):
        if encode:
            lines.add_encoded(run, 900 if phrase else EW_MAX, whole=phrase)
        else:
            for atom in run.split(" "):
                lines.add(atom)


def _width(policy: Any) -> int:
    return int(policy.max_line_length or LINE_MAX)


class Subject(headerregistry.UnstructuredHeader, headerregistry.BaseHeader):
    """Subject header folded by :func:`_add_text` (see the module's docstring). The value set is
    the text itself: something in it that looks like an encoded-word is not decoded."""

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value

    def fold(self, *, policy: Any) -> str:
        lines = _Lines(f"{self.name}:", _width(policy))
        text = one_line(str(self))
        if text:
            _add_text(lines, text, utf8=bool(policy.utf8), phrase=False)
        return lines.text(policy.linesep)


class Addresses(headerregistry.UniqueAddressHeader):
    """From / To: mailboxes whose display names are written by :func:`_add_text`."""

    def fold(self, *, policy: Any) -> str:
        if any(g.display_name is not None for g in self.groups):
            return str(super().fold(policy=policy))  # type: ignore[misc]  # a group: msgd never builds one
        lines = _Lines(f"{self.name}:", _width(policy))  # type: ignore[attr-defined]
        for i, addr in enumerate(self.addresses):
            comma = "," if i < len(self.addresses) - 1 else ""
            name = " ".join((addr.display_name or "").split())  # RFC 5322: runs of spaces are one
            if name:
                _add_text(lines, name, utf8=bool(policy.utf8), phrase=True)
                lines.add(f"<{addr.addr_spec}>{comma}")
            else:
                lines.add(f"{addr.addr_spec}{comma}")
        return lines.text(policy.linesep)


def _registry() -> headerregistry.HeaderRegistry:
    registry = headerregistry.HeaderRegistry()
    registry.map_to_type("subject", Subject)
    for name in ("from", "to", "sender", "reply-to"):
        registry.map_to_type(name, cast(type[headerregistry.BaseHeader], Addresses))
    return registry


HEADERS = _registry()
# Without SMTPUTF8: 7-bit bodies (base64 / quoted-printable) for any relay, headers as above.
POLICY_7BIT: EmailPolicy[Any] = SMTP.clone(cte_type="7bit", header_factory=HEADERS)
# With SMTPUTF8 (RFC 6531/6532): UTF-8 headers and bodies.
POLICY_UTF8: EmailPolicy[Any] = SMTPUTF8.clone(header_factory=HEADERS)
