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


def insert_many(head: str, placeholders: list[str], tail: str, rows: list[Sequence[Any]],
                chunk: int = 500) -> None:
    """One multi-row INSERT per ``chunk`` rows: ``head`` VALUES (...), (...) ``tail``.

    Rows must not repeat a conflict key within one statement.
    """
    one = "(" + ", ".join(placeholders) + ")"
    with connection.cursor() as cur:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cur.execute(head + ", ".join([one] * len(part)) + tail, [v for row in part for v in row])


def executemany(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with connection.cursor() as cur:
            cur.executemany(sql, rows)
