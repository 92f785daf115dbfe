"""Plain SQL for the hot paths (claims, message-log upserts).

Django's bulk_update builds a CASE expression per field per row in Python;
at thousands of messages a second that cost more than everything else.
These statements run as they are on PostgreSQL and SQLite (both have
INSERT ... ON CONFLICT), with values adapted the way the ORM would.

On PostgreSQL a multi-row ``INSERT ... VALUES (...), (...)`` is not sent as
written: its text grows with the rows, so psycopg can neither cache its parse
nor bind it on the server, and quoting thousands of literals in Python cost the
recorder two thirds of its CPU.  ``insert_many`` sends instead one fixed
statement per table, ``INSERT ... SELECT ... FROM unnest($1::t1[], $2::t2[], ...)``,
with one array per column bound on the server (psycopg's binary array dumpers),
so its text is parsed once per process.  Same rows, same ``ON CONFLICT``, one
statement per ``chunk`` rows as before.  Errors come out as Django's database
errors either way (``msgd.stage.is_outage`` tells an outage by them).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection

# "INSERT INTO msgd_message AS m (id, state, ...) VALUES "
_HEAD = re.compile(r"^\s*INSERT INTO (\w+)((?: AS \w+)?) \(([^)]*)\) VALUES\s*$", re.I)


def uid(value: str | uuid.UUID) -> Any:
    """A UUID as the backend stores it (uuid on PostgreSQL, 32 hex chars on SQLite)."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return u if postgres() else u.hex


def when(value: dt.datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def when_adapter() -> Callable[[dt.datetime | None], Any]:
    """``when`` for many values in one thread: ``connection.ops`` is looked up once (each lookup
    goes through Django's per-thread connection handler, dearer than the adaptation)."""
    adapt = connection.ops.adapt_datetimefield_value
    return lambda value: None if value is None else adapt(value)


_vendor: list[str] = []


def postgres() -> bool:
    """True when the default database is PostgreSQL (the array fast paths apply). A process
    configures its store once (``msgd.store.setup``), so the answer is kept."""
    if not _vendor:
        _vendor.append(str(connection.vendor))
    return _vendor[0] == "postgresql"


@contextmanager
def bound_cursor() -> Iterator[Any]:
    """A psycopg cursor with *server-side* parameter binding on Django's own connection (so it
    is inside the caller's ``transaction.atomic``), its errors raised as Django's
    (``OperationalError``...). PostgreSQL only. Django's cursors bind on the client: every value
    quoted into the statement text in Python."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        yield cur


@contextmanager
def cursor() -> Iterator[Any]:
    """``bound_cursor`` on PostgreSQL, Django's cursor elsewhere (both take ``%s`` placeholders)."""
    if postgres():
        with bound_cursor() as cur:
            yield cur
    else:
        with connection.cursor() as cur:
            yield cur


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column`` IN ``values`` as (SQL, parameters) for ``cursor()``: one array parameter on
    PostgreSQL (the statement's text is the same for any number of values), a list elsewhere."""
    if postgres():
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


_types: dict[str, dict[str, str]] = {}


def column_types(table: str) -> dict[str, str]:
    """``{column: SQL type}`` of ``table`` from PostgreSQL's catalog (read once per process)."""
    found = _types.get(table)
    if found is None:
        with bound_cursor() as cur:
            cur.execute("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped", [table])
            found = _types[table] = {name: kind for name, kind in cur.fetchall()}
    return found


_unnest_cache: dict[tuple[str, tuple[str, ...], str], str] = {}


def _unnest_statement(head: str, placeholders: Sequence[str], tail: str) -> str | None:
    """``head`` VALUES (``placeholders``) ``tail`` rewritten as INSERT ... SELECT over unnest
    arrays, one per placeholder column; None when ``head`` is not a plain column-list INSERT."""
    key = (head, tuple(placeholders), tail)
    if key in _unnest_cache:
        return _unnest_cache[key]
    match = _HEAD.match(head)
    if match is None or any(p.count("%s") != 1 for p in placeholders):
        return None
    table, alias, cols = match[1], match[2], [c.strip() for c in match[3].split(",")]
    if len(cols) != len(placeholders):
        return None
    types = column_types(table)
    arrays = ", ".join(f"%b::{types[c]}[]" for c in cols)  # binary: no text escaping
    names = ", ".join(f"c{i}" for i in range(len(cols)))
    exprs = ", ".join(p.replace("%s", f"u.c{i}") for i, p in enumerate(placeholders))
    statement = (f"INSERT INTO {table}{alias} ({', '.join(cols)}) SELECT {exprs}"
                 f" FROM unnest({arrays}) AS u({names}){tail}")
    _unnest_cache[key] = statement
    return statement


INSERT_CHUNK = 500  # rows of one multi-row INSERT (insert_many)


def insert_many(head: str, placeholders: list[str], tail: str, rows: list[Sequence[Any]],
                chunk: int = INSERT_CHUNK) -> None:
    """One multi-row INSERT per ``chunk`` rows: ``head`` VALUES (...), (...) ``tail``.

    ``head`` is ``INSERT INTO <table> [AS <alias>] (<columns>) VALUES ``; each placeholder holds
    one ``%s`` (it may wrap it, e.g. in a sub-select). Rows must not repeat a conflict key within
    one statement. PostgreSQL gets the same statement over arrays (module doc).
    """
    if not rows:
        return
    statement = _unnest_statement(head, placeholders, tail) if postgres() else None
    if statement is not None:
        with bound_cursor() as cur:
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                cur.execute(statement, [list(column) for column in zip(*part, strict=True)])
        return
    one = "(" + ", ".join(placeholders) + ")"
    with connection.cursor() as cur:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cur.execute(head + ", ".join([one] * len(part)) + tail, [v for row in part for v in row])


def executemany(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with connection.cursor() as cur:
            cur.executemany(sql, rows)
