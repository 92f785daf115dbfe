"""SMS over an HTTP gateway (the original's "Адрес СМС шлюза" + "Post параметры").

The request each request type sends is built by services/senders/sms/request.py.
Phone numbers are normalised to E.164 with ``phonenumbers`` (``region``,
default RU; services/senders/sms/phone.py) before anything else; an invalid
number fails permanently without a request.  ``preset`` fills the settings
of a known gateway (services/senders/sms/presets.py); answers are read per
gateway (services/senders/sms/replies.py); ``rate_limit`` (messages per
second, per gateway URL and process) spaces requests out
(services/senders/sms/ratelimit.py); the result's ``extra`` carries the SMS part
count and encoding (services/senders/sms/segments.py).

Requests go out on the sender's event loop through one aiohttp session
(services/senders/aio.py): at most ``MSGD_SENDER_CONCURRENCY`` at once, over kept-alive
connections; failures are worded by services/senders/aio_errors.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import http_exceptions

from msgd import safejson, userpattern
from msgd.envelope import FAULT_UNKNOWN
from msgd.redact import redact_text, register_secrets
from msgd.settings import Settings
from services.senders.aio import AioHttp
from services.senders.aio_errors import aio_error
from services.senders.base import (
    ChannelConfig,
    InvalidRecipient,
    MaybeSent,
    Outbound,
    OutcomeUnknown,
    PermanentError,
    SendError,
    SendResult,
    TransientError,
    outbox_limit,
    stored_settings,
)
from services.senders.net import (
    HttpSender,
    as_bool,
    excerpt,
    host_port,
    http_options,
    retry_after,
)
from services.senders.sms import accounts, ratelimit
from services.senders.sms.encoding import encoded_text
from services.senders.sms.phone import InvalidPhone, normalize_phone, phone_identity, split_phones
from services.senders.sms.problems import classify_words, problem
from services.senders.sms.replies import read_reply
from services.senders.sms.request import fill_params, md5_hex, params_secrets, plan_request
from services.senders.sms.segments import sms_segments
from services.senders.sms.settings import DEFAULT_MAX_SEGMENTS, SmsSettings

__all__ = ["SmsSender", "fill_params", "gateway_id"]

log = structlog.get_logger("msgd.sender.sms")

_ID_KEYS = ("id", "message_id", "messageId", "msg_id", "sms_id", "smsId", "uuid")
_NESTED_KEYS = ("result", "data", "message", "messages", "sms", "response")
# smsc.ru "OK - 1 SMS, ID - 1234", "id=1234", "message_id: abc", Prostor "accepted;A133541BC"
_TEXT_ID_RES = (
    re.compile(r"\b(?:message[_ -]?|sms[_ -]?|msg[_ -]?)?id\s*[-=:]\s*([A-Za-z0-9_.-]+)", re.I),
    re.compile(r"^\s*accepted\s*;\s*([A-Za-z0-9_.-]+)", re.I),
)

# What the transport raises for a failed exchange (anything else is a bug, reported as one).
_TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                     http_exceptions.HttpProcessingError, ValueError, UnicodeError)


def _json_id(data: Any, depth: int = 0) -> str:
    if depth > 4:
        return ""
    if isinstance(data, list):
        return _json_id(data[0], depth + 1) if data else ""
    if not isinstance(data, dict):
        return ""
    for key in _ID_KEYS:
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    for key in _NESTED_KEYS:
        if isinstance(data.get(key), dict | list):
            found = _json_id(data[key], depth + 1)
            if found:
                return found
    return ""


# The first character of any JSON text (RFC 8259: a value after optional white space).
_JSON_STARTS = frozenset('{["-0123456789tfn')


def gateway_id(body: str) -> str:
    """The gateway's message id when the answer obviously carries one, else ""."""
    if body.lstrip(" \t\r\n")[:1] in _JSON_STARTS:  # "OK - 1 SMS, ID - 7" cannot be JSON: not decoded
        try:
            return _json_id(safejson.loads(body))  # deep nesting is a ValueError there too
        except ValueError:
            pass
    for pattern in _TEXT_ID_RES:
        match = pattern.search(body)
        if match:
            return match[1]
    return ""


