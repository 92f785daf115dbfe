"""SMS over an HTTP gateway (the original's "Адрес СМС шлюза" + "Post параметры").

The operator's parameter string is used literally, exactly as typed, except
for the two placeholders: ``%sms%`` (the phone number) and ``%text%`` (the
message).  Both are percent-encoded UTF-8 with ``urllib.parse.quote(v,
safe="")``: a space becomes ``%20`` and ``+`` becomes ``%2B``.  ``%20`` is read
as a space both by form decoders (PHP, Django) and by plain percent-decoding,
whereas ``quote_plus``'s ``+`` is a space only to form decoders, so ``quote``
is the one both kinds of gateway read the same.  Nothing else in the string
is decoded or re-encoded, so presets such as ``phones=%2B%sms%`` keep working.

``post`` sends the filled string as an ``application/x-www-form-urlencoded``
body, and ``get`` appends it to the URL as the query.  The vendor JSON types
are not implemented yet and fail permanently with a clear reason.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import requests
import structlog

from msgd.redact import is_secret_key, redact_text, register_secrets
from msgd.settings import Settings
from services.senders.base import (
    ChannelConfig,
    ChannelSender,
    Outbound,
    PermanentError,
    PerThread,
    SendError,
    SendResult,
    TransientError,
)

log = structlog.get_logger("msgd.sender.sms")

REQUEST_TYPES = ("post", "get")
_PLACEHOLDER_RE = re.compile(r"%(sms|text)%")
_ID_KEYS = ("id", "message_id", "messageId", "msg_id", "sms_id", "smsId", "uuid")
_NESTED_KEYS = ("result", "data", "message", "messages", "sms", "response")
# smsc.ru "OK - 1 SMS, ID - 1234", "id=1234", "message_id: abc", Prostor "accepted;A133541BC"
_TEXT_ID_RES = (
    re.compile(r"\b(?:message[_ -]?|sms[_ -]?|msg[_ -]?)?id\s*[-=:]\s*([A-Za-z0-9_.-]+)", re.I),
    re.compile(r"^\s*accepted\s*;\s*([A-Za-z0-9_.-]+)", re.I),
)


def as_bool(value: Any, default: bool = False) -> bool:
    """Settings forms store booleans as bools, 0/1 or strings."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(value)


def fill_params(template: str, phone: str, text: str) -> str:
    """Replace %sms% and %text% with percent-encoded UTF-8; keep the rest literally."""
    values = {"sms": quote(phone, safe=""), "text": quote(text, safe="")}
    return _PLACEHOLDER_RE.sub(lambda m: values[m[1]], template)


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
        if not sep or not value or not is_secret_key(key.strip()):
            continue
        found.append(value)
        decoded = unquote_plus(value)
        found += [decoded, decoded.strip("'\""), quote(decoded, safe="")]
    return found


