"""Render one template for one event: subject and body, plain text and (for e-mail) HTML.

Rules:

* subject and body use the template's syntax (standard %-style, or Django
  when "use Django templating" is on);
* the subject is one line: line breaks (e.g. left by Django tags) become one
  space; leading/trailing spaces are dropped.  An empty result stays empty
  (the stage falls back to the operator's default subject);
* the body loses only its leading and trailing *blank lines* (the lines
  Django tag lines leave at the edges cost SMS segments); every line with
  text, including its padding (``%(sum)5.2f`` -> " 3.50"), is exactly what
  the template produced;
* plain-text channels (``html=False``: SMS, Telegram, push) are never
  HTML-escaped: ``&``, ``<``, quotes, emoji and Cyrillic pass through;
* a channel with markup (Telegram with ``parse_mode``, given as ``markup``):
  each value substituted into the body is escaped for that markup
  (``services.renderer.markup``), the template's own text is left as written;
* ``html=True`` (e-mail) and the body *source* looks like HTML (after leading
  ``{% %}``/``{# #}`` tags and whitespace it starts with a tag, or it contains
  ``<html``, ``<body``, ``<p``, ``<br``, ``<div``, ``<table`` or
  ``<!doctype``): ``html`` is the render with every variable escaped, and
  ``body`` is the plain-text alternative made from that HTML (tags dropped,
  paragraphs and ``<br>`` as line breaks, links as "text (url)", entities
  decoded).  The decision is made on the template, not the data, so text a
  subscriber typed can never switch a message to HTML.  Otherwise ``html``
  is None and the body is plain text.
"""

from __future__ import annotations

import difflib
import html as htmllib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, NamedTuple

from msgd import storable
from services.renderer.context import RenderError, build_context
from services.renderer.django_engine import check_django, render_django, template_context
from services.renderer.markup import escaper
from services.renderer.standard import check_standard, render_standard
from services.renderer.standard import variables as standard_variables

__all__ = ["RenderError", "Rendered", "check_template", "html_to_text", "looks_like_html", "render",
           "template_warnings"]


@dataclass
class Rendered:
    subject: str
    body: str
    html: str | None = None
    #: problems that do not stop the message (the preview fills it: see ``template_warnings``)
    warnings: list[str] = field(default_factory=list)


class _Fields(NamedTuple):
    id: Any
    name: str
    subject: str
    body: str
    use_django: bool

    @classmethod
    def of(cls, template: Any) -> _Fields:
        get: Callable[[str, Any], Any] = (template.get if isinstance(template, Mapping)
                                          else lambda name, default: getattr(template, name, default))
        return cls(get("id", None), str(get("name", "") or ""), str(get("subject", "") or ""),
                   str(get("body", "") or ""), bool(get("use_django", False)))

    @property
    def label(self) -> str:
        where = f" (id {self.id})" if self.id is not None else ""
        return f'template "{self.name}"{where}' if self.name else f"template{where}"


_LEADING_TAGS = re.compile(r"(?:\s+|\{%.*?%\}|\{#.*?#\})*", re.S)
_STARTS_WITH_TAG = re.compile(r"<[A-Za-z!/]")
_HTML_MARKERS = re.compile(r"<(?:html|body|p|br|div|table|!doctype)\b", re.I)


