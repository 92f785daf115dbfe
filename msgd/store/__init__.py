"""The store: operators, channel settings, templates and the message log (Django ORM).

``setup()`` configures Django once per process from a database URL; SQLite by
default, PostgreSQL in production.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_lock = threading.Lock()
_configured_url: str | None = None


def database_config(url: str) -> dict[str, Any]:
    """sqlite:///path or postgres(ql)://user:pass@host:port/name -> Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "msgd",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": None,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://")


def setup(database_url: str | None = None) -> None:
    """Configure Django for this process (idempotent)."""
    global _configured_url
    from msgd.settings import Settings

    url = database_url or Settings.from_env().effective_database_url
    with _lock:
        if _configured_url is not None:
            if url != _configured_url:
                raise RuntimeError("the store is already configured with another database")
            return
        import django
        from django.conf import settings as dj

        if not dj.configured:
            from msgd.store.django_settings import django_settings

            dj.configure(**django_settings(database_config(url)))
        django.setup()
        _configured_url = url


def migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=verbosity, interactive=False)
