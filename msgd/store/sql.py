"""Plain SQL for the hot paths (claims, message-log upserts).

Django's bulk_update builds a CASE expression per field per row in Python;
at thousands of messages a second that cost more than everything else.
These statements run as they are on PostgreSQL and SQLite (both have
INSERT ... ON CONFLICT), with values adapted the way the ORM would.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import connection


def uid(value: str | uuid.UUID) -> Any:
    """A UUID as the backend stores it (uuid on PostgreSQL, 32 hex chars on SQLite)."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return u if connection.vendor == "postgresql" else u.hex


def when(value: dt.datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def executemany(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with connection.cursor() as cur:
            cur.executemany(sql, rows)
