"""Keep secrets out of logs, errors and API output.

Two nets: values under secret-looking keys are masked wherever a mapping is
shown, and every secret value the store knows is registered here and replaced
in any free text (exception messages often quote URLs with passwords in them).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
SECRET_KEY_RE = re.compile(
    r"(pass(word)?|psw|pwd|secret|token|api[_-]?key|apikey|md5|private|auth|credential)",
    re.IGNORECASE,
)
# Every pattern below runs in time linear in the text (they see event data, gateway answers
# and log fields). A key=value key is tried only from the start of its run of name
# characters (the lookbehind) and that run is taken possessively, so a long run of letters
# without "=" is scanned once, not again from each of its positions; whether the key names a
# secret is a second, separate search of the key alone.
_KEY_RE = re.compile(r"(?<![\w.-])[\w.-]++=")
_SECRET_WORD_RE = re.compile(r"pass(?:word)?|psw|pwd|secret|token|api[_-]?key|apikey|sign|md5", re.IGNORECASE)
_VALUE_RE = re.compile(r"[^&\s'\"]+")
# user:password@ after any "://" (the scheme is not needed to find it, and matching it
# would rescan every run of letters).
_URL_CRED_RE = re.compile(r"://(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")
_TG_TOKEN_RE = re.compile(r"bot\d{5,}:[A-Za-z0-9_-]{20,}")
# The same, cut short at the end of a text: a secret the cut goes through.
_URL_CRED_CUT_RE = re.compile(r"://(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]*)\Z")
_TG_TOKEN_CUT_RE = re.compile(r"bot\d{5,}:[A-Za-z0-9_-]*\Z")

_lock = threading.Lock()
_known: set[str] = set()


def register_secrets(values: Iterable[Any]) -> None:
    """Remember secret values so they are scrubbed from any text later."""
    new = {str(v) for v in values if v is not None and len(str(v)) >= 4}
    if new - _known:
        with _lock:
            _known.update(new)


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_RE.search(key))


def redact_text(text: str, limit: int | None = None) -> str:
    """``text`` with known secrets, URL passwords, ``psw=``-style values and Telegram bot
    tokens replaced by ``***``; time linear in ``len(text)``.

    With ``limit``, a longer text is cut first (only what is shown is worked on) and the
    result is at most ``limit`` characters followed by "… (N characters)".
    """
    if not text:
        return text
    if limit is None or len(text) <= limit:
        return _redact_all(text)
    return redact_head(text, limit) + f"… ({len(text)} characters)"


def redact_head(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, redacted; only those characters are worked on,
    however long ``text`` is.  A secret the cut goes through is masked too: the start of a
    known secret, ``user:pass`` of a URL whose ``@`` is past the cut, the start of a bot token."""
    if len(text) <= limit:
        return _redact_all(text)
    head = text[:limit]
    cut = 0  # the longest end of ``head`` that begins a known secret, whichever
    for value in _known:
        for n in range(min(len(value) - 1, len(head)), cut, -1):
            if head.endswith(value[:n]):
                cut = n
                break
    if cut:
        head = head[:-cut] + MASK
    head = _URL_CRED_CUT_RE.sub(lambda m: f"://{m['user']}:{MASK}", head)
    head = _TG_TOKEN_CUT_RE.sub(f"bot{MASK}", head)
    return _redact_all(head)


def _redact_all(text: str) -> str:
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _URL_CRED_RE.sub(lambda m: f"://{m['user']}:{MASK}@", text)
    text = _mask_pairs(text)
    return _TG_TOKEN_RE.sub(f"bot{MASK}", text)


def _mask_pairs(text: str) -> str:
    """key=value pairs inside query strings and form bodies: psw=..., apikey=..., token=..."""
    parts: list[str] = []
    pos = 0
    for key in _KEY_RE.finditer(text):
        if key.start() < pos or not _SECRET_WORD_RE.search(key.group()):
            continue  # inside a value masked already, or not a secret's name
        value = _VALUE_RE.match(text, key.end())
        if value is not None:
            parts += [text[pos:key.end()], MASK]
            pos = value.end()
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def redact(value: Any, limit: int | None = None) -> Any:
    """Mask secrets in nested data: secret keys wholesale, free text by value (each string cut
    to ``limit`` characters when given, as ``redact_text`` does)."""
    if isinstance(value, str):
        return redact_text(value, limit)
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v, limit))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, limit) for v in value]
    return value


def redact_url(url: str) -> str:
    """amqp://guest:guest@host/ -> amqp://guest:***@host/; every URL of a ';'-separated
    failover list (``MSGD_BROKER_URL=amqp://a;amqp://b``) is masked."""
    if ";" in url:
        return ";".join(_redact_one_url(part) for part in url.split(";"))
    return _redact_one_url(url)


def _redact_one_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@")
        return urlunsplit(parts._replace(netloc=netloc))
    return redact_text(url)