class SmsSender(HttpSender):
    channel = "sms"
    title = "SMS"
    contact_key = "sms"
    settings_model = SmsSettings
    split_contact = staticmethod(split_phones)
    contact_identity = staticmethod(phone_identity)

    user_agent = "msgd-sms/1"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        accounts.export()  # msgd_gateway_* gauges: a "no money" answer is seen at the next scrape
        self.http = AioHttp(self.user_agent, settings.sender_slots)

    def close(self) -> None:
        self.aio.close(self.http.close())
        super().close()

    def check_recipient(self, message: Outbound, config: ChannelConfig) -> None:
        region = config.params.get("region")  # an outbox slot may leave the rest of its settings out
        try:
            self._phone(message.recipient, str(region) if isinstance(region, str) else None, False)
        except InvalidRecipient:
            raise
        except PermanentError:
            pass  # an unknown region is a setting: reported when the message is really sent

    def check_content(self, message: Outbound, config: ChannelConfig) -> None:
        sms_segments(message.body, outbox_limit(config, "max_segments", DEFAULT_MAX_SEGMENTS))
        encoding = config.params.get("encoding")
        if isinstance(encoding, str) and encoding:
            encoded_text(message.body, encoding)

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        """Blocking callers (the admin's test message, msgd doctor): the request runs on the loop."""
        return self.aio.run(self.deliver_async(message, config))

    async def send_async(self, message: Outbound, config: ChannelConfig) -> SendResult:
        try:
            return await self.deliver_async(message, config)
        except SendError as exc:
            exc.reason = redact_text(exc.reason)
            exc.args = (exc.reason,)
            raise

    async def deliver_async(self, message: Outbound, config: ChannelConfig) -> SendResult:
        """Deliver on the sender's event loop (``send_async`` masks secrets in failures)."""
        s = stored_settings(SmsSettings, config, "SMS")
        if "sms:effective" not in config.memo:  # once per settings, not per message
            effective = s.effective()
            template = effective.get("params") or ""
            template = template if isinstance(template, str) else json.dumps(template)
            # The basic-auth login is not masked (it is not a secret and reasons may need it).
            hidden = [v for k, v in s.secret_values().items() if k != "login"]
            hidden += [md5_hex(v) for v in hidden] + [quote(v, safe="") for v in hidden]
            register_secrets([*hidden, *params_secrets(template)])
            config.memo["sms:effective"] = effective
        return await self._send(message, s, config.memo["sms:effective"], config.memo, config.id)

    async def _send(self, message: Outbound, s: SmsSettings, params: dict[str, Any],
                    memo: dict[str, Any], slot: int | None = None) -> SendResult:
        url, kind = str(params["url"]).strip(), params["request_type"]
        phone = self._phone(message.recipient, s.region, as_bool(params.get("strip_plus")))
        parts = sms_segments(message.body, s.max_segments)  # a runaway text fails here, before any request
        timeout, verify = memo.get("sms:http") or memo.setdefault(
            "sms:http", http_options(s, self.settings.http_timeout, "SMS"))
        plan = memo.get("sms:plan")
        if plan is None:  # once per settings, not per message
            plan = memo["sms:plan"] = plan_request(kind, params, s.secret_values())
        request = plan.build(url, phone, message.body, message.message_id)
        where = host_port(url)

        if s.rate_limit is not None:
            wait = ratelimit.limiter(url, s.rate_limit).reserve()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            answer = await self.http.request(request.method, request.url, body=request.body,
                                             headers=request.headers, auth=request.auth, timeout=timeout,
                                             verify=verify)
        except _TRANSPORT_ERRORS as exc:
            err = aio_error(exc, "SMS gateway", url, timeout, host_label="SMS gateway host")
            if isinstance(err, MaybeSent):
                err.dedupes = s.dedupes_message_id  # the model refuses it without %message_id%
            raise err from None

        body = answer.text()
        log.debug("sms gateway answered", gateway=where, status=answer.status, message_id=message.message_id)
        noted: list[dict[str, Any]] = []  # what the answer says of the account, written off the event loop
        try:
            result = _outcome(answer.status, answer.headers.get("Retry-After"), body, params, where,
                              lambda accepted, problem="", balance=None: noted.append(
                                  accounts.reply_fields(slot, accepted, problem, balance) or {}))
        finally:  # a refusal ("no money") raises, and is the one to write at once
            if slot is not None and noted and noted[0]:
                await asyncio.to_thread(accounts.save, slot, noted[0])
        result.detail = redact_text(result.detail)
        result.extra.update(segments=parts.parts, encoding=parts.encoding, phone=phone)
        return result

    @staticmethod
    def _phone(recipient: str, region: str | None, strip_plus: bool) -> str:
        try:
            phone = normalize_phone(recipient, region or None)
        except InvalidPhone as exc:
            raise InvalidRecipient(str(exc), code="recipient.invalid_number") from None
        except ValueError as exc:  # an unknown region: a setting
            raise PermanentError(str(exc), code="gateway.bad_setting") from None
        return phone.lstrip("+") if strip_plus else phone


