"""Standard templates: Python %-style with printf specs, as in the original.

``%(name)s``, ``%(balance).f``, ``%(recomend_pay_sum)5.2f``, ``%%`` for a
literal percent sign.  The parser follows CPython's ``str % mapping`` grammar
(nested parentheses in names, flags ``-+ #0``, width, precision, ignored
``h``/``l``/``L``), so every template the original accepted renders to the
same text, with two deliberate differences:

* ``f``/``F`` round half away from zero on the exact decimal value
  (``services.renderer.context`` explains why); ``e``/``g`` and ``d`` behave
  as in Python;
* a spec without a variable name (``%s``, ``%d``) is refused: with a mapping
  Python would print the whole context dict into the message.

Refused when saving (``check_standard``) -- the original failed on each of
these at send time, so no working template contains them:

* an unterminated name: ``%(name``;
* an unknown conversion: ``%(x)q``;
* a name with no conversion letter, as the manual's own
  ``%(subscriber_sms) - номер телефона`` (a documentation slip: Python reads
  `` -`` as flags and then fails on the next letter).  The error suggests
  ``%(subscriber_sms)s``.  We do not quietly treat it as ``s``: Python
  itself reads ``%(x) d`` (space flag + ``d``) as a valid spec, so guessing
  would make similar-looking templates mean different things;
* a lone ``%`` ("скидка 10%"): write ``%%``;
* ``{% ... %}`` in a standard template: the error says to turn on "use Django
  templating";
* ``*`` widths, and widths or precisions over 1000.

At render time a variable missing from the event, or of a type its spec cannot
format (``%(name)d`` with text), is a :class:`RenderError` naming the
template and the variable -- never the value, which may be a password.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from services.renderer.context import RenderError, round_half_up, to_money

CONVERSIONS = "diouxXeEfFgGcrsa"
_FLAGS = "-+ #0"
_MAX_WIDTH = 1000
_NEEDS = {
    **dict.fromkeys("diu", "a number"),
    **dict.fromkeys("xXo", "a whole number"),
    **dict.fromkeys("eEfFgG", "a number"),
    "c": "a single character or a whole number",
}


@dataclass(frozen=True, slots=True)
class Spec:
    """One ``%(key)...conv`` in a template."""

    key: str
    flags: str
    width: str
    precision: str | None  # digits; "" for a bare "." (= 0); None when absent
    conversion: str
    text: str  # as written, for messages

    def printf(self, conversion: str | None = None) -> str:
        prec = "" if self.precision is None else "." + self.precision
        return f"%{self.flags}{self.width}{prec}{conversion or self.conversion}"


class TemplateSyntaxError(ValueError):
    """A standard template cannot be parsed; the message says where and how to fix it."""


def _where(source: str, pos: int) -> str:
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _snippet(source: str, start: int, end: int) -> str:
    text = source[start:end].split("\n")[0]
    return text if len(text) <= 40 else text[:40] + "…"


def _fail(source: str, pos: int, message: str) -> TemplateSyntaxError:
    return TemplateSyntaxError(f"{_where(source, pos)}: {message}")


@lru_cache(maxsize=2048)
def parse(source: str) -> tuple[str | Spec, ...]:
    """Literal text and specs, in order (cached by source text); TemplateSyntaxError if malformed."""
    parts: list[str | Spec] = []
    text: list[str] = []
    i, n = 0, len(source)
    while i < n:
        start = source.find("%", i)
        if start < 0:
            text.append(source[i:])
            break
        text.append(source[i:start])
        k = start + 1
        if k < n and source[k] == "%":
            text.append("%")
            i = k + 1
            continue
        key: str | None = None
        if k < n and source[k] == "(":
            depth, k = 1, k + 1
            while k < n and depth:
                if source[k] == "(":
                    depth += 1
                elif source[k] == ")":
                    depth -= 1
                k += 1
            if depth:
                raise _fail(source, start, f'"{_snippet(source, start, n)}" is not closed with ")"')
            key = source[start + 2 : k - 1]
        after_key = k
        while k < n and source[k] in _FLAGS:
            k += 1
        flags = source[after_key:k]
        width_start = k
        while k < n and source[k].isdigit():
            k += 1
        width = source[width_start:k]
        precision: str | None = None
        if k < n and source[k] == ".":
            k += 1
            prec_start = k
            while k < n and source[k].isdigit():
                k += 1
            precision = source[prec_start:k]
        if k < n and source[k] == "*":
            raise _fail(source, start, f'"{_snippet(source, start, k + 1)}": "*" widths are not supported')
        if k < n and source[k] in "hlL":
            k += 1
        conv = source[k] if k < n else ""
        known = bool(conv) and conv in CONVERSIONS
        if key is None and source[start - 1 : start] == "{":
            raise _fail(source, start, '"{%" is Django syntax: turn on "use Django templating" '
                                       'for this template, or write "%%" for a percent sign')
        if key is None and not known:
            raise _fail(source, start, 'a lone "%": write "%%" for a percent sign')
        if key is None:
            raise _fail(source, start, f'"{_snippet(source, start, k + 1)}" has no variable name: '
                                       f'write %(name){conv}, or "%%" for a percent sign')
        if not known:
            between = source[after_key:k]
            written = _snippet(source, start, after_key)
            if not any(ch.isdigit() or ch == "." for ch in between) and (
                not conv or not conv.isalnum() or " " in between
            ):  # "%(subscriber_sms)" followed by a space, punctuation or the end
                raise _fail(source, start, f'"{written}" has no conversion letter after ")": '
                                           f'write "{written}s" for text (or d, f, .2f for numbers)')
            if not conv:
                raise _fail(source, start, f'"{_snippet(source, start, k)}" is incomplete: '
                                           f'it needs a conversion letter (s, d, f)')
            raise _fail(source, start, f'unsupported conversion character {conv!r} in '
                                       f'"{_snippet(source, start, k + 1)}" (use s for text, d for whole '
                                       f'numbers, f or .2f for amounts)')
        if not key:
            raise _fail(source, start, '"%()" has no variable name')
        if len(width) > 4 or len(precision or "") > 4 or int(width or 0) > _MAX_WIDTH \
                or int(precision or 0) > _MAX_WIDTH:
            raise _fail(source, start, f'"{_snippet(source, start, k + 1)}": width or precision over {_MAX_WIDTH}')
        if text:
            parts.append("".join(text))
            text = []
        parts.append(Spec(key, flags, width, precision, conv, source[start : k + 1]))
        i = k + 1
    if text:
        parts.append("".join(text))
    return tuple(p for p in parts if p != "")


def check_standard(source: str) -> str | None:
    """None if ``source`` is a valid standard template, else what is wrong and where."""
    try:
        parse(source)
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


def variables(source: str) -> list[str]:
    """The variable names a (valid) standard template uses, in order, without repeats."""
    return list(dict.fromkeys(p.key for p in parse(source) if isinstance(p, Spec)))


def _describe(value: Any) -> str:
    if value is None:
        return "empty (None)"
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a record"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def format_spec(spec: Spec, value: Any) -> str:
    """One spec applied to one value (TypeError/ValueError when they do not fit)."""
    conv = spec.conversion
    if conv in "fF" and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        money = to_money(value)
        if money is not None:
            places = 6 if spec.precision is None else int(spec.precision or 0)
            rounded = round_half_up(money, places)
            if "#" in spec.flags:  # Decimal has no "#" form; the value is exact to `places`
                return spec.printf() % (float(rounded),)
            align = "<" if "-" in spec.flags else ""
            sign = "+" if "+" in spec.flags else (" " if " " in spec.flags else "")
            zero = "0" if "0" in spec.flags and not align else ""
            return format(rounded, f"{align}{sign}{zero}{spec.width}.{places}f")
    if isinstance(value, Decimal):
        if conv in "sra":
            return spec.printf("s") % (str(value),)
        if conv in "eEgG":
            return spec.printf() % (float(value),)
    return spec.printf() % (value,)


def render_standard(
    source: str,
    context: Mapping[str, Any],
    *,
    label: str = "template",
    escape: Callable[[str], str] | None = None,
) -> str:
    """Fill ``source`` from ``context``; ``escape`` (e.g. html.escape) is applied to each value."""
    try:
        parts = parse(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{label}: {exc}") from None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            value = context[part.key]
        except KeyError:
            near = difflib.get_close_matches(part.key, [str(k) for k in context], n=1, cutoff=0.75)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise RenderError(f"{label}: variable {part.key!r} is not in the event{hint}",
                              variable=part.key) from None
        try:
            text = format_spec(part, value)
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            need = _NEEDS.get(part.conversion, "another type")
            raise RenderError(f"{label}: variable {part.key!r} is {_describe(value)}, "
                              f"but {part.text} needs {need}", variable=part.key) from None
        out.append(escape(text) if escape else text)
    return "".join(out)
