"""The Telegram channel's settings: one model for the config file, the admin, doctor and the sender."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from services.senders.model import HttpSettings, HttpUrl, Problem, Secret, Whole, host_name_ok
from services.senders.net import host_port

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_MAX_PARTS = 5
PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_TOKEN_RE = re.compile(r"^[^\s/]+$")


def _parse_mode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    mode = PARSE_MODES.get(value.strip().lower())
    if mode is None:
        raise ValueError(f"{value!r} is not one of HTML, MarkdownV2, Markdown (or empty for plain text)")
    return mode


def _proxy(value: str) -> str:
    try:
        parts = urlsplit(value)
        usable = (parts.scheme.lower() in PROXY_SCHEMES and host_name_ok(parts.hostname or "")
                  and parts.port != 0 and not re.search(r"\s", value))
    except ValueError:
        usable = False
    if not usable:  # never echo it: a proxy URL may carry a password
        shown = host_port(value)
        where = "" if shown.startswith("?") else f"{shown} "  # no host read: nothing to name ("?:80")
        raise ValueError(f"{where}is not a proxy URL: write it with its scheme, http://host:port or"
                         " socks5h://host:port")
    return value


class TelegramSettings(HttpSettings):
    """A Telegram bot (the Bot API's sendMessage)."""

    token: Secret | None = Field(None, title="Bot token", description="the bot token from @BotFather")
    proxy: Annotated[str | None, AfterValidator(lambda v: v and _proxy(v))] = Field(
        None, title="Proxy", description="optional: http://host:3128 or socks5h://user:password@host:1080",
    )
    api_url: HttpUrl = Field(
        DEFAULT_API_URL, title="Bot API address", description="a local Bot API server, or the default",
    )
    parse_mode: Annotated[Literal["HTML", "MarkdownV2", "Markdown"] | None, BeforeValidator(_parse_mode)] = Field(
        None, title="Markup", description="HTML, MarkdownV2 or Markdown: the template's text is markup and"
                                            " values are escaped for it; empty = plain text",
    )
    max_parts: Whole = Field(DEFAULT_MAX_PARTS, ge=1, title="Max messages",
                           description="a text needing more Telegram messages (4096 characters each) fails"
                                       " before any request")

    @property
    def api_base(self) -> str:
        return self.api_url.rstrip("/")

    def problems(self, outbox: bool) -> Iterator[Problem]:
        token = self.token.get_secret_value() if self.token is not None else ""
        if token and not _TOKEN_RE.match(token):
            yield Problem(("token",), "has spaces or slashes in it — paste it as @BotFather gave it")
        if not outbox and not token:
            yield Problem(("token",), "is required: the bot token from @BotFather")
