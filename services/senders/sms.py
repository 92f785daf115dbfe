"""SMS over an HTTP gateway (the original's "Адрес СМС шлюза" + "Post параметры").

Request types (``request_type``; the manual's names "POST", "GET",
"Ростелеком JSON", "Digital Direct JSON" are accepted in any case):

``post`` / ``get``
    The operator's parameter string is used literally, exactly as typed,
    except for the placeholders below.  ``post`` sends it as an
    ``application/x-www-form-urlencoded`` body, ``get`` appends it to the URL
    as the query.  Every placeholder value is percent-encoded UTF-8 with
    ``urllib.parse.quote(v, safe="")``: a space becomes ``%20`` and ``+``
    becomes ``%2B``.  ``%20`` is read as a space both by form decoders (PHP,
    Django) and by plain percent-decoding, whereas ``quote_plus``'s ``+`` is a
    space only to form decoders, so ``quote`` is the one both kinds of gateway
    read the same.  Nothing else in the string is decoded or re-encoded, so
    strings such as ``phones=%2B%sms%`` keep working.  The placeholders are
    replaced in one pass, so a message text containing ``%password%`` stays
    text.

    =============  ==============================================================
    placeholder    value
    =============  ==============================================================
    ``%sms%``      the phone number (E.164, without "+" when ``strip_plus``)
    ``%text%``     the message
    ``%login%``    the ``login`` setting
    ``%password%`` the ``password`` setting
    ``%md5%``      MD5 signature, see below
    ``%api_key%``  the ``api_key`` setting, else ``password``
    ``%token%``    the ``token`` setting, else ``password``
    ``%device%``   the ``device`` setting (SemySMS)
    ``%sender%``   the ``sender_name`` setting; optional: when it is empty a
                   ``key=%sender%`` pair is left out of the string
    =============  ==============================================================

    A credential placeholder whose setting is empty fails the message at once,
    naming the setting.  HTTP basic auth is sent only when both ``login`` and
    ``password`` are set *and* neither travels in the parameter string (a
    preset that sends them as ``login=%login%&psw=%password%`` does not repeat
    them in an Authorization header).

``rostelecom_json`` (https://sms.rt.ru/api/v2/send_message)
    ``POST`` with the JSON body ``{"msisdn": "<number>", "shortcode":
    "<sender_name>", "message_text": "<text>"}`` and HTTP basic auth with
    ``login``/``password`` (both required, as is ``sender_name``).  As the
    manual says, "Post параметры" and the MD5 signature are ignored.

``digital_direct_json`` (https://direct.i-dgtl.ru/api/v1/message)
    ``POST`` of a JSON list with one message: ``[{"channelType": "SMS",
    "senderName": "<sender_name>", "destination": "<number>", "content":
    "<text>"}]``, with the JSON object in "Post параметры" (e.g. ``{"ttl":
    3600, "tags": ["billing"]}``) merged into the message (it may override
    ``channelType`` and ``senderName``, never the number or the text).
    Authorization: the API key the manual puts in "Пароль сервера sms"
    (``password``, or ``api_key``) as ``Authorization: Basic <key>`` — the key
    issued in the Digital Direct account is already the base64 token their
    documentation shows after "Basic".  A key written as ``Bearer ...`` or
    ``Basic ...`` is sent as written; ``id:secret`` is base64-encoded; with
    ``login`` and ``password`` both set, standard basic auth is used.

MD5 signature ("MD5 подпись", setting ``md5_key``): smsc.ru and gateways
built on the same API accept the lower-case hex MD5 of the account password
instead of the password (``psw=%md5%``), so the password itself never
travels.  ``%md5%`` is the lower-case hex MD5 of the UTF-8 ``md5_key`` when
it is set, else of ``password``.  The digest is treated as a secret too (it
authenticates like the password).  The JSON types ignore it.

Phone numbers are normalised to E.164 with ``phonenumbers`` (``region``,
default RU; services/senders/phone.py) before anything else; an invalid
number fails permanently without a request.  ``preset`` fills the settings
of a known gateway (services/senders/sms_presets.py); answers are read per
gateway (services/senders/sms_replies.py); ``rate_limit`` (messages per
second, per gateway URL and process) spaces requests out
(services/senders/ratelimit.py); the result's ``extra`` carries the SMS part
count and encoding (services/senders/segments.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_plus

import requests
import structlog

from msgd import safejson, userpattern
from msgd.redact import is_secret_key, redact_text, register_secrets
from services.senders import ratelimit
from services.senders.base import (
    ChannelConfig,
    Outbound,
    PermanentError,
    SendResult,
    TransientError,
)
from services.senders.net import (
    HttpSender,
    as_bool,
    excerpt,
    host_port,
    http_options,
    network_error,
    retry_after,
)
from services.senders.phone import normalize_phone
from services.senders.segments import count_segments
from services.senders.sms_presets import (
    DIGITAL_DIRECT_JSON,
    GET,
    POST,
    ROSTELECOM_JSON,
    effective_settings,
)
from services.senders.sms_replies import read_reply

__all__ = ["SENDER", "SmsSender", "fill_params", "gateway_id"]

log = structlog.get_logger("msgd.sender.sms")

PLACEHOLDERS = ("sms", "text", "login", "password", "md5", "api_key", "token", "device", "sender")
OPTIONAL_PLACEHOLDERS = frozenset({"sender"})
_PLACEHOLDER_RE = re.compile(r"%(" + "|".join(PLACEHOLDERS) + r")%")
# What each credential placeholder needs, in the words of the settings.
_NEEDS = {
    "login": "login",
    "password": "password",
    "md5": "md5_key or password",
    "api_key": "api_key (or password)",
    "token": "token (or password)",
    "device": "device",
}
_ID_KEYS = ("id", "message_id", "messageId", "msg_id", "sms_id", "smsId", "uuid")
_NESTED_KEYS = ("result", "data", "message", "messages", "sms", "response")
# smsc.ru "OK - 1 SMS, ID - 1234", "id=1234", "message_id: abc", Prostor "accepted;A133541BC"
_TEXT_ID_RES = (
    re.compile(r"\b(?:message[_ -]?|sms[_ -]?|msg[_ -]?)?id\s*[-=:]\s*([A-Za-z0-9_.-]+)", re.I),
    re.compile(r"^\s*accepted\s*;\s*([A-Za-z0-9_.-]+)", re.I),
)


def fill_params(template: str, phone: str, text: str, values: Mapping[str, str] | None = None) -> str:
    """Replace the placeholders with percent-encoded UTF-8 in one pass; keep the rest literally.

    An empty optional placeholder (``%sender%``) removes its whole ``key=%sender%`` pair.
    """
    filled = {"sms": phone, "text": text, **(values or {})}
    pairs = template.split("&")
    kept = [
        pair for pair in pairs
        if not any(pair.partition("=")[2] == f"%{name}%" and not filled.get(name)
                   for name in OPTIONAL_PLACEHOLDERS)
    ]
    return _PLACEHOLDER_RE.sub(
        lambda m: quote(filled[m[1]], safe="") if m[1] in filled else m[0], "&".join(kept)
    )


def used_placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(template))


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def join_query(url: str, query: str) -> str:
    if not query:
        return url
    if url.endswith(("?", "&")):
        return url + query
    return f"{url}{'&' if '?' in url else '?'}{query}"


def params_secrets(template: str) -> list[str]:
    """Values of secret-looking keys (psw, password, apikey, token...) in the parameter string."""
    found: list[str] = []
    for pair in template.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or not value or not is_secret_key(key.strip()) or _PLACEHOLDER_RE.fullmatch(value):
            continue
        found.append(value)
        decoded = unquote_plus(value)
        found += [decoded, decoded.strip("'\""), quote(decoded, safe="")]
    return found


def _decode(resp: requests.Response) -> str:
    if "charset=" in resp.headers.get("Content-Type", "").lower():
        return resp.text
    raw = resp.content
    for encoding in ("utf-8", "cp1251"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


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


def gateway_id(body: str) -> str:
    """The gateway's message id when the answer obviously carries one, else ""."""
    try:
        return _json_id(safejson.loads(body))  # deep nesting is a ValueError there too
    except ValueError:
        pass
    for pattern in _TEXT_ID_RES:
        match = pattern.search(body)
        if match:
            return match[1]
    return ""