def _outcome(status: int, retry_header: str | None, body: str, params: dict[str, Any],
             where: str, note: Callable[..., None] = lambda *a, **k: None) -> SendResult:
    """The answer read; ``note(accepted, problem, balance)`` hears what it says about the account."""
    fmt = str(params.get("reply_format") or "generic")
    verdict = read_reply(fmt, status, body, retry_header)
    if verdict is None:
        try:
            result = _generic_outcome(status, retry_header, body, params)
        except PermanentError:
            if classify_words(excerpt(body)) == "funds":  # "insufficient balance": the alert fires at once
                note(False, "funds")
            raise
        note(True)
        return result
    note(verdict.accepted, verdict.problem, verdict.balance)
    if verdict.accepted:
        return SendResult(gateway_message_id=verdict.message_id, detail=body.strip()[:200])
    if verdict.problem == "unreadable":  # it may have gone out: never sent again
        raise OutcomeUnknown(verdict.reason(where), code=verdict.code)
    error = TransientError if verdict.transient else PermanentError
    raise error(verdict.reason(where), retry_after=verdict.retry_after, fault=verdict.fault, code=verdict.code)


def _generic_outcome(status: int, retry_header: str | None, body: str, params: dict[str, Any]) -> SendResult:
    shown = excerpt(body) or "(empty answer)"
    if status == 429:
        wait = retry_after(retry_header)
        hint = f", asks to retry in {wait:g} s" if wait is not None else ""
        raise TransientError(f"SMS gateway is rate limiting (HTTP 429{hint}): {shown}", retry_after=wait,
                             code="transient.throttled")
    if status >= 500:
        raise TransientError(f"SMS gateway answered HTTP {status}: {shown}", retry_after=retry_after(retry_header),
                             code="transient.unavailable")
    if status in (401, 403):
        raise PermanentError(
            f"SMS gateway refused access (HTTP {status}: {shown}) — check the login and password",
            code="gateway.credentials")
    if status >= 300:
        raise PermanentError(f"SMS gateway answered HTTP {status}: {shown}")
    pattern = str(params.get("success_pattern") or "")
    if pattern:
        try:  # RE2: an operator's pattern never takes more than linear time on the answer
            matched = userpattern.search(pattern, body)
        except userpattern.PatternError as exc:
            raise PermanentError(f"success_pattern is not a valid regular expression: {exc}",
                                 code="gateway.bad_setting") from None
        if not matched:
            _unmatched(shown)
    return SendResult(gateway_message_id=gateway_id(body), detail=body.strip()[:200])


def _unmatched(shown: str) -> None:
    """A 2xx answer ``success_pattern`` does not match: a problem its words name (an invalid number
    is the recipient's, a busy gateway is retried), else a refusal msgd cannot explain."""
    named = classify_words(shown)
    if named == "unclassified":
        raise PermanentError(f"SMS gateway did not accept the message: {shown}", fault=FAULT_UNKNOWN,
                             code="unknown.failure")
    found = problem(named)
    error = TransientError if found.transient else PermanentError
    raise error(f"SMS gateway did not accept the message: {found.hint} — it answered: {shown}", fault=found.fault,
                code=found.code)
