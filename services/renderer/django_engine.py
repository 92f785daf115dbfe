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
* no filter or tag makes text of any size: a width, precision or count over
  1,000 fails the message, and so do loops that run more than 100,000 times in
  one message (``services.renderer.django_limits``);
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

from collections.abc import Callable, Mapping
from functools import lru_cache
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
from services.renderer.context import RenderError
from services.renderer.dates import as_date
from services.renderer.django_limits import TooLarge, bounded_filters, budget_loops, lorem
from services.renderer.records import (  # re-exported: what a template sees is built there
    LazyFields,
    Record,
    Related,
    TemplateData,
    readonly,
    template_context,
)

__all__ = ["HTML", "PLAIN", "LazyFields", "Record", "Related", "TemplateData", "check_django",
           "compile_django", "readonly", "render_django", "template_context"]

ALLOWED_TAGS = (
    "autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "load",
    "lorem", "now", "regroup", "resetcycle", "spaceless", "templatetag", "verbatim",
    "widthratio", "with",
)
FORBIDDEN_TAGS = ("include", "extends", "block", "debug", "url", "csrf_token", "querystring", "ssi")
# mathfilters' filters, with mul and mod on numbers only (services.renderer.django_limits)
LIBRARIES = {"mathfilters": "services.renderer.django_limits"}

register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
register.tags["lorem"] = lorem  # at most MAX_WIDTH words or paragraphs
register.filters.update(defaultfilters.register.filters)
register.filters.update(bounded_filters())  # no width or precision over MAX_WIDTH


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
    nodes = template.nodelist.get_nodes_by_type(Node)
    for node in nodes:
        swap = _ESCAPING.get(type(node))
        if swap is not None:
            node.__class__ = swap
    budget_loops(nodes)  # at most MAX_ITERATIONS loop iterations per message
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
    if isinstance(exc, TooLarge):  # msgd's own words
        return str(exc)
    return f"{type(exc).__name__}: {redact_text(str(exc))}"
