"""Decode untrusted JSON (broker bodies, API requests) at a cost bounded by its size.

``json.loads`` alone lets one body stop a consumer: 10,000 nested brackets raise
``RecursionError`` (not ``ValueError``), an integer of 5,000 digits raises a
``ValueError`` of its own, ``"\\ud800"`` decodes to a string that cannot be
encoded again, and a body nested just under the interpreter's limit makes every
later recursive walk (schema validation, redaction) fail instead.  ``loads``
turns all of these into one ``InvalidJSON`` with a reason an operator can read,
and checks the size before any work (RFC 8259 is the format).

Speed: a body is first decoded by orjson (Rust, strict RFC 8259: no NaN, no
lone surrogates, no number that overflows a double, valid UTF-8 only) and its
depth measured (``_depth_over``); anything orjson refuses, and any body with a run of
19 or more digits (orjson turns an integer beyond 64 bits into a float, Python's
json keeps it exact), takes the original path above, which gives the value or
the reason exactly as before.  So orjson only ever speeds up a body both accept
with the same value.  The checks are C-speed passes over the bytes (``bytes.translate``)
and a walk over the decoded containers only; no regex scans the whole body, since a
status batch of 200 reports is about 150 KB (tests/test_safejson.py holds the fast path
to the original's decisions).
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import orjson

DEFAULT_MAX_BYTES = 1024 * 1024
# Deeper than any event billing sends (about 5), far below the interpreter's limit.
DEFAULT_MAX_DEPTH = 32


class InvalidJSON(ValueError):
    """The body cannot be accepted; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def loads(body: bytes | bytearray | memoryview | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
          max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode ``body`` (UTF-8 bytes or str) into plain JSON values.

    Raises ``InvalidJSON`` when the body is larger than ``max_bytes``, is not
    UTF-8, is not JSON (``NaN``, ``Infinity`` and numbers too large for a float
    included), nests objects and arrays deeper than ``max_depth``, or holds a
    string that is not valid Unicode (a lone UTF-16 surrogate).
    """
    if isinstance(body, memoryview | bytearray):
        body = bytes(body)
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidJSON(f"body is {size} bytes, more than the limit of {max_bytes} bytes")
    if not body:
        raise InvalidJSON("body is empty, not JSON")
    fast = _fast(body, max_depth)
    if fast is not _NO:
        return fast
    return _loads_stdlib(body, max_depth)


def _loads_stdlib(body: bytes | str, max_depth: int) -> Any:
    """The original path: Python's json, then every string and the depth checked in one walk."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"body is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except _NotJSONNumber as exc:
        raise InvalidJSON(f"body holds {exc.args[0]}, which JSON has no number for") from None
    except RecursionError:
        raise InvalidJSON(f"body nests objects or arrays deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing thousands of digits
        if not isinstance(exc, json.JSONDecodeError) and "digits" in str(exc):
            limit = sys.get_int_max_str_digits()
            raise InvalidJSON(f"body is not valid JSON: an integer has more than {limit} digits") from None
        if str(exc).startswith("Unexpected UTF-8 BOM"):  # Python's words name a Python codec
            raise InvalidJSON("body is not valid JSON: it starts with a byte order mark (BOM, bytes EF BB BF);"
                              " send UTF-8 without one") from None
        raise InvalidJSON(f"body is not valid JSON: {str(exc)[:200]}") from None
    _check(value, max_depth)
    return value


_NO = object()
# A run of digits orjson may read differently from json (an integer beyond 64 bits becomes a float):
# every digit becomes "0" and every other byte a space, then the run is looked for as a substring.
_LONG_RUN = 19
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_NUMBER_RUN = b"0" * _LONG_RUN
# A JSON string (orjson has checked the body, so every string is well formed).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_CONTAINERS = (dict, list)


def _fast(body: bytes | str, max_depth: int) -> Any:
    """The value by orjson when it and ``json`` surely agree on it and it is not too deep, else
    ``_NO`` (the caller takes the original path)."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    if _LONG_NUMBER_RUN in raw.translate(_DIGITS_AS_ZERO):
        return _NO
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NO
    if isinstance(value, dict | list) and _depth_over(raw, value, max_depth):
        return _NO
    return value


def _depth_over(raw: bytes, value: dict[str, Any] | list[Any], max_depth: int) -> bool:
    """Whether valid JSON ``raw``, decoded by orjson into ``value``, nests objects and arrays
    deeper than ``max_depth`` (counted on the bytes, as the original path's decoder meets them).

    Not when ``raw`` has no more opening brackets than that (strings' included). Else the
    containers of ``value`` are walked level by level: deeper there is deeper in ``raw``. When
    the walk met as many containers as ``raw`` has opening brackets, no bracket is inside a
    string and no container was lost to a repeated key, so ``value``'s depth is ``raw``'s; when
    ``raw`` is exactly orjson's writing of ``value`` (msgd's own bodies), no key is repeated
    either. Otherwise the depth is measured on the bytes (``_depth_over_bytes``)."""
    brackets = raw.translate(None, _NOT_BRACKETS)
    opening = len(brackets) - brackets.count(b"]") - brackets.count(b"}")
    if opening <= max_depth:
        return False
    level: list[Any] = [value]
    containers = 0
    for _ in range(max_depth):
        containers += len(level)
        level = [child for node in level for child in (node.values() if type(node) is dict else node)
                 if type(child) in _CONTAINERS]
        if not level:
            break
    else:
        return True  # a container below max_depth levels
    if containers == opening or _written_by_orjson(raw, value):
        return False
    return _depth_over_bytes(raw, max_depth)


def _written_by_orjson(raw: bytes, value: Any) -> bool:
    """Whether ``raw`` is byte for byte what orjson writes for ``value`` (which never repeats a key)."""
    try:
        return raw == orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        return False


def _depth_over_bytes(raw: bytes, max_depth: int) -> bool:
    """Whether valid JSON ``raw`` nests deeper than ``max_depth``: strings dropped, only
    brackets kept, then innermost pairs removed one level per pass (C speed)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = _EMPTY_PAIR.sub(b"", brackets)
    return bool(brackets)


class _NotJSONNumber(Exception):
    pass


def _no_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity; RFC 8259 has none of them, and
    they would be written back as the same non-JSON words."""
    raise _NotJSONNumber(name)


def _check(value: Any, max_depth: int) -> None:
    """Depth and Unicode checks without recursion: one pass over every node."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, float) and not math.isfinite(node):  # 1e999: written back as Infinity
            raise InvalidJSON("body holds a number too large for a float, which JSON has no number for")
        elif isinstance(node, dict | list):
            if depth > max_depth:
                raise InvalidJSON(f"body nests objects or arrays deeper than {max_depth} levels")
            if isinstance(node, dict):
                for key, item in node.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJSON(f"body holds a string that is not valid Unicode (a lone surrogate at"
                          f" character {exc.start})") from None
