"""Django templates ("use Django templating"), sandboxed.

Two engines share one tag/filter set: ``PLAIN`` (autoescape off: SMS,
Telegram, subjects, plain-text bodies) and ``HTML`` (autoescape on: HTML
e-mail bodies).  A raw ``django.template.Template`` escapes according to its
``Context``, not its engine, so :func:`render_django` always passes the
engine's setting into the Context.

What a template sees:

* every standard variable at top level (``{{ text }}``, ``{{ total_abonpay }}``,
  ``{{ BALANCE }}`` -- see ``services.renderer.context``), plus the event's
  ``data`` related-record lists;
* ``abonent``: every field the event's subscriber carries, attribute style;
  each list of records (``abonent_id_users``, ...) is a read-only manager
  with ``.all``, ``.count``, ``.first``, ``.last``, ``.exists``, iteration and
  ``.0``, so ``{% for user in abonent.abonent_id_users.all %}`` works;
* ``operator`` (also ``Operator``, as the manual spells it): the stored
  operator (non-secret fields) over the event's.

Sandbox -- a template reaches nothing outside its context:

* built-ins are a curated copy of Django's: every default filter, the default
  tags except ``debug`` (dumps the context and loaded modules), ``url``,
  ``csrf_token``, ``querystring``; no loader tags.  ``include``, ``extends``,
  ``block`` and the excluded tags fail at compile time with a plain message;
* ``{% load %}`` knows only ``mathfilters``; the engines have no template
  loaders and no directories;
* names starting with ``_`` are refused by Django at compile time;
* every value is data: read-only records (no dict/list methods a template
  could call to mutate the event, e.g. ``.clear``/``.pop``), tuples, strings,
  numbers; nothing touches the database or files.

A variable missing from the context renders empty (``string_if_invalid=""``),
as in the original and in Django generally; ``{{ x|default:"..." }}`` works.
(Refusing instead would break ``default`` and ``{% if abonent.field %}``
idioms; a misspelt name is reported as a warning by the preview, ``msgd
template render`` and loading/saving: ``services.renderer.django_check``.)

Values are printed by subclasses of Django's ``VariableNode``, ``FirstOfNode``
and ``CycleNode`` (swapped in at compile time) that escape for the message's
markup when ``render_django`` gets an ``escape`` function (Telegram's parse
mode, ``services.renderer.markup``); without one they behave as Django's.
``date``, ``time``, ``timesince`` and ``timeuntil`` see the parsed date of a
date-like field (``services.renderer.dates``), every other filter its text.

Compiled templates are kept in an LRU cache keyed by source text, so an edited
template is compiled afresh and an unchanged one never twice.  Parsing does
not depend on escaping, so one compiled template serves both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from functools import lru_cache
from itertools import islice
from typing import Any

from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    Node,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import VariableDoesNotExist, VariableNode

from msgd.redact import redact_text
from services.renderer.context import (
    Money,
    RenderError,
    is_related_list,
    normalize,
    operator_fields_shared,
)
from services.renderer.dates import DateText, as_date

ALLOWED_TAGS = (
    "autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "load",
    "lorem", "now", "regroup", "resetcycle", "spaceless", "templatetag", "verbatim",
    "widthratio", "with",
)
FORBIDDEN_TAGS = ("include", "extends", "block", "debug", "url", "csrf_token", "querystring", "ssi")
LIBRARIES = {"mathfilters": "mathfilters.templatetags.mathfilters"}

register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
register.filters.update(defaultfilters.register.filters)


def _dated(name: str) -> None:
    """Django's ``name`` filter, fed the parsed date of a :class:`DateText`."""
    original = defaultfilters.register.filters[name]

    def dated(value: Any, arg: Any = None) -> Any:
        return original(as_date(value), as_date(arg))

    register.filter(name, dated, is_safe=getattr(original, "is_safe", False),
                    expects_localtime=getattr(original, "expects_localtime", False))


for _name in ("date", "time", "timesince", "timeuntil"):
    _dated(_name)


def _forbidden(parser: Any, token: Any) -> Any:
    name = token.split_contents()[0]
    raise TemplateSyntaxError(
        f"{{% {name} %}} is not allowed in message templates: a template may use only "
        f"its own variables and {{% load mathfilters %}}"
    )


for _name in FORBIDDEN_TAGS:
    register.tag(_name, _forbidden)


def _engine(autoescape: bool) -> Engine:
    engine = Engine(
        dirs=[], app_dirs=False, loaders=[], context_processors=[], debug=False,
        libraries=LIBRARIES, builtins=[], autoescape=autoescape, string_if_invalid="",
    )
    # Replace Django's default built-ins (debug, include, extends, url, ...) with
    # the curated set above; the parser reads only this attribute.
    engine.builtins = []
    engine.template_builtins = [register]
    return engine