def host_port(url: str) -> str:
    """host:port of the gateway: never the path or query, which may carry the password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, __cause__, urllib3's .reason)."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nested = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _causes(exc) if isinstance(e, kind)), None)


def _excerpt(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


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
        return _json_id(json.loads(body))
    except ValueError:
        pass
    for pattern in _TEXT_ID_RES:
        match = pattern.search(body)
        if match:
            return match[1]
    return ""


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class SmsSender(ChannelSender):
    channel = "sms"
    contact_key = "sms"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._sessions: PerThread[str, requests.Session] = PerThread(lambda s: s.close())

    def _session(self) -> requests.Session:
        """One session per worker thread: its pool keeps connections to the gateway open."""
        session = self._sessions.get("")
        if session is None:
            session = requests.Session()
            # No proxies, .netrc credentials or CA bundle from the environment:
            # the operator's settings alone decide (basic auth only with login+password).
            session.trust_env = False
            session.headers["User-Agent"] = "msgd-sms/1"
            self._sessions.put("", session)
        return session

    def close(self) -> None:
        self._sessions.close_all()

    def send(self, message: Outbound, config: ChannelConfig) -> SendResult:
        params, secrets = config.params, config.secrets
        template = str(params.get("params") or secrets.get("params") or "")
        # The basic-auth login is not masked (it is not a secret and reasons may need it).
        register_secrets([*(v for k, v in secrets.items() if k != "login"), *params_secrets(template)])
        try:
            return self._send(message, params, secrets, template)
        except SendError as exc:
            exc.reason = redact_text(exc.reason)
            exc.args = (exc.reason,)
            raise

    def _send(
        self, message: Outbound, params: dict[str, Any], secrets: dict[str, Any], template: str
    ) -> SendResult:
        url = str(params.get("url") or "").strip()
        if not url:
            raise PermanentError("SMS gateway address (url) is not set")
        kind = str(params.get("request_type") or "post").strip().lower()
        if kind not in REQUEST_TYPES:
            raise PermanentError(f"request type {kind!r} is not supported yet (use post or get)")
        phone = message.recipient.strip()
        if as_bool(params.get("strip_plus")) and phone.startswith("+"):
            phone = phone[1:]
        if not phone:
            raise PermanentError("no phone number to send the SMS to")
        payload = fill_params(template, phone, message.body)
        try:
            timeout = float(params.get("timeout") or self.settings.http_timeout)
        except (TypeError, ValueError):
            raise PermanentError(f"SMS timeout {params.get('timeout')!r} is not a number") from None
        verify: bool | str = as_bool(params.get("verify"), True)
        if verify and params.get("ca_bundle"):
            verify = str(params["ca_bundle"])
            if not os.path.exists(verify):
                raise PermanentError(f"ca_bundle file {verify!r} does not exist")
        login, password = str(secrets.get("login") or ""), str(secrets.get("password") or "")
        auth = (login, password) if login and password else None
        where = host_port(url)

        try:
            if kind == "post":
                resp = self._session().post(
                    url, data=payload.encode("utf-8"), auth=auth, timeout=timeout, verify=verify,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            else:
                resp = self._session().get(
                    join_query(url, payload), auth=auth, timeout=timeout, verify=verify
                )
        except requests.RequestException as exc:
            raise _network_error(exc, url, where, timeout) from None

        body = _decode(resp)
        log.debug("sms gateway answered", gateway=where, status=resp.status_code, message_id=message.message_id)
        return _outcome(resp.status_code, resp.headers.get("Retry-After"), body, params)


def _outcome(status: int, retry_header: str | None, body: str, params: dict[str, Any]) -> SendResult:
    excerpt = _excerpt(body) or "(empty answer)"
    if status == 429:
        wait = retry_after(retry_header)
        hint = f", asks to retry in {wait:g} s" if wait is not None else ""
        raise TransientError(f"SMS gateway is rate limiting (HTTP 429{hint}): {excerpt}", retry_after=wait)
    if status >= 500:
        raise TransientError(f"SMS gateway answered HTTP {status}: {excerpt}")
    if status in (401, 403):
        raise PermanentError(
            f"SMS gateway refused access (HTTP {status}: {excerpt}) — check the login and password"
        )
    if status >= 300:
        raise PermanentError(f"SMS gateway answered HTTP {status}: {excerpt}")
    pattern = str(params.get("success_pattern") or "")
    if pattern:
        try:
            matched = re.search(pattern, body)
        except re.error as exc:
            raise PermanentError(f"success_pattern is not a valid regular expression: {exc}") from None
        if not matched:
            raise PermanentError(f"SMS gateway did not accept the message: {excerpt}")
    return SendResult(gateway_message_id=gateway_id(body), detail=body.strip()[:200])


def _network_error(exc: requests.RequestException, url: str, where: str, timeout: float) -> SendError:
    host = where.rsplit(":", 1)[0]
    if isinstance(exc, requests.exceptions.SSLError):
        cert = _find(exc, ssl.SSLCertVerificationError)
        if isinstance(cert, ssl.SSLCertVerificationError):
            detail = cert.verify_message or str(cert)
            return PermanentError(
                f"TLS certificate of the SMS gateway {where} could not be verified: {detail}"
                " — fix the certificate or set ca_bundle"
            )
        if _find(exc, ssl.SSLEOFError) or _find(exc, ssl.SSLZeroReturnError):
            return TransientError(f"SMS gateway {where} closed the connection during the TLS handshake")
        inner = _find(exc, ssl.SSLError)
        detail = getattr(inner, "reason", None) or str(inner or exc)
        return PermanentError(
            f"TLS handshake with the SMS gateway {where} failed ({detail})"
            " — check http/https and the port in the gateway address"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"SMS gateway {where} did not accept a connection within {timeout:g} s")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientError(f"SMS gateway {where} did not answer within {timeout:g} s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        dns = _find(exc, socket.gaierror)
        if isinstance(dns, socket.gaierror):
            return TransientError(
                f"cannot resolve SMS gateway host '{host}' (DNS: {dns.strerror or dns})"
                " — check the DNS settings"
            )
        if _find(exc, ConnectionRefusedError):
            return TransientError(
                f"SMS gateway {where} refused the connection (is it running? firewall?)"
            )
        if _find(exc, TimeoutError):
            return TransientError(f"SMS gateway {where} did not answer within {timeout:g} s")
        if _find(exc, ConnectionResetError) or "RemoteDisconnected" in repr(exc):
            return TransientError(f"SMS gateway {where} closed the connection without an answer")
        os_err = _find(exc, OSError)
        detail = getattr(os_err, "strerror", None) or type(os_err or exc).__name__
        return TransientError(f"cannot connect to SMS gateway {where}: {detail}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema | requests.exceptions.URLRequired):
        shown = url.split("?", 1)[0]
        return PermanentError(f"SMS gateway address {shown!r} is not a valid http(s) URL")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return PermanentError(f"SMS gateway {where} redirects in a loop — check the gateway address")
    return TransientError(f"request to SMS gateway {where} failed: {type(exc).__name__}")


SENDER = SmsSender
