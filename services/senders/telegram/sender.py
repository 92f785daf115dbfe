"""Telegram: the Bot API's ``sendMessage`` over HTTPS with requests.

Settings (``channels.telegram`` of an operator):

* ``token`` (secret) — the bot token from @BotFather;
* ``proxy`` — optional proxy URL for every request: ``http://host:3128``,
  ``socks5h://user:password@host:1080`` (SOCKS through PySocks);
* ``api_url`` — default ``https://api.telegram.org`` (a local Bot API server, or
  a test double);
* ``timeout`` — seconds (default ``MSGD_HTTP_TIMEOUT``);
* ``verify`` / ``ca_bundle`` — HTTPS certificate checking, as for SMS gateways;
* ``parse_mode`` — optional ``HTML``, ``MarkdownV2`` or ``Markdown``; empty =
  plain text.  The renderer escapes every value it substitutes for this mode
  (``services.renderer.markup``), so subscriber data cannot break the markup;
  if the template's own markup does not parse, the message goes as plain text
  with tags dropped and escapes undone (``as_plain_text``).

The recipient is the subscriber's TELEGRAM ID (``abonent.contacts.telegram_id``):
the chat id the bot knows them by.

Long messages: Telegram refuses a text longer than 4096 characters, counted in
UTF-16 code units.  A longer body is split into at most ``max_parts`` parts
(default 5; a text that needs more fails before any request, as a content
problem; ``max_parts`` in services/senders/telegram/settings.py) that are sent in order:
each part is cut at the last paragraph break (blank line) within the limit,
else the last line break, else the last space — each only when the part keeps
at least half the limit — else between two characters (never inside a
surrogate pair).  Once a part has been delivered, a later part that fails is
retried here (Telegram's ``retry_after`` honoured, a short pause otherwise) for
up to ``PART_RETRY_BUDGET`` seconds; if it still fails the message ends
failed with the parts that went out named, because retrying the whole message
would send the first parts twice.  A part whose request may have been
delivered (a read timeout, a connection closed before the answer) is never
retried here: the first part follows ``on_timeout`` like any message, a later
one ends the message failed with the parts that went out named.

Outcomes: ``chat not found``, ``bot was blocked by the user``, ``user is
deactivated`` (and the other ways a chat is out of the bot's reach) fail
permanently, saying the subscriber is not registered with the bot, as the
original did; 401 is a rejected token; 429 is retried after Telegram's
``retry_after``; 5xx, timeouts, refused connections and DNS failures are
transient.

The token is part of every request URL (``/bot<TOKEN>/sendMessage``): it is
registered with the redactor, reasons name the host and port only, and the
urllib3 loggers that print request URLs at DEBUG level get a redacting filter.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from msgd import safejson
from msgd.envelope import FAULT_CONTENT, FAULT_RECIPIENT, FAULT_UNKNOWN
from msgd.redact import redact_text, register_secrets
from msgd.settings import Settings
from services.senders.base import (
    ChannelConfig,
    ContentError,
    InvalidRecipient,
    MaybeSent,
    Outbound,
    PermanentError,
    SendError,
    SendResult,
    TransientError,
    outbox_limit,
    stored_settings,
)
from services.senders.http_errors import network_error
from services.senders.net import HttpSender, excerpt, host_port, http_options
from services.senders.telegram.settings import DEFAULT_MAX_PARTS, PARSE_MODES, TelegramSettings
from services.senders.telegram.split import MESSAGE_LIMIT, split_message, utf16_len

__all__ = ["MESSAGE_LIMIT", "PARSE_MODES", "BotTarget", "TelegramSender", "bot_target", "secrets_of",
           "split_message", "utf16_len"]

log = structlog.get_logger("msgd.sender.telegram")

PART_RETRY_BUDGET = 30.0  # seconds a later part of a split message may wait in total
PART_TRIES = 3
# ASCII digits only: \d also takes "１２３" and "١٢٣", which no chat id is written in.
_CHAT_ID_RE = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")

# Telegram's descriptions that mean the bot cannot reach this chat (lowercase), with a hint.
# Words of Telegram's 400 answers about the text itself (Bot API sendMessage descriptions).
_CONTENT_WORDS = ("message is too long", "text is empty", "can't parse", "message text", "entities")
# (Telegram's words, the hint, the cause billing is told: README "Feedback to billing")
_NOT_REGISTERED = (
    ("chat not found", "check the subscriber's TELEGRAM ID", "chat-not-found"),
    ("peer_id_invalid", "check the subscriber's TELEGRAM ID", "chat-not-found"),
    ("chat_id is empty", "check the subscriber's TELEGRAM ID", "chat-not-found"),
    ("bot was blocked by the user", "the subscriber blocked the bot and has to start it again", "bot-blocked"),
    ("user is deactivated", "the subscriber's Telegram account is deleted", "account-deleted"),
    ("bot can't initiate conversation", "the subscriber has to start the bot first", "bot-not-started"),
    ("bot was kicked", "the bot was removed from the chat", "bot-blocked"),
    ("bot is not a member", "the bot is not a member of the chat", "bot-blocked"),
)


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotTarget:
    """The bot and how to reach the Bot API, from the channel's settings."""

    token: str
    api_url: str
    proxy: str
    timeout: float
    verify: bool | str
    parse_mode: str
    max_parts: int = DEFAULT_MAX_PARTS

    @property
    def where(self) -> str:
        return host_port(self.api_url)

    def url(self, method: str) -> str:
        return f"{self.api_url}/bot{self.token}/{method}"

    @property
    def proxies(self) -> dict[str, str] | None:
        return {"http": self.proxy, "https": self.proxy} if self.proxy else None