PLAIN = _engine(autoescape=False)
HTML = _engine(autoescape=True)


class LazyFields(MutableMapping[str, Any]):
    """Template data converted (``readonly``) field by field when a template first reads it: a
    template names a few of an event's fields, and converting them all (dates parsed, amounts
    made exact, records wrapped) cost more than rendering. What a field becomes is the same
    whenever it is converted; values set here are stored as they are.

    ``fields`` is copied when first used (most records a template is given it never reads),
    so it must not change while the template renders."""

    __slots__ = ("_source", "_fields", "_done")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._source: Mapping[str, Any] | None = fields
        self._fields: dict[str, Any] | None = None
        self._done: dict[str, Any] = {}

    @property
    def _raw(self) -> dict[str, Any]:
        raw = self._fields
        if raw is None:
            raw = self._fields = {str(k): v for k, v in (self._source or {}).items()}
            self._source = None
        return raw

    def __getitem__(self, key: str) -> Any:
        try:
            return self._done[key]
        except KeyError:
            value = self._done[key] = readonly(key, self._raw[key])
            return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __setitem__(self, key: str, value: Any) -> None:
        self._raw[key] = self._done[key] = value

    def __delitem__(self, key: str) -> None:
        del self._raw[key]
        self._done.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class Record(Mapping[str, Any]):
    """A read-only record: ``rec.field`` and ``rec["field"]``; no mutating methods. Its fields
    are converted when first read (``LazyFields``)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", LazyFields(fields))

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("template data is read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Record({dict(self._fields.items())!r})"

    def __str__(self) -> str:
        return str({k: str(v) if not isinstance(v, str) else v for k, v in self._fields.items()})


class Related:
    """Related records as a read-only manager: ``.all``, ``.count``, ``.first``, iteration, ``.0``."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items: tuple[Record, ...] = tuple(Record(item) for item in items)

    def all(self) -> tuple[Record, ...]:
        return self._items

    def count(self) -> int:
        return len(self._items)

    def exists(self) -> bool:
        return bool(self._items)

    def first(self) -> Record | None:
        return self._items[0] if self._items else None

    def last(self) -> Record | None:
        return self._items[-1] if self._items else None

    def __getitem__(self, index: int) -> Record:
        if not isinstance(index, int):
            raise TypeError("related records are indexed by number")
        return self._items[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __str__(self) -> str:
        return ", ".join(str(item) for item in self._items)


_CONTAINERS = (Mapping, list, tuple, set, frozenset)
#: exact types that are no container, tested before the (slower) ``Mapping`` check
_SCALARS = frozenset({str, int, float, bool, type(None), Money, DateText})


def readonly(key: str | None, value: Any) -> Any:
    """``value`` as template data: records, managers and tuples instead of dicts and lists."""
    if type(value) in _SCALARS:
        return normalize(key, value)
    if isinstance(value, Record | Related):
        return value
    if isinstance(value, Mapping):
        return Record(value)
    if is_related_list(value) and not isinstance(value, tuple):
        return Related(value)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(readonly(None, item) for item in value)
    return normalize(key, value)


class TemplateData(dict[str, Any]):
    """``template_context``'s result: the top level of a Django template's data, one dict
    for one message's renders (subject, body), which ``render_django`` uses as it is."""


def template_context(event: Mapping[str, Any], operator: Any, flat: Mapping[str, Any]) -> TemplateData:
    """What a Django template sees (see the module docstring).

    Top-level values are converted here (``build_context`` already normalised nearly all
    of them: only its derived values and containers need ``readonly``), a plain dict that
    Django reads at dict speed; records and related records convert their fields when a
    template first reads them (``Record``)."""
    normalized: int = getattr(flat, "normalized", 0)
    if all(type(key) is str for key in flat):
        ctx = TemplateData(flat)
    else:  # keys are read as text; normalized keys keep their place
        ctx = TemplateData({str(key): value for key, value in flat.items()})
    items = iter(ctx.items())  # values are replaced, no key added: iterating stays valid
    for key, value in islice(items, normalized):  # normalize() gives its own output back unchanged
        if type(value) not in _SCALARS and isinstance(value, _CONTAINERS):
            ctx[key] = readonly(key, value)
    for key, value in items:  # derived values
        ctx[key] = readonly(key, value)
    data = event.get("data")
    if type(data) is dict or isinstance(data, Mapping):
        for key, value in data.items():
            if is_related_list(value):
                ctx.setdefault(str(key), Related(value))
    abonent = event.get("abonent")
    ctx["abonent"] = Record(abonent if type(abonent) is dict or isinstance(abonent, Mapping) else {})
    op = getattr(flat, "operator", None)
    ctx["operator"] = ctx["Operator"] = _operator_record(operator_fields_shared(event, operator) if op is None else op)
    return ctx


_OPERATOR_RECORDS: dict[int, tuple[Mapping[str, Any], Record]] = {}


def _operator_record(fields: Mapping[str, Any]) -> Record:
    """``Record(fields)`` for the shared operator fields: one per operator, reused by every
    render (a record is read-only and converts a field the same way each time)."""
    kept = _OPERATOR_RECORDS.get(id(fields))
    if kept is not None and kept[0] is fields:
        return kept[1]
    if len(_OPERATOR_RECORDS) >= 256:
        _OPERATOR_RECORDS.clear()
    record = Record(fields)
    _OPERATOR_RECORDS[id(fields)] = (fields, record)  # holds ``fields``: its id stays its own
    return record


class _MarkupContext(Context):  # type: ignore[misc]
    """A Context that carries the escape function of the message's markup (Telegram)."""

    def __init__(self, values: dict[str, Any], escape: Callable[[str], str]) -> None:
        super().__init__(values, autoescape=False)
        self.markup_escape = escape


def _escaped(context: Any, text: str) -> str:
    if not text or type(context) is not _MarkupContext:
        return text
    return context.markup_escape(str(text))


class _VariableNode(VariableNode):  # type: ignore[misc]
    """``{{ value }}``: escaped for the message's markup, if it has one.

    Every value is escaped, ``|safe`` included: markup belongs in the template's
    text, data never becomes markup (``join``, ``linebreaks`` and friends mark
    their output safe even when they escaped nothing)."""

    def render(self, context: Any) -> str:
        return _escaped(context, super().render(context))


class _FirstOfNode(defaulttags.FirstOfNode):  # type: ignore[misc]
    def render(self, context: Any) -> str:
        return _escaped(context, super().render(context))  # "" with ``as``: escaped when printed


class _CycleNode(defaulttags.CycleNode):  # type: ignore[misc]
    def render(self, context: Any) -> str:
        return _escaped(context, super().render(context))


_ESCAPING = {VariableNode: _VariableNode, defaulttags.FirstOfNode: _FirstOfNode,
             defaulttags.CycleNode: _CycleNode}


@lru_cache(maxsize=1024)
def compile_django(source: str) -> Template:
    """The compiled template for ``source`` (cached); TemplateSyntaxError if it is refused.

    The nodes that print values are swapped for subclasses that escape for a
    message's markup when the render asks for it (and behave as Django's otherwise)."""
    template = PLAIN.from_string(source)
    for node in template.nodelist.get_nodes_by_type(Node):
        swap = _ESCAPING.get(type(node))
        if swap is not None:
            node.__class__ = swap
    return template


def check_django(source: str) -> str | None:
    """None if ``source`` compiles in the sandbox, else Django's message (unknown tag, unclosed block...)."""
    try:
        compile_django(source)
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


def render_django(source: str, context: Mapping[str, Any], *, label: str = "template",
                  html: bool = False, escape: Callable[[str], str] | None = None) -> str:
    """Render ``source``; ``html=True`` escapes values for an HTML body, ``escape``
    (``services.renderer.markup``) escapes each printed value for a message's markup."""
    if not settings.configured:
        raise RenderError("Django is not configured in this process: call msgd.store.setup() first")
    try:
        template = compile_django(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{label}: {exc}") from None
    engine = HTML if html else PLAIN
    try:
        values = context if isinstance(context, TemplateData | LazyFields) else dict(context)
        ctx = (_MarkupContext(values, escape) if escape is not None and not html  # type: ignore[arg-type]
               else Context(values, autoescape=engine.autoescape))
        ctx.push()  # what the template sets ({% firstof ... as x %}) stays in this render
        return str(template.render(ctx))
    except Exception as exc:  # a filter or tag failed on this event's data
        raise RenderError(f"{label}: rendering failed: {_explain(exc)}") from None


def _explain(exc: Exception) -> str:
    if isinstance(exc, VariableDoesNotExist):
        # Django's message dumps the whole context (personal data, gen_pwd): name the key only
        key = exc.params[0] if exc.params else "?"
        return f"a filter argument names {str(key)!r}, which is not in the event"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, ArithmeticError):
        return "invalid arithmetic on this event's numbers"
    return f"{type(exc).__name__}: {redact_text(str(exc))}"
