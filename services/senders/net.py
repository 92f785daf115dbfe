"""What every HTTP channel shares: settings read the same way, where a failure happened and what
wrapped what (services/senders/http_errors.py words them), and per-thread sessions."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from msgd.printable import printable
from msgd.redact import redact_text
from msgd.settings import Settings
from services.senders.base import ChannelSender, PermanentError, PerThread
from services.senders.bodies import declared_charset, decode_body
from services.senders.model import HttpSettings

# -- settings -------------------------------------------------------------------------------


def as_bool(value: Any, default: bool = False) -> bool:
    """Settings forms store booleans as bools, 0/1 or strings."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(value)


def verify_setting(s: HttpSettings, label: str) -> bool | str:
    """What requests' ``verify`` gets from ``verify`` (default on) and ``ca_bundle`` (a PEM file);
    PermanentError when the file is not there (it may be missing on this machine only)."""
    bundle = (s.ca_bundle or "").strip()
    if s.verify and bundle:
        if not os.path.exists(bundle):
            raise PermanentError(
                f"{label} ca_bundle file {bundle!r} does not exist — set ca_bundle to the path of a PEM"
                " file with the CA certificate to trust, or leave it empty for the system's CAs"
            )
        return bundle
    return s.verify


def http_options(s: HttpSettings, default_timeout: float, label: str) -> tuple[float, bool | str]:
    """(timeout, verify) for requests from an HTTP channel's settings: ``timeout`` (seconds;
    ``default_timeout`` = MSGD_HTTP_TIMEOUT when not set), ``verify`` and ``ca_bundle``. ``label``
    names the channel."""
    return (s.timeout or float(default_timeout)), verify_setting(s, label)


# -- plain words ----------------------------------------------------------------------------


def excerpt(text: str, limit: int = 200) -> str:
    """A far side's answer on one line, shortened to ``limit`` characters, control characters
    escaped (msgd/printable.py): what reasons and ``msgd doctor`` quote."""
    return printable(" ".join(text.split())[:limit])


def response_text(resp: requests.Response, limit: int | None = None) -> str:
    """A requests answer's body (its first ``limit`` bytes) read by :func:`decode_body`."""
    body = resp.content if limit is None else resp.content[:limit]
    return decode_body(body, declared_charset(resp.headers.get("Content-Type")))


@functools.lru_cache(maxsize=256)  # a pure function of a setting; asked once per delivery
def host_port(url: str) -> str:
    """host:port of a URL: never its path or query, which may carry a password or a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, __cause__, urllib3's .reason)."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nested = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))


def find(exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``kind`` (a class or a tuple of classes) inside ``exc``."""
    return next((e for e in causes(exc) if isinstance(e, kind)), None)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Sessions:
    """One requests.Session per worker thread (and key): connection reuse without sharing a
    session across threads. Only the operator's settings decide proxies, CA bundles and
    credentials, never the environment (trust_env off)."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._per_thread: PerThread[str, requests.Session] = PerThread(lambda s: s.close())

    def get(self, key: str = "", verify: bool | str | None = None) -> requests.Session:
        session = self._per_thread.get(key)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = self.user_agent
            if verify is not None:
                session.verify = verify
            self._per_thread.put(key, session)
        return session

    def __len__(self) -> int:
        return len(self._per_thread)

    def close_all(self) -> None:
        self._per_thread.close_all()


class HttpSender(ChannelSender):
    """A channel that talks HTTP: per-thread sessions named by ``user_agent``, closed on stop."""

    user_agent: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._sessions = Sessions(self.user_agent)

    def close(self) -> None:
        self._sessions.close_all()
        super().close()


# -- secrets in urllib3's DEBUG lines ---------------------------------------------------------------
class _RedactUrls(logging.Filter):
    """urllib3 logs request URLs (a bot token in the path, ``psw=`` in a GET gateway's query) at
    DEBUG level. msgd's log handler masks them anyway; this masks them in the record itself, for
    any other handler an operator attaches."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = redact_text(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactUrls) for f in _logger.filters):
        _logger.addFilter(_RedactUrls())
