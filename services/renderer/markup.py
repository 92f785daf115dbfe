"""Escaping substituted values for a channel's markup (Telegram's ``parse_mode``).

With ``parse_mode: HTML`` or ``MarkdownV2`` the template's own text is markup
(``<b>Баланс</b>``, ``*Баланс*``) and every value put into it is data: a
``<`` or ``&`` in a subscriber's name must not become markup, or Telegram
refuses the whole message ("can't parse entities").  So the renderer escapes
each substituted value -- never the template's text -- by the rules of
Telegram's formatting options (https://core.telegram.org/bots/api#formatting-options):

* ``HTML``: ``&`` ``<`` ``>`` become ``&amp;`` ``&lt;`` ``&gt;``, and ``"``
  becomes ``&quot;`` (one of the four named entities Telegram supports), so
  a value is also safe inside an attribute (``<a href="...">``);
* ``MarkdownV2``: a backslash before each of ``_ * [ ] ( ) ~ ` > # + - = | { } . !``
  and before ``\\`` itself ("any character with code between 1 and 126 can be
  escaped anywhere with a preceding '\\'", so this is right inside code and
  link parts too);
* ``Markdown`` (Telegram's legacy mode): a backslash before ``_ * ` [``;
  legacy Markdown cannot escape inside an entity, so a value inside
  ``*...*`` may still break it: use MarkdownV2 or HTML.

Plain channels (SMS, push, Telegram without ``parse_mode``) get no escaping.
E-mail HTML bodies are escaped by the renderer's HTML mode, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.senders.telegram.settings import PARSE_MODES

HTML = "HTML"
MARKDOWN_V2 = "MarkdownV2"
MARKDOWN = "Markdown"

_HTML_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
_MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")
_MARKDOWN_SPECIAL = re.compile(r"([_*`\[])")


def escape_html(text: str) -> str:
    """``text`` safe inside Telegram HTML (text or a double-quoted attribute)."""
    return text.translate(_HTML_ENTITIES)


def escape_markdown_v2(text: str) -> str:
    """``text`` safe anywhere in a Telegram MarkdownV2 message."""
    return _MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


def escape_markdown(text: str) -> str:
    """``text`` safe outside entities in Telegram's legacy Markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


ESCAPES: dict[str, Callable[[str], str]] = {
    HTML: escape_html, MARKDOWN_V2: escape_markdown_v2, MARKDOWN: escape_markdown,
}


def normalize_mode(value: Any) -> str | None:
    """A ``parse_mode`` setting as Telegram spells it (``HTML``, ``MarkdownV2``,
    ``Markdown``), or None for plain text (empty, or a value the sender refuses)."""
    return PARSE_MODES.get(str(value or "").strip().lower())


def channel_markup(channel: str, configs: Sequence[Any] | None) -> str | None:
    """The markup the message will be sent in: the ``parse_mode`` of the operator's
    main (first) Telegram settings; None for every other channel.

    ``configs`` are the operator's settings for ``channel`` (objects with
    ``params``, or mappings), main first.  Fallback settings are expected to
    use the same ``parse_mode``: the body is rendered once, for the main one.
    """
    if channel != "telegram" or not configs:
        return None
    first = configs[0]
    params = first.get("params") if isinstance(first, Mapping) else getattr(first, "params", None)
    return normalize_mode((params or {}).get("parse_mode"))


def escaper(markup: str | None) -> Callable[[str], str] | None:
    """The escape function for ``markup`` (None: plain text, nothing to escape)."""
    return ESCAPES.get(markup) if markup else None


__all__ = ["HTML", "MARKDOWN", "MARKDOWN_V2", "channel_markup", "escape_html", "escape_markdown",
           "escape_markdown_v2", "escaper", "normalize_mode"]