def bot_target(s: TelegramSettings, settings: Settings) -> BotTarget:
    """The bot's token, API address, proxy and options; PermanentError when the CA bundle is
    missing (the model has checked the rest)."""
    timeout, verify = http_options(s, settings.http_timeout, "Telegram")
    token = s.token.get_secret_value() if s.token is not None else ""
    return BotTarget(token, s.api_base, s.proxy or "", timeout, verify, s.parse_mode or "", s.max_parts)


def secrets_of(s: TelegramSettings) -> list[str]:
    """What to mask in every log line and reason: the token, and the proxy's password."""
    found = list(s.secret_values().values())
    try:
        password = urlsplit(s.proxy).password if s.proxy else None
    except ValueError:
        password = None
    if password:
        found.append(password)
    return found


# -- the sender -----------------------------------------------------------------------------


class _Api:
    """One Bot API answer."""

    def __init__(self, status: int, data: dict[str, Any] | None, body: str, retry_header: str | None) -> None:
        self.status, self.data, self.body, self.retry_header = status, data, body, retry_header

    @property
    def ok(self) -> bool:
        return self.data is not None and self.data.get("ok") is True

    @property
    def description(self) -> str:
        if self.data is not None and self.data.get("description"):
            return excerpt(str(self.data["description"]))
        return excerpt(self.body) or "(empty answer)"

    @property
    def parameters(self) -> dict[str, Any]:
        params = (self.data or {}).get("parameters")
        return params if isinstance(params, dict) else {}


def chat_id(recipient: str) -> str:
    """The chat id or @channel name as Telegram takes it; InvalidRecipient (before any request, and
    before an outbox file is written) when it cannot be one."""
    chat = recipient.strip()
    if not _CHAT_ID_RE.match(chat):
        raise InvalidRecipient(f"{chat!r} is not a Telegram chat id — check the subscriber's TELEGRAM ID")
    return chat


def message_parts(body: str, max_parts: int) -> list[str]:
    """The Telegram messages ``body`` goes as; ContentError when it is empty or needs more than
    ``max_parts`` (before any request, and before an outbox file is written)."""
    parts = split_message(body)
    if not parts:
        raise ContentError("the message is empty: Telegram does not accept an empty text")
    if len(parts) > max_parts:
        raise ContentError(
            f"the text needs {len(parts)} Telegram messages ({utf16_len(body):,} characters; Telegram"
            f" takes {MESSAGE_LIMIT} per message), more than max_parts {max_parts} — check the template"
            " and the event's data, or raise max_parts in the Telegram settings"
        )
    return parts


