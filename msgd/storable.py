"""Text the message log can hold, on PostgreSQL and SQLite alike.

PostgreSQL refuses U+0000 (NUL) in ``text``/``varchar`` columns ("A string
literal cannot contain NUL (0x00) characters") and in ``jsonb`` ("unsupported
Unicode escape sequence"); no UTF-8 database can hold a lone UTF-16 surrogate
(U+D800..U+DFFF), which Python strings may carry.  SQLite stores both, so the
two stores would disagree.  msgd therefore:

* refuses such text where it enters: events (``unstorable_paths``, used by
  ``msgd.schemas.validate_event``: the API answers 400, the router parks), the
  rendered message (a render error) and the outbound message (never sent);
* stores the text it did not choose (gateway answers, error texts) safely with
  ``storable``/``storable_json``: each such character becomes U+FFFD, the
  Unicode replacement character.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def problem(text: str) -> str | None:
    """What makes ``text`` unstorable in plain words (the first such character), else None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character (U+0000)" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    return f"contains {what} at character {found.start()}, which the message log cannot store"


def storable(text: str) -> str:
    """``text`` with every NUL and lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_json(value: Any) -> Any:
    """A copy of a JSON value (dicts, lists, scalars) whose strings and keys are ``storable``.

    Walks without recursion, so any depth is safe; values that need no change are shared.
    """
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (container, key, node)
    while stack:
        parent, key, node = stack.pop()
        if isinstance(node, str):
            parent[key] = storable(node)
        elif isinstance(node, dict):
            copy = {storable(k) if isinstance(k, str) else k: v for k, v in node.items()}
            parent[key] = copy
            stack.extend((copy, k, v) for k, v in copy.items())
        elif isinstance(node, list):
            items = list(node)
            parent[key] = items
            stack.extend((items, i, v) for i, v in enumerate(items))
    return root[0]


def unstorable_paths(value: Any) -> list[tuple[list[str | int], str]]:
    """Every place in a JSON value holding unstorable text, as (path, problem).

    The path names the value (``["data", "text"]``); a bad field name is reported at the
    object holding it, the name shown escaped.  Paths themselves are storable (a bad name
    on the way is shown with U+FFFD).  Walks without recursion, so any depth is safe.

    Speed: most values hold no such text, which ``surely_storable`` (orjson, C speed) tells
    before the walk.
    """
    if surely_storable(value):
        return []
    found: list[tuple[list[str | int], str]] = []
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if (why := problem(node)) is not None:
                found.append((path, why))
        elif isinstance(node, dict):
            children: list[tuple[list[str | int], Any]] = []
            for k, v in node.items():
                if isinstance(k, str) and (why := problem(k)) is not None:
                    shown = ascii(k) if len(k) <= 60 else ascii(k[:57]) + "..."
                    found.append((path, f"the field name {shown} {why}"))
                    k = storable(k)
                children.append(([*path, k], v))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([([*path, i], v) for i, v in enumerate(node)]))
    return found


def surely_storable(value: Any) -> bool:
    """True when no string of ``value`` (a key, a value, at any depth) holds NUL or a lone
    surrogate; False when one may: orjson refuses a lone surrogate and writes NUL as
    ``\\u0000``. False too for what orjson does not write (a key that is not a string, an
    integer beyond 64 bits, more than 255 levels): then look with ``unstorable_paths``'s walk."""
    try:
        written = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return False
    return b"\\u0000" not in written
