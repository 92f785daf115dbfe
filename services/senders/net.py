"""Network failures read the same way by every HTTP channel: where, and what wrapped what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar
from urllib.parse import urlsplit

import requests

from msgd.settings import Settings
from services.senders.base import ChannelSender, PerThread


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


def find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` inside ``exc``."""
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