class TelegramSender(HttpSender):
    channel = "telegram"
    title = "Telegram"
    contact_key = "telegram_id"
    settings_model = TelegramSettings

    user_agent = "msgd-telegram/1"

    def check_recipient(self, message: Outbound, config: ChannelConfig) -> None:
        chat_id(message.recipient)

    def check_content(self, message: Outbound, config: ChannelConfig) -> None:
        message_parts(message.body, outbox_limit(config, "max_parts", DEFAULT_MAX_PARTS))

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        return self._send(message, self._settled(config))

    def _settled(self, config: ChannelConfig) -> BotTarget:
        """The checked settings, worked out once per settings (settings that fail are checked
        again with each message, so the reason is always the current one)."""
        target: BotTarget | None = config.memo.get("telegram:target")
        if target is None:
            register_secrets(str(v) for v in config.secrets.values() if v not in (None, ""))
            s = stored_settings(TelegramSettings, config, "Telegram")
            register_secrets(secrets_of(s))
            target = config.memo["telegram:target"] = bot_target(s, self.settings)
        return target

    def _send(self, message: Outbound, t: BotTarget) -> SendResult:
        chat = chat_id(message.recipient)
        parts = message_parts(message.body, t.max_parts)
        ids: list[str] = []
        notes: list[str] = []
        for index, part in enumerate(parts):
            try:
                ids.append(self._send_part(message, t, chat, part, later=index > 0, notes=notes))
            except SendError as exc:
                if not ids:
                    raise
                raise PermanentError(
                    f"only {len(ids)} of {len(parts)} parts were delivered (Telegram message ids"
                    f" {', '.join(ids)}); part {len(ids) + 1} failed: {exc.reason}; not retried so"
                    " the subscriber does not get the first parts twice",
                    fault=exc.fault if exc.permanent else FAULT_UNKNOWN,
                ) from None
        if len(parts) == 1:
            detail = f"Telegram accepted message {ids[0]}"
        else:
            detail = f"sent in {len(parts)} parts (message too long), Telegram message ids {', '.join(ids)}"
        if notes:
            detail += "; " + "; ".join(dict.fromkeys(notes))
        extra: dict[str, Any] = {"telegram_message_ids": ids}
        if len(parts) > 1:
            extra["parts"] = len(parts)
        return SendResult(gateway_message_id=",".join(ids)[:200], detail=detail, extra=extra)

    def _send_part(self, message: Outbound, t: BotTarget, chat: str, text: str, *, later: bool,
                   notes: list[str]) -> str:
        """Send one part; a later part of a split message is retried here (see the module doc)."""
        waited, tries = 0.0, 0
        mode = t.parse_mode
        while True:
            tries += 1
            try:
                return self._post(message, t, chat, text, mode)
            except _ParseError as exc:
                # The markup did not parse (often a "<" or "&" from subscriber data): not sent,
                # so sending it as plain text cannot duplicate anything.
                mode, text = "", as_plain_text(text, exc.mode)
                notes.append(f"sent as plain text: Telegram could not parse the {exc.mode} markup")
                continue
            except TransientError as exc:
                wait = exc.retry_after if exc.retry_after is not None else float(tries)
                if isinstance(exc, MaybeSent) or not later or tries >= PART_TRIES or waited + wait > PART_RETRY_BUDGET:
                    raise
                log.warning("telegram part failed, retrying it", message_id=message.message_id,
                            reason=redact_text(exc.reason), retry_in=wait)
                time.sleep(max(0.0, wait))
                waited += wait

    def _post(self, message: Outbound, t: BotTarget, chat: str, text: str, mode: str) -> str:
        payload: dict[str, Any] = {"chat_id": chat, "text": text}
        if mode:
            payload["parse_mode"] = mode
        try:
            resp = self._sessions.get().post(
                t.url("sendMessage"), data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json"}, timeout=t.timeout, verify=t.verify,
                proxies=t.proxies,
            )
        except (requests.RequestException, ValueError, UnicodeError) as exc:
            raise network_error(exc, "Telegram Bot API", t.api_url, t.timeout, t.proxy) from None
        try:
            data = safejson.loads(resp.content)  # deep nesting is a ValueError there too
        except ValueError:
            data = None
        answer = _Api(resp.status_code, data if isinstance(data, dict) else None,
                      resp.content.decode("utf-8", "replace"), resp.headers.get("Retry-After"))
        log.debug("telegram answered", api=t.where, status=resp.status_code, message_id=message.message_id)
        if answer.ok:
            result = answer.data.get("result") if answer.data else None
            mid = result.get("message_id") if isinstance(result, dict) else None
            return str(mid) if mid is not None else "?"
        if mode and resp.status_code == 400 and "can't parse entities" in answer.description.lower():
            raise _ParseError(mode)
        raise _api_error(answer, t, message)