@dataclass
class _Request:
    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


class SmsSender(HttpSender):
    channel = "sms"
    contact_key = "sms"
    # Setting keys beyond msgd/config_file.py's SMS list (api_key and token are secrets there).
    config_keys = ("preset", "region", "rate_limit", "reply_format", "api_key", "token", "device")

    user_agent = "msgd-sms/1"

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        params, secrets = config.params, config.secrets
        if "sms:secrets" not in config.memo:  # once per settings, not per message
            template = params.get("params") or ""
            template = template if isinstance(template, str) else json.dumps(template)
            # The basic-auth login is not masked (it is not a secret and reasons may need it).
            hidden = [str(v) for k, v in secrets.items() if k != "login" and v not in (None, "")]
            hidden += [md5_hex(v) for v in hidden] + [quote(v, safe="") for v in hidden]
            register_secrets([*hidden, *params_secrets(template)])
            config.memo["sms:secrets"] = True
        return self._send(message, params, secrets, config.memo)

    def _send(self, message: Outbound, raw: dict[str, Any], secrets: dict[str, Any],
              memo: dict[str, Any]) -> SendResult:
        try:
            params = memo.get("sms:settings") or memo.setdefault("sms:settings", effective_settings(raw))
        except ValueError as exc:  # an unknown preset, request type or reply format
            raise PermanentError(str(exc)) from None
        url = str(params.get("url") or "").strip()
        if not url:
            raise PermanentError("SMS gateway address (url) is not set")
        kind = params["request_type"]
        phone = self._phone(message.recipient, params)
        timeout, verify = http_options(params, self.settings.http_timeout, "SMS")
        rate = self._rate(params)
        request = _build(kind, url, phone, message.body, params, secrets)
        where = host_port(url)

        if rate is not None:
            ratelimit.acquire(url, rate)
        try:
            resp = self._sessions.get().request(
                request.method, request.url, data=request.body, headers=request.headers,
                auth=request.auth, timeout=timeout, verify=verify,
            )
        except requests.RequestException as exc:
            raise network_error(exc, "SMS gateway", url, timeout, host_label="SMS gateway host") from None

        body = _decode(resp)
        log.debug("sms gateway answered", gateway=where, status=resp.status_code,
                  message_id=message.message_id)
        result = _outcome(resp.status_code, resp.headers.get("Retry-After"), body, params, where)
        parts = count_segments(message.body)
        result.detail = redact_text(result.detail)
        result.extra.update(segments=parts.parts, encoding=parts.encoding, phone=phone)
        return result

    @staticmethod
    def _phone(recipient: str, params: dict[str, Any]) -> str:
        try:
            phone = normalize_phone(recipient, str(params.get("region") or "") or None)
        except ValueError as exc:  # InvalidPhone, or an unknown region
            raise PermanentError(str(exc)) from None
        if as_bool(params.get("strip_plus")):
            phone = phone.lstrip("+")
        return phone

    @staticmethod
    def _rate(params: dict[str, Any]) -> float | None:
        value = params.get("rate_limit")
        if value in (None, "", 0, "0"):
            return None
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = -1.0
        if not rate > 0 or isinstance(value, bool):
            raise PermanentError(f"rate_limit {value!r} must be a positive number of messages per second")
        return rate


