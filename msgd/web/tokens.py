"""API tokens looked up once per key and kept for a few seconds in each web process.

Checking ``Authorization: Token <key>`` cost three statements per request (find the token, read
its operators, write ``last_used_at``). A token found is kept ``MSGD_API_TOKEN_CACHE_SECONDS``
(default 10; 0 turns the cache off) with its scopes and operators, and ``last_used_at`` is
written when it is looked up again, so at most once per period per process.

What this means for revoking: a change made through this process (the admin in the same worker,
a test) empties the cache at once (signals on ``ApiToken``, msgd/web/models.py); a change made
elsewhere (``msgd token revoke``, another gunicorn worker) reaches a worker within the period: a
revoked token keeps working there for at most that many seconds, and a scope or operator taken
away likewise. Keys that match no token are never kept: each is looked up in the database.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

DEFAULT_SECONDS = 10.0

_lock = threading.Lock()
_found: dict[str, tuple[float, Any, frozenset[str] | None]] = {}  # key hash -> (until, token, operator codes)


def cache_seconds(env: dict[str, str] | None = None) -> float:
    """``MSGD_API_TOKEN_CACHE_SECONDS`` (seconds, >= 0; default 10)."""
    raw = (env if env is not None else os.environ).get("MSGD_API_TOKEN_CACHE_SECONDS", "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS


def forget(**_: Any) -> None:
    """Empty this process's cache (a token, its scopes or its operators changed here)."""
    with _lock:
        _found.clear()


def authenticate(key: str) -> tuple[Any, frozenset[str] | None] | None:
    """(the ``ApiToken``, the operator codes it is limited to or None for every operator) for a
    valid, unrevoked ``key``; None otherwise."""
    from django.utils import timezone

    from msgd.web.models import ApiToken, hash_key

    if not key:
        return None
    digest = hash_key(key)
    now = time.monotonic()
    with _lock:
        hit = _found.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    token = ApiToken.objects.filter(key_hash=digest, revoked=False).first()
    if token is None:
        with _lock:
            _found.pop(digest, None)
        return None
    codes = token.operator_codes()
    limited = frozenset(codes) if codes is not None else None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    seconds = cache_seconds()
    if seconds > 0:
        with _lock:
            _found[digest] = (now + seconds, token, limited)
    return token, limited