_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?>")
_ESCAPED_RE = {"MarkdownV2": re.compile(r"\\([\x01-\x7e])"), "Markdown": re.compile(r"\\([_*`\[])")}


def as_plain_text(text: str, mode: str) -> str:
    """``text`` written for ``mode`` as the subscriber should read it in plain text:
    HTML tags dropped and entities decoded, Markdown escapes undone (values are
    escaped for the parse mode by the renderer; the template's own markup failed)."""
    if mode == "HTML":
        return html.unescape(_TAG_RE.sub("", text))
    pattern = _ESCAPED_RE.get(mode)
    return pattern.sub(r"\1", text) if pattern else text


class _ParseError(Exception):
    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode


def _retry_after(answer: _Api) -> float | None:
    value = answer.parameters.get("retry_after")
    if value is None:
        value = answer.retry_header
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _api_error(answer: _Api, t: BotTarget, message: Outbound) -> SendError:
    status, said = answer.status, answer.description
    says = f"Telegram: {said}"
    low = said.lower()
    if answer.data is None:
        if status >= 500 or status == 429:
            return TransientError(f"Telegram Bot API {t.where} answered HTTP {status}: {said}",
                                  retry_after=_retry_after(answer))
        if status == 407:
            return PermanentError("the proxy refused access (HTTP 407) — check the proxy login and password")
        return PermanentError(
            f"{t.where} did not answer as the Telegram Bot API (HTTP {status}: {said}) — check api_url and proxy"
        )
    if status == 429:
        wait = _retry_after(answer)
        hint = f", asks to retry in {wait:g} s" if wait is not None else ""
        return TransientError(f"Telegram is rate limiting the bot (HTTP 429{hint}; {says})", retry_after=wait)
    if status >= 500:
        return TransientError(f"Telegram Bot API answered HTTP {status} ({says})")
    if status == 401 or (status == 404 and low in {"not found", "not found: method not found"}):
        return PermanentError(f"bot token rejected by Telegram (HTTP {status}; {says}) — check the token")
    for pattern, hint, cause in _NOT_REGISTERED:
        if pattern in low:
            who = f" #{message.abonent_id}" if message.abonent_id else ""
            return PermanentError(f"subscriber{who} is not registered with the bot ({says}) — {hint}",
                                  fault=FAULT_RECIPIENT, cause=cause)
    migrated = answer.parameters.get("migrate_to_chat_id")
    if migrated is not None:
        return PermanentError(f"the chat moved to id {migrated} ({says}) — update the subscriber's TELEGRAM ID",
                              fault=FAULT_RECIPIENT)
    # "message is too long", "message text is empty", "can't parse entities": the text itself.
    fault = FAULT_CONTENT if any(w in low for w in _CONTENT_WORDS) else FAULT_UNKNOWN
    if status == 200:
        return PermanentError(f"Telegram did not accept the message ({says})", fault=fault)
    return PermanentError(f"Telegram refused the message (HTTP {status}; {says})", fault=fault)