def _setting(key: str, params: dict[str, Any], secrets: dict[str, Any]) -> str:
    value = secrets.get(key)
    if value in (None, ""):
        value = params.get(key)
    return "" if value is None else str(value)


def _build(kind: str, url: str, phone: str, text: str, params: dict[str, Any],
           secrets: dict[str, Any]) -> _Request:
    login, password = _setting("login", params, secrets), _setting("password", params, secrets)
    sender = str(params.get("sender_name") or "").strip()
    if kind == ROSTELECOM_JSON:
        missing = [k for k, v in (("login", login), ("password", password), ("sender_name", sender)) if not v]
        if missing:
            raise PermanentError(f"Rostelecom JSON needs {', '.join(missing)} — set it in the SMS settings")
        body = {"msisdn": phone, "shortcode": sender, "message_text": text}
        return _json_request(url, body, auth=(login, password))
    if kind == DIGITAL_DIRECT_JSON:
        item: dict[str, Any] = {"channelType": "SMS", "senderName": sender}
        item.update(_json_extras(params.get("params")))
        item["destination"], item["content"] = phone, text
        if not str(item.get("senderName") or "").strip():
            raise PermanentError("Digital Direct JSON needs sender_name (the sender name agreed with Digital Direct)")
        key = _setting("api_key", params, secrets) or password
        headers: dict[str, str] = {}
        auth = None
        if login and password and not _setting("api_key", params, secrets):
            auth = (login, password)
        elif key:
            headers["Authorization"] = _dd_authorization(key)
        else:
            raise PermanentError("Digital Direct JSON needs the API key in password (\"Пароль сервера sms\")")
        return _json_request(url, [item], auth=auth, headers=headers)

    template = params.get("params") or ""
    if not isinstance(template, str):
        raise PermanentError("params (\"Post параметры\") must be text for the POST and GET request types")
    api_key, token = _setting("api_key", params, secrets), _setting("token", params, secrets)
    values = {
        "login": login,
        "password": password,
        "md5": "",
        "api_key": api_key or password,
        "token": token or password,
        "device": _setting("device", params, secrets),
        "sender": sender,
    }
    used = used_placeholders(template)
    if "md5" in used:
        source = _setting("md5_key", params, secrets) or password
        values["md5"] = md5_hex(source) if source else ""
    missing = sorted(_NEEDS[name] for name in used & _NEEDS.keys() if not values[name])
    if missing:
        raise PermanentError(
            f"the parameter string needs {', '.join(missing)}, which is not set in the SMS settings"
        )
    payload = fill_params(template, phone, text, values)
    # Credentials already in the parameter string are not repeated as basic auth.
    in_params = bool(used & {"login", "password", "md5"}) or ("api_key" in used and not api_key) \
        or ("token" in used and not token)
    auth = (login, password) if login and password and not in_params else None
    if kind == POST:
        return _Request("POST", url, payload.encode("utf-8"),
                        {"Content-Type": "application/x-www-form-urlencoded"}, auth)
    assert kind == GET
    return _Request("GET", join_query(url, payload), None, {}, auth)


