"""Which variables a Django template names that an event does not have.

Django renders a missing variable as "" (and the sandbox keeps that: the
``default`` filter and ``{% if abonent.field %}`` rely on it), so a misspelt
``{{ abonent.contract_numbr }}`` sends a message with a hole in it.  This walk
of the compiled template finds such names for the preview, ``msgd template
render`` and loading/saving, where they are reported as warnings.

Every branch is checked (not only the one the sample takes).  Not reported,
because a missing value is what the template expects there:

* a value tested for truth or ``None``: ``{% if abonent.field %}``,
  ``{% if not x %}``, ``{% if x is None %}`` (comparisons such as
  ``{% if total_abonpay <= BALANCE %}`` are checked);
* a value given a fallback: ``{{ x|default:"..." }}``, ``|default_if_none``;
* the candidates of ``{% firstof %}``.

Names a template binds itself (``{% for user in ... %}``, ``{% with %}``, ``as``
variables, ``forloop``) are checked against the first item of the loop's list in
the event; when that list is empty the loop's body cannot be checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from django.template import Context, Node, NodeList, defaultfilters, defaulttags
from django.template.base import FilterExpression, Variable, VariableDoesNotExist, VariableNode

from services.renderer.django_engine import compile_django

_FALLBACK_FILTERS = (defaultfilters.default, defaultfilters.default_if_none)
_TRUTH_OPERATORS = ("or", "and", "not", "is", "is not")


def missing_variables(source: str, context: Mapping[str, Any]) -> list[str]:
    """Warnings for each variable of ``source`` (a valid Django template) that
    ``context`` lacks, in template order: "variable 'abonent.contract_numbr' is
    not in the event (did you mean 'abonent.contract_number'?)"."""
    walk = _Walk(Context(dict(context)))
    walk.nodes(compile_django(source).nodelist)
    return list(walk.found.values())


class _Walk:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.unknown: set[str] = set()  # names bound to values the sample cannot give
        self.found: dict[str, str] = {}

    def nodes(self, nodelist: NodeList | None) -> None:
        for node in nodelist or ():
            self.node(node)

    def node(self, node: Node) -> None:
        if isinstance(node, VariableNode):
            self.expression(node.filter_expression)
        elif isinstance(node, defaulttags.IfNode):
            for condition, nodelist in node.conditions_nodelists:
                if condition is not None:
                    self.condition(condition)
                self.nodes(nodelist)
        elif isinstance(node, defaulttags.ForNode):
            self.loop(node)
        elif isinstance(node, defaulttags.WithNode):
            for expr in node.extra_context.values():
                self.expression(expr)
            values = {name: self.value(expr) for name, expr in node.extra_context.items()}
            self.scoped(values, node.nodelist)
        elif isinstance(node, defaulttags.FirstOfNode):
            self.bind(node.asvar)
        else:
            for expr in _expressions(node):
                self.expression(expr)
            for attr in ("asvar", "variable_name", "var_name"):
                self.bind(getattr(node, attr, None))
            for attr in node.child_nodelists:
                self.nodes(getattr(node, attr, None))

    def loop(self, node: Any) -> None:
        self.expression(node.sequence)
        sequence = self.value(node.sequence)
        first = next(iter(sequence), None) if _iterable(sequence) else None
        names = list(node.loopvars)
        values: dict[str, Any] = {}
        if first is not None and len(names) == 1:
            values[names[0]] = first
        elif first is not None and _iterable(first) and len(tuple(first)) == len(names):
            values = dict(zip(names, first, strict=True))
        self.scoped(values, node.nodelist_loop, unknown=[n for n in names if n not in values] + ["forloop"])
        self.nodes(node.nodelist_empty)

    def scoped(self, values: dict[str, Any], nodelist: NodeList, unknown: list[str] | None = None) -> None:
        before = set(self.unknown)
        bound = {k: v for k, v in values.items() if v is not _UNKNOWN}
        self.unknown.update(k for k, v in values.items() if v is _UNKNOWN)
        self.unknown.update(unknown or ())
        self.unknown.difference_update(bound)
        with self.context.push(bound):
            self.nodes(nodelist)
        self.unknown = before

    def bind(self, name: str | None) -> None:
        if name:
            self.unknown.add(name)

    def condition(self, cond: Any) -> None:
        if isinstance(cond, defaulttags.TemplateLiteral):
            return  # tested for truth: a missing value is simply false
        for operand in (getattr(cond, "first", None), getattr(cond, "second", None)):
            if operand is None:
                continue
            if getattr(cond, "id", None) in _TRUTH_OPERATORS:
                self.condition(operand)
            elif isinstance(operand, defaulttags.TemplateLiteral):
                self.expression(operand.value)
            else:
                self.condition(operand)

    def expression(self, expr: FilterExpression) -> None:
        fallback = any(func in _FALLBACK_FILTERS for func, _ in expr.filters)
        if isinstance(expr.var, Variable) and not fallback:
            self.variable(expr.var)
        for _func, args in expr.filters:
            for is_var, arg in args:
                if is_var and isinstance(arg, Variable):
                    self.variable(arg)

    def variable(self, var: Variable) -> None:
        lookups = var.lookups
        if not lookups or lookups[0] in self.unknown or var.var in self.found:
            return
        try:
            var.resolve(self.context)
        except VariableDoesNotExist:
            self.found[var.var] = f"variable {var.var!r} is not in the event{self._hint(lookups)}"
        except Exception:  # noqa: BLE001 - a value the check cannot evaluate is not "missing"
            return

    def value(self, expr: FilterExpression) -> Any:
        var = expr.var
        if isinstance(var, Variable) and var.lookups and var.lookups[0] in self.unknown:
            return _UNKNOWN
        try:
            return expr.resolve(self.context, ignore_failures=True)
        except Exception:  # noqa: BLE001
            return _UNKNOWN

    def _hint(self, lookups: tuple[str, ...]) -> str:
        """" (did you mean '...'?)" for the first part of the name that is missing."""
        current: Any = self.context.flatten()
        for depth, part in enumerate(lookups):
            names = _names(current)
            if part not in names:
                near = difflib.get_close_matches(part, names, n=1, cutoff=0.75)
                return f" (did you mean {'.'.join([*lookups[:depth], near[0]])!r}?)" if near else ""
            current = current[part] if isinstance(current, Mapping) else getattr(current, part, None)
        return ""


_UNKNOWN = object()


def _names(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    return [n for n in dir(value) if not n.startswith("_")]


def _iterable(value: Any) -> bool:
    return value is not None and value is not _UNKNOWN and not isinstance(value, str | bytes) \
        and hasattr(value, "__iter__")


def _expressions(node: Node) -> Iterator[FilterExpression]:
    """The filter expressions of tags other than if/for/with/firstof (cycle, regroup,
    widthratio, ifchanged); ``{% filter %}``'s own expression is its block, not data."""
    if isinstance(node, defaulttags.FilterNode):
        return
    for attr in ("cyclevars", "_varlist"):
        yield from getattr(node, attr, None) or ()
    for attr in ("target", "val_expr", "max_expr", "max_width"):
        expr = getattr(node, attr, None)
        if isinstance(expr, FilterExpression):
            yield expr


__all__ = ["missing_variables"]
