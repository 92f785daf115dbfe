"""Django templates' filters and tags that could make a message of any size, bounded.

The standard syntax refuses a width or precision over 1,000 (``%(name)100000000s``); the Django
syntax had no such bound, so one template line made a renderer build hundreds of megabytes and
spend minutes on one message (``{{ name|rjust:"100000000" }}``, ``{% lorem 100000000 w %}``,
``{% load mathfilters %}{{ "x"|mul:100000000 }}``, a ``{% for %}`` over such a string). The same
limit applies here: a width, precision or count over :data:`MAX_WIDTH` fails the message as a
render error naming the filter, and mathfilters' ``mul`` and ``mod`` take numbers only (on text
they repeated or %-formatted it).
"""

from __future__ import annotations

import re
from typing import Any

from django.template import Library, Node, defaultfilters, defaulttags
from mathfilters.templatetags import mathfilters

MAX_WIDTH = 1000
MAX_ITERATIONS = 100_000
"""``{% for %}`` iterations of one render, nested loops' together (an event holds at most 5,000
values: one loop over all of them is far below; three nested loops over them would be 10^11)."""
_NUMBERS = re.compile(r"\d+")


class TooLarge(ValueError):
    """A filter's or tag's size argument over MAX_WIDTH (the renderer words it as a render error)."""


def _whole(arg: Any) -> int | None:
    try:
        return abs(int(str(arg).strip().rstrip("gu") or 0))
    except ValueError:
        return None  # Django's own filter decides what a non-number does


def _check(name: str, arg: Any, size: int | None) -> None:
    if size is not None and size > MAX_WIDTH:
        raise TooLarge(f'{name}:"{arg}" is over {MAX_WIDTH} (a width, precision or count; the standard'
                       " syntax's limit too): no message needs it")


def _bounded(name: str, size_of: Any) -> Any:
    original = defaultfilters.register.filters[name]

    def bounded(value: Any, arg: Any) -> Any:
        _check(name, arg, size_of(arg))
        return original(value, arg)

    def bounded_optional(value: Any, arg: Any = -1) -> Any:  # floatformat: Django reads from the
        _check(name, arg, size_of(arg))                     # signature that its argument is optional
        return original(value, arg)

    chosen = bounded_optional if name == "floatformat" else bounded
    chosen.is_safe = getattr(original, "is_safe", False)  # type: ignore[attr-defined]
    return chosen


def _format_size(arg: Any) -> int | None:
    return max((int(n) for n in _NUMBERS.findall(str(arg))), default=None)


def bounded_filters() -> dict[str, Any]:
    """Django's filters that take a width or precision, each refusing one over MAX_WIDTH."""
    return {
        "ljust": _bounded("ljust", _whole), "rjust": _bounded("rjust", _whole),
        "center": _bounded("center", _whole), "floatformat": _bounded("floatformat", _whole),
        "stringformat": _bounded("stringformat", _format_size),
    }


class _BoundedLorem(defaulttags.LoremNode):  # type: ignore[misc]
    def render(self, context: Any) -> str:
        try:
            count = int(self.count.resolve(context))
        except (ValueError, TypeError):
            count = 1
        _check("lorem", count, count)
        return str(super().render(context))


def lorem(parser: Any, token: Any) -> Any:
    """Django's ``{% lorem %}``, at most MAX_WIDTH words or paragraphs."""
    node = defaulttags.lorem(parser, token)
    return _BoundedLorem(node.count, node.method, node.common)


def _numbers_only(name: str) -> Any:
    original = mathfilters.register.filters[name]

    def numeric(value: Any, arg: Any) -> Any:
        try:
            mathfilters.valid_numeric(value)
            mathfilters.valid_numeric(arg)
        except (ValueError, TypeError):
            return ""  # mathfilters' own answer to what it cannot compute
        return original(value, arg)

    return numeric


class LoopBudget(Node):  # type: ignore[misc]
    """Put first in every ``{% for %}`` body: counts the render's iterations, TooLarge past
    MAX_ITERATIONS (nested loops over an event's lists could keep a renderer for hours)."""

    def render(self, context: Any) -> str:
        done = context.render_context.get("msgd:iterations", 0) + 1
        if done > MAX_ITERATIONS:
            raise TooLarge(f"the template's loops ran more than {MAX_ITERATIONS:,} times in one message"
                           " (nested {% for %} over the event's lists?)")
        context.render_context["msgd:iterations"] = done
        return ""


def budget_loops(nodes: Any) -> None:
    """Give every ``{% for %}`` among ``nodes`` (a compiled template's) a LoopBudget."""
    for node in nodes:
        if isinstance(node, defaulttags.ForNode) and not any(isinstance(n, LoopBudget) for n in node.nodelist_loop):
            node.nodelist_loop.insert(0, LoopBudget())


register = Library()
"""``{% load mathfilters %}`` in message templates: mathfilters' filters, mul and mod on numbers only."""
register.filters.update(mathfilters.register.filters)
for _name in ("mul", "mod"):
    register.filter(_name, _numbers_only(_name))