def looks_like_html(source: str) -> bool:
    """Whether a body template is HTML (see the module docstring)."""
    lead = _LEADING_TAGS.match(source)
    rest = source[lead.end() if lead else 0 :]
    return bool(_STARTS_WITH_TAG.match(rest) or _HTML_MARKERS.search(source))


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset({
        "p", "div", "tr", "li", "ul", "ol", "table", "blockquote", "pre", "hr", "section",
        "article", "header", "footer", "address", "dl", "dt", "dd",
        "h1", "h2", "h3", "h4", "h5", "h6",
    })
    SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag == "p" else "\n")
            if tag == "li":
                self.parts.append("- ")
            if tag == "pre":
                self._pre += 1
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag == "p" else "\n")
            if tag == "pre" and self._pre:
                self._pre -= 1
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            text = "".join(self.parts[start:]).strip()
            if href and not href.startswith(("#", "javascript:")) and href.removeprefix("mailto:") != text:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """A readable plain-text version of an HTML body."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def trim_blank_lines(text: str) -> str:
    """``text`` without whitespace-only lines at its start and end; other lines untouched."""
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def render(template: Any, event: Mapping[str, Any], operator: Any = None, *, html: bool = False,
           markup: str | None = None) -> Rendered:
    """Render ``template`` (a dict or an object with id, name, subject, body, use_django).

    ``markup`` is the body's markup on a channel that has one (Telegram's
    ``parse_mode``: ``HTML``, ``MarkdownV2``, ``Markdown``; see
    ``services.renderer.markup``): every value substituted into the body is
    escaped for it, the template's own text is not.  The subject is never
    escaped this way (Telegram does not send it)."""
    t = _Fields.of(template)
    flat = build_context(event, operator)
    body_escape = escaper(markup)
    if t.use_django:
        ctx = template_context(event, operator, flat)

        def fill(source: str, part: str, as_html: bool = False) -> str:
            return render_django(source, ctx, label=_label(t, part), html=as_html,
                                 escape=body_escape if part == "body" else None)
    else:

        def fill(source: str, part: str, as_html: bool = False) -> str:
            escape = htmllib.escape if as_html else body_escape if part == "body" else None
            return render_standard(source, flat, label=_label(t, part), escape=escape)

    subject = _one_line(fill(t.subject, "subject")) if t.subject else ""
    if html and looks_like_html(t.body):
        markup_text = trim_blank_lines(fill(t.body, "body", as_html=True))
        out = Rendered(subject=subject, body=html_to_text(markup_text), html=markup_text)
    else:
        out = Rendered(subject=subject, body=trim_blank_lines(fill(t.body, "body")), html=None)
    # A message whose text the log cannot hold is never sent (e.g. %(n)c of 0 gives NUL).
    for part, text in (("subject", out.subject), ("body", out.body), ("HTML body", out.html or "")):
        if (problem := storable.problem(text)) is not None:
            raise RenderError(f"{t.label}: the rendered {part} {problem}")
    return out


def _label(t: _Fields, part: str) -> str:
    return t.label if part == "body" else f"{t.label} {part}"


def template_warnings(template: Any, event: Mapping[str, Any], operator: Any = None) -> list[str]:
    """Variables ``template`` names that ``event`` lacks, as "subject: ..." / "body: ..."
    warnings.  A Django template renders them empty (``services.renderer.django_check``
    says which uses are reported); a standard template would fail to render.
    A template with a syntax error gives no warnings (``check_template`` reports it)."""
    from services.renderer.django_check import missing_variables

    t = _Fields.of(template)
    flat = build_context(event, operator)
    ctx = template_context(event, operator, flat) if t.use_django else flat
    found: list[str] = []
    for part, source in (("subject", t.subject), ("body", t.body)):
        if not source or (check_django if t.use_django else check_standard)(source):
            continue
        if t.use_django:
            found += [f"{part}: {w}" for w in missing_variables(source, ctx)]
        else:
            for name in standard_variables(source):
                if name not in flat:
                    near = difflib.get_close_matches(name, list(flat), n=1, cutoff=0.75)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    found.append(f"{part}: variable {name!r} is not in the event{hint}")
    return found


def check_template(template: Any) -> str | None:
    """None if the template's subject and body are valid in its syntax, else why not (for save/load)."""
    t = _Fields.of(template)
    check = check_django if t.use_django else check_standard
    for part, source in (("subject", t.subject), ("body", t.body)):
        problem = check(source) if source else None
        if problem:
            return f"{part}: {problem}"
    return None
