"""Network failures read the same way by every HTTP channel: where, and what wrapped what."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit


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
