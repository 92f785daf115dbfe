"""Structured logs (structlog): JSON in production, readable in a terminal.

msgd's own lines and those of the libraries it uses (urllib3, kombu, Django,
which log through the standard library) take the same way out: one handler
on the root logger, whose formatter runs structlog's processors. So every
line is JSON when JSON is asked for, the lines of two threads never run into
each other (one handler, one lock), and every line passes through the
redaction processor, which masks a secret that slips into an event field, an
exception text or a library's message (urllib3 logs request URLs, with a bot
token or a ``psw=`` parameter in them, at DEBUG).  Each field is cut to
``FIELD_LIMIT`` characters there: an event field of 500,000 characters (an
``event_id`` far over the schema's limit) costs one short line, not a megabyte.

Stages bind what every line about a message carries (event, message, operator,
channel) with ``bound``: one context variable set per message, merged into a
line only when a line is written (``merge_bound``).  structlog's
``bound_contextvars`` sets a context variable per field and copies them all on
every call, which cost the sender a tenth of its CPU at thousands of messages a
second, whether or not anything was logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

import structlog

from msgd.redact import redact

FIELD_LIMIT = 16_000  # characters of one field of a log line (a traceback fits)


_BOUND: ContextVar[Mapping[str, Any] | None] = ContextVar("msgd_log_bound", default=None)


class bound:  # noqa: N801 - used like a function: ``with logs.bound(event_id=...)``
    """Every log line written in this block (this thread, or this asyncio task) carries
    ``fields`` unless the line names the field itself; blocks nest (the inner one wins).
    A class rather than a generator context manager: it is entered for every message."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: Any) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, Any] | None] | None = None

    def __enter__(self) -> None:
        outer = _BOUND.get()
        self._token = _BOUND.set({**outer, **self._fields} if outer else self._fields)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _BOUND.reset(self._token)


def merge_bound(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the fields of the enclosing ``bound`` blocks, under the line's own."""
    fields = _BOUND.get()
    if fields:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return dict(redact(event_dict, limit=FIELD_LIMIT))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """msgd's handler on the root logger (recognised, and replaced, when configure runs again);
    it writes to the ``sys.stderr`` of the moment, so a replaced stderr is followed."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _person_time(tz: Any) -> Any:
    """structlog processor: the line's time as a person reads it in ``tz``, zone visible
    (``2026-11-27 13:51:42 MSK``, msgd/localtime.py), as ``msgd log`` shows times."""
    import datetime as dt

    from msgd import localtime

    def stamp(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict["timestamp"] = localtime.shown(dt.datetime.now(dt.UTC), tz)
        return event_dict

    return stamp


def configure(fmt: str = "console", level: str = "INFO", person: bool = False) -> None:
    """Every log line to stderr: JSON (``fmt="json"``, times ISO 8601 in UTC) or for a terminal.
    ``person`` (the command line's own commands): a terminal's lines carry the time in
    MSGD_TIME_ZONE with the zone (UTC when that names no zone), as ``msgd log`` shows it."""
    stamper: Any = structlog.processors.TimeStamper(fmt="iso", utc=True)
    if person and fmt != "json":
        from msgd import localtime

        try:
            tz: Any = localtime.zone()
        except localtime.BadTimeZone:
            import datetime as dt

            tz = dt.UTC
        stamper = _person_time(tz)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        merge_bound,
        structlog.processors.add_log_level,
        stamper,
    ]
    handler = _Handler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
    ))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _Handler)] + [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=not person,  # a command's few lines need no cache; a stage's many do
    )
