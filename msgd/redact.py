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
# key=value pairs inside query strings and form bodies: psw=..., apikey=..., token=...
_PAIR_RE = re.compile(
    r"(?P<key>[\w.-]*(?:pass(?:word)?|psw|pwd|secret|token|api[_-]?key|apikey|sign|md5)[\w.-]*)=(?P<val>[^&\s'\"]+)",
    re.IGNORECASE,
)
_URL_CRED_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@")
_TG_TOKEN_RE = re.compile(r"bot\d{5,}:[A-Za-z0-9_-]{20,}")

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


def redact_text(text: str) -> str:
    if not text:
        return text
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _URL_CRED_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _PAIR_RE.sub(lambda m: f"{m['key']}={MASK}", text)
    return _TG_TOKEN_RE.sub(f"bot{MASK}", text)


def redact(value: Any) -> Any:
    """Mask secrets in nested data: secret keys wholesale, free text by value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
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