def _json_extras(raw: Any) -> dict[str, Any]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    try:
        data = json.loads(str(raw))
    except ValueError as exc:
        raise PermanentError(
            f"params (\"Post параметры\") for Digital Direct JSON must be a JSON object such as "
            f"{{\"ttl\": 3600}}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise PermanentError("params (\"Post параметры\") for Digital Direct JSON must be a JSON object")
    return data


def _dd_authorization(key: str) -> str:
    key = key.strip()
    if key.lower().startswith(("basic ", "bearer ")):
        return key
    if ":" in key:
        return "Basic " + base64.b64encode(key.encode("utf-8")).decode("ascii")
    return f"Basic {key}"


def _json_request(url: str, body: Any, auth: tuple[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> _Request:
    return _Request(
        "POST", url, json.dumps(body, ensure_ascii=False).encode("utf-8"),
        {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json", **(headers or {})},
        auth,
    )


def _outcome(status: int, retry_header: str | None, body: str, params: dict[str, Any],
             where: str) -> SendResult:
    fmt = str(params.get("reply_format") or "generic")
    verdict = read_reply(fmt, status, body, retry_header)
    if verdict is None:
        return _generic_outcome(status, retry_header, body, params)
    if verdict.accepted:
        return SendResult(gateway_message_id=verdict.message_id, detail=body.strip()[:200])
    error = TransientError if verdict.transient else PermanentError
    raise error(verdict.reason(where), retry_after=verdict.retry_after)


def _generic_outcome(status: int, retry_header: str | None, body: str, params: dict[str, Any]) -> SendResult:
    shown = excerpt(body) or "(empty answer)"
    if status == 429:
        wait = retry_after(retry_header)
        hint = f", asks to retry in {wait:g} s" if wait is not None else ""
        raise TransientError(f"SMS gateway is rate limiting (HTTP 429{hint}): {shown}", retry_after=wait)
    if status >= 500:
        raise TransientError(f"SMS gateway answered HTTP {status}: {shown}", retry_after=retry_after(retry_header))
    if status in (401, 403):
        raise PermanentError(
            f"SMS gateway refused access (HTTP {status}: {shown}) — check the login and password"
        )
    if status >= 300:
        raise PermanentError(f"SMS gateway answered HTTP {status}: {shown}")
    pattern = str(params.get("success_pattern") or "")
    if pattern:
        try:  # RE2: an operator's pattern never takes more than linear time on the answer
            matched = userpattern.search(pattern, body)
        except userpattern.PatternError as exc:
            raise PermanentError(f"success_pattern is not a valid regular expression: {exc}") from None
        if not matched:
            raise PermanentError(f"SMS gateway did not accept the message: {shown}")
    return SendResult(gateway_message_id=gateway_id(body), detail=body.strip()[:200])


SENDER = SmsSender
