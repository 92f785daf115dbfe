"""JSON Schemas of the messages msgd accepts and passes between stages.

The schemas live in ``<repo>/schemas/`` (draft 2020-12):

- ``event.v1.json`` -- the public contract billing publishes;
- ``render-job.v1.json``, ``outbound.v1.json``, ``status.v1.json`` -- internal
  wire messages between stages.

Validators are compiled once per process and cached.  Every message is first
checked by a compiled validator (jsonschema-rs, Rust) that only says valid or not;
only a message it finds invalid goes through ``jsonschema``'s pure-Python walk,
which finds every error and words it.  So a valid event costs a few microseconds,
and the reasons are word for word what ``jsonschema`` gives.  The compiled
validator checks formats with the same Python functions (``format_checker``), and
its verdict is never trusted to *reject*: when it says invalid and ``jsonschema``
finds nothing (a regular-expression dialect differs: Python's ``$`` also matches
before a final line break), the message is valid.  Errors come back as
plain strings that name the place, e.g.
``abonent.contacts.sms: 123 is not of type 'string', 'array'`` or
``data.psw_token: required field is missing (required when type is 'password_reset')``.
Values under secret-looking keys (``psw_token``, ``gen_pwd``...) are never
quoted in errors.

Format checking covers ``date-time`` (RFC 3339 with an offset), ``date``,
``email``, ``uri`` and ``uuid`` without optional third-party format packages.
A subschema may carry ``errorMessage`` (the ajv-errors convention): when one of
its keywords fails, that text replaces the generic message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from msgd.redact import MASK, is_secret_key
from msgd.storable import unstorable_paths

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

# kind -> file; "render-job" and "render" name the same schema.
SCHEMA_FILES = {
    "event": "event.v1.json",
    "render": "render-job.v1.json",
    "render-job": "render-job.v1.json",
    "outbound": "outbound.v1.json",
    "status": "status.v1.json",
    "status-batch": "status-batch.v1.json",
    "dlr": "dlr.v1.json",
    "feedback": "feedback.v1.json",
}

_MAX_SHOWN = 80
_FORMAT_HINTS = {
    "date-time": "an RFC 3339 date-time with a time-zone offset (e.g. 2024-05-01T09:30:00+03:00)",
    "date": "a date (YYYY-MM-DD)",
    "email": "an e-mail address",
    "uri": "an absolute URI",
    "uuid": "a UUID",
}
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATETIME_RE.match(value)
    if not match:
        return False
    text = value.upper().replace("Z", "+00:00")
    if match.group(1) and len(match.group(1)) > 6:  # fromisoformat takes microseconds at most
        text = text.replace(match.group(1), match.group(1)[:6], 1)
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and (parts.netloc or parts.path))


@cache
def format_checker() -> FormatChecker:
    checker = FormatChecker()  # the formats jsonschema checks without extras (date, email, uuid...)
    checker.checks("date-time")(_is_datetime)
    checker.checks("uri")(_is_uri)
    return checker


@cache
def _load_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


def load_schema(kind: str) -> dict[str, Any]:
    """The parsed schema for ``kind`` (event, render, outbound, status); do not modify it."""
    try:
        name = SCHEMA_FILES[kind]
    except KeyError:
        raise ValueError(
            f"unknown schema kind {kind!r}; known: {', '.join(SCHEMA_FILES)}"
        ) from None
    return _load_file(name)


@cache
def _registry() -> Registry:
    """Every schema by its $id, so render jobs can $ref the event schema."""
    schemas = [_load_file(name) for name in sorted(set(SCHEMA_FILES.values()))]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )


@cache
def validator(kind: str) -> Draft202012Validator:
    """A compiled validator for ``kind``, shared by every caller of this process."""
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=format_checker())


def _used_formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        return found.union(*(_used_formats(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_used_formats(v) for v in node))
    return set()


def _retrieve(uri: str) -> Any:
    """Another schema of ``schemas/`` by its $id (render jobs $ref the event schema)."""
    for name in sorted(set(SCHEMA_FILES.values())):
        schema = _load_file(name)
        if schema.get("$id") == uri:
            return schema
    raise ValueError(f"unknown schema {uri!r}")


@cache
def compiled(kind: str) -> Any:
    """The compiled (jsonschema-rs) validator for ``kind``: ``is_valid`` only.

    Formats are checked by ``format_checker``'s own functions, so a string is a date-time,
    a URI, a UUID... exactly when ``jsonschema`` says so; a format ``jsonschema`` does not
    check is not checked here either (``ignore_unknown_formats``)."""
    import jsonschema_rs

    schema = load_schema(kind)
    checker = format_checker()
    formats = {name: (lambda value, _name=name: bool(checker.conforms(value, _name)))
               for name in sorted(set().union(*(_used_formats(_load_file(f)) for f in set(SCHEMA_FILES.values()))))
               if name in checker.checkers}
    return jsonschema_rs.Draft202012Validator(schema, formats=formats, validate_formats=True,
                                              ignore_unknown_formats=True, retriever=_retrieve)


def _surely_valid(kind: str, obj: Any) -> bool:
    """True when the compiled validator accepts ``obj``; False when it does not, or cannot
    take it (an integer beyond 64 bits...): then ``jsonschema`` decides."""
    try:
        return bool(compiled(kind).is_valid(obj))
    except Exception:  # noqa: BLE001 - any trouble: the pure-Python validator decides
        return False


def validate(kind: str, obj: Any) -> list[str]:
    """Readable errors of ``obj`` against the ``kind`` schema; empty when valid."""
    if _surely_valid(kind, obj):
        return []
    errors = validator(kind).iter_errors(obj)
    return _unique(describe(error, load_schema(kind)) for error in sorted(errors, key=_order))


# Objects' fields and arrays' items of one event, counted before the schema is checked (its
# cost grows with them): a billing event has a few dozen; far more is a publishing mistake.
MAX_EVENT_VALUES = 5_000


def count_values(value: Any, limit: int) -> int:
    """Fields and items in ``value``, counted without recursion; stops once over ``limit``."""
    count, stack = 0, [value]
    while stack and count <= limit:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            count += len(node)
            stack.extend(node)
    return count


def too_many_values(event: Any) -> str | None:
    """Why ``event`` is refused before its schema is checked (more than ``MAX_EVENT_VALUES``
    fields and list items), or None. The router parks such an event with these words; the API
    and ``msgd publish`` refuse it with them, so what they accept the router does not park."""
    if count_values(event, MAX_EVENT_VALUES) <= MAX_EVENT_VALUES:
        return None
    return (f"event holds more than {MAX_EVENT_VALUES} values (fields and list items together):"
            " billing events hold a few dozen; check what was published")


def validate_event(obj: Any) -> list[str]:
    """Readable errors of a billing event; empty when valid.

    An event of more than ``MAX_EVENT_VALUES`` values gets that one error (its schema is not
    checked: the cost grows with it). Beyond the schema, no string of an event (value or field
    name) may hold text the message log cannot store: NUL (U+0000) or a lone surrogate (see
    ``msgd.storable``).
    """
    oversized = too_many_values(obj)
    if oversized:
        return [oversized]
    unstorable = [f"{json_path(path) or '(root)'}: {why}" for path, why in unstorable_paths(obj)]
    return _unique([*validate("event", obj), *unstorable])


def is_valid(kind: str, obj: Any) -> bool:
    """Cheaper than ``validate`` when the reasons are not needed."""
    return _surely_valid(kind, obj) or bool(validator(kind).is_valid(obj))


# -- error formatting ---------------------------------------------------------


def _order(error: ValidationError) -> tuple[str, str]:
    return (json_path(error.absolute_path), error.message)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def json_path(path: Iterable[Any]) -> str:
    """``['abonent', 'contacts', 'sms', 1]`` -> ``abonent.contacts.sms[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _secret_path(path: Iterable[Any]) -> bool:
    return any(isinstance(p, str) and is_secret_key(p) for p in path)


def _show(value: Any, secret: bool) -> str:
    if secret:
        return MASK
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _condition(error: ValidationError, root: dict[str, Any]) -> str:
    """For errors inside ``allOf[i].then``: which event type the rule is for."""
    node: Any = root
    resolver = _registry().resolver(root.get("$id", ""))
    try:
        for step in error.absolute_schema_path:
            if step == "then":
                return f" (for type {node['if']['properties']['type']['const']!r})"
            if step == "$ref" or (isinstance(node, dict) and step not in node and "$ref" in node):
                # the path may or may not name the $ref it went through
                resolved = resolver.lookup(node["$ref"])
                node, resolver = resolved.contents, resolved.resolver
                if step == "$ref":
                    continue
            node = node[step]
    except (KeyError, IndexError, TypeError, LookupError):
        return ""
    return ""


def describe(error: ValidationError, root: dict[str, Any] | None = None) -> str:
    """One readable line: ``<path>: <what is wrong>``."""
    path = list(error.absolute_path)
    secret = _secret_path(path)
    shown = _show(error.instance, secret)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage")
    when = _condition(error, root) if root else ""

    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [
            name
            for name in error.validator_value
            if name not in instance and repr(name) in error.message
        ]
        place = json_path([*path, missing[0]]) if missing else json_path(path) or "(root)"
        return f"{place}: required field is missing{when}"
    if error.validator == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        names = ", ".join(repr(k) for k in extra)
        return f"{json_path(path) or '(root)'}: unknown field(s) {names}{when}"
    if isinstance(custom, str):
        got = "" if isinstance(error.instance, dict | list) else f" (got {shown})"
        return f"{json_path(path) or '(root)'}: {custom}{got}{when}"
    if error.validator == "format" and error.validator_value in _FORMAT_HINTS:
        return f"{json_path(path)}: {shown} is not {_FORMAT_HINTS[error.validator_value]}{when}"
    if error.validator in {"anyOf", "oneOf"} and error.context:
        reasons = _unique(describe(sub).split(": ", 1)[-1] for sub in error.context)
        message = f"{shown} is not valid: " + "; or ".join(reasons)
    else:
        message = error.message
        original = repr(error.instance)
        if message.startswith(original):
            message = shown + message[len(original) :]
        elif secret:
            message = f"{MASK} fails {error.validator!r}"
    return f"{json_path(path) or '(root)'}: {message}{when}"
