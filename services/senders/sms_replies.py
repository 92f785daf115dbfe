"""Reading SMS gateways' answers: accepted (with the gateway's message id) or why not.

A gateway's answer is read, never assumed: HTTP 200 with an error in the body
is a failure.  Each failure gets a *problem* that decides whether a retry can
help, and its reason quotes the gateway's own words.

HTTP level, every format: 429 -> ``throttled`` (Retry-After honoured), 5xx ->
``unavailable`` (both retried); 401/403 whose body says nothing more ->
``credentials``; other 3xx/4xx -> ``rejected``.  Then the body, per format:

=================  ============================================================================
format             how an answer is read
=================  ============================================================================
smsc               fmt=3 JSON ``{"id": 1234, "cnt": 1}`` / ``{"error": "...", "error_code": N}``;
                   text ``OK - 1 SMS, ID - 1234`` / ``ERROR = N (...)``; fmt=1 ``1234,1`` /
                   ``0,-N``.  N: 1 params -> request, 2 login/password -> credentials,
                   3 -> funds, 4 IP temporarily blocked -> blocked (retry in 5 min),
                   5 date format -> request, 6 -> denied, 7 -> number, 8 -> undeliverable,
                   9 too many requests -> throttled (retry in 1 min)
digital_direct     ``{"errors": false, "items": [{"messageUuid": ..., "code": 201}]}`` or a
                   list of ``{"messageUuid"}``; ``{"error": {"code": 4012, "msg": "Bad
                   credentials"}}`` (4010, 4012, 4030 -> credentials); failed items
                   (``errorCode``/``error``) by their words
prostor            ``accepted;ID`` (or ``ID=accepted``); anything else is an error read by its
                   words (``invalid mobile phone`` -> number, ``not enough credits`` -> funds)
smspilot           ``{"send": [{"server_id": ...}]}``; ``{"error": {"code": .., "description":
                   ..}}`` by its words; text ``SUCCESS=...`` / ``ERROR=N:...`` / a bare id
semysms            ``{"code": 0, "id": ...}``; a non-zero ``code`` with ``error`` by its words
rostelecom         ``{"status": "ok", "result": {"uid": ...}}``; ``{"status": "error", ...}`` by
                   its words
generic            any 2xx (or ``success_pattern`` when set); the id when the answer plainly
                   carries one
=================  ============================================================================

"By its words": the error text is matched against English and Russian
keywords (login/password/key/auth -> credentials, balance/credits/money ->
funds, phone/number/recipient -> number, denied/spam/sender -> denied, too
many/try later -> throttled, internal/unavailable -> unavailable); an error
that matches none is ``rejected`` (permanent: a retry of a message the gateway
refused for an unknown reason would more likely duplicate than help).  An
answer of a known format that is neither success nor error is ``unreadable``,
also permanent: the message may have gone out, so it is not sent again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgd import safejson
from services.senders.net import excerpt, retry_after

# problem -> (retry may help, plain-words hint)
PROBLEMS: dict[str, tuple[bool, str]] = {
    "credentials": (False, "bad credentials — check the login, password or API key"),
    "funds": (False, "not enough money on the gateway account — top it up"),
    "number": (False, "the gateway refused the phone number"),
    "denied": (False, "message denied by the gateway (its text or the sender name)"),
    "undeliverable": (False, "the number cannot receive this SMS"),
    "request": (False, "the gateway refused the request — check the channel settings"),
    "rejected": (False, "the gateway did not accept the message"),
    "unreadable": (False, "the gateway's answer was not understood, so the message is not resent"),
    "throttled": (True, "the gateway is rate limiting"),
    "blocked": (True, "the gateway temporarily blocked this address after repeated errors"),
    "unavailable": (True, "the gateway has a temporary problem"),
}

SMSC_CODES: dict[int, tuple[str, float | None]] = {
    1: ("request", None),
    2: ("credentials", None),
    3: ("funds", None),
    4: ("blocked", 300.0),
    5: ("request", None),
    6: ("denied", None),
    7: ("number", None),
    8: ("undeliverable", None),
    9: ("throttled", 60.0),
}
DIGITAL_DIRECT_CODES = {4010: "credentials", 4012: "credentials", 4030: "credentials"}

_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("throttled", re.compile(
        r"too many|rate.?limit|too (often|frequent)|try (again )?later|throttl|слишком (много|част)"
        r"|повторите (запрос )?позже|превышен\w* (лимит|скорост|частот)", re.I)),
    ("credentials", re.compile(
        r"login|password|passwd|api.?key|token|auth|credential|unauthori[sz]ed|access denied"
        r"|логин|парол|ключ|авториз|доступ запрещ", re.I)),
    ("funds", re.compile(
        r"balance|credits?\b|money|funds|insufficient|payment required|средств|баланс|денег", re.I)),
    ("number", re.compile(
        r"phone|number|recipient|destination|msisdn|номер|телефон|получател", re.I)),
    ("denied", re.compile(
        r"denied|forbidden|prohibit|spam|sender|black.?list|stop.?list|запрещ|отправител|спам", re.I)),
    ("unavailable", re.compile(
        r"internal|server error|unavailable|maintenance|temporar|технич|недоступ|временн", re.I)),
]


@dataclass
class Reply:
    accepted: bool
    message_id: str = ""
    problem: str = ""
    words: str = ""  # the gateway's own words about a failure
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return PROBLEMS.get(self.problem, (False, ""))[0]

    def reason(self, gateway: str) -> str:
        hint = PROBLEMS.get(self.problem, (False, "the gateway did not accept the message"))[1]
        words = self.words or "(empty answer)"
        wait = f" (asks to retry in {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"SMS gateway {gateway}: {hint}{wait} — it answered: {words}"


def classify_words(text: str) -> str:
    """A problem from the gateway's error text, "rejected" when no keyword matches."""
    for problem, pattern in _WORDS:
        if pattern.search(text):
            return problem
    return "rejected"


def _json(body: str) -> Any:
    text = body.lstrip("\ufeff").strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return safejson.loads(text)  # deep nesting is a ValueError there too
    except ValueError:
        return None


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _error(words: str, problem: str | None = None, wait: float | None = None) -> Reply:
    words = excerpt(words)
    return Reply(False, problem=problem or classify_words(words), words=words, retry_after=wait)


def _coded(table: dict[int, tuple[str, float | None]], code: int | None, words: str) -> Reply:
    problem, wait = table.get(code if code is not None else -1, (None, None))
    return _error(words, problem, wait)


# -- the formats -----------------------------------------------------------------------------

_SMSC_ERROR = re.compile(r"^\s*ERROR\s*=\s*(\d+)", re.I)
_SMSC_OK = re.compile(r"^\s*OK\b", re.I)
_SMSC_ID = re.compile(r"\bID\s*-\s*([^,\s]+)", re.I)
_SMSC_FMT1 = re.compile(r"^\s*(\d+)\s*,\s*(-?\d+)\b")


def _smsc(body: str, data: Any) -> Reply | None:
    if isinstance(data, dict):
        if "error_code" in data or "error" in data:
            code = _int(data.get("error_code"))
            words = _scalar(data.get("error")) or excerpt(body)
            return _coded(SMSC_CODES, code, f"{words} (error_code {code})" if code is not None else words)
        mid = _scalar(data.get("id"))
        return Reply(True, mid) if mid else None
    if (m := _SMSC_ERROR.match(body)) is not None:
        return _coded(SMSC_CODES, int(m[1]), body)
    if _SMSC_OK.match(body):
        found = _SMSC_ID.search(body)
        return Reply(True, found[1] if found else "")
    if (m := _SMSC_FMT1.match(body)) is not None:
        if int(m[2]) < 0:
            return _coded(SMSC_CODES, -int(m[2]), body)
        return Reply(True, m[1])
    return None


def _digital_direct_item(item: Any, body: str) -> Reply | None:
    if not isinstance(item, dict):
        return None
    mid = _scalar(item.get("messageUuid")) or _scalar(item.get("uuid"))
    code = _int(item.get("code"))
    failed = item.get("errorCode") is not None or item.get("error") not in (None, "", False, 0)
    if mid and not failed and (code is None or code < 400):
        return Reply(True, mid)
    if failed or (code is not None and code >= 400):
        err = item.get("error")
        if isinstance(err, dict):
            return _digital_direct_error(err, body)
        text = _scalar(err) or _scalar(item.get("msg")) or _scalar(item.get("message"))
        code_text = _scalar(item.get("errorCode")) or _scalar(item.get("code"))
        words = " ".join(w for w in (text, f"(code {code_text})" if code_text else "") if w)
        return _error(words or excerpt(body))
    return None


def _digital_direct_error(err: dict[str, Any], body: str) -> Reply:
    code = _int(err.get("code"))
    text = _scalar(err.get("msg")) or _scalar(err.get("message")) or excerpt(body)
    words = f"{text} (code {code})" if code is not None else text
    return _error(words, DIGITAL_DIRECT_CODES.get(code or -1))


def _digital_direct(body: str, data: Any) -> Reply | None:
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):
            return _digital_direct_error(data["error"], body)
        items = data.get("items")
        if isinstance(items, list) and items:
            return _digital_direct_item(items[0], body)
        return None
    if isinstance(data, list) and data:
        return _digital_direct_item(data[0], body)
    return None


_PROSTOR_OK = (re.compile(r"^\s*accepted\s*;\s*([^\s;]+)", re.I), re.compile(r"^\s*([^\s=;]+)\s*=\s*accepted\b", re.I))


def _prostor(body: str, data: Any) -> Reply | None:
    for pattern in _PROSTOR_OK:
        if (m := pattern.match(body)) is not None:
            return Reply(True, m[1])
    if not body.strip():
        return None
    return _error(body)


_PILOT_ERROR = re.compile(r"^\s*ERROR\s*=\s*(\d+)\s*:?\s*(.*)", re.I | re.S)
_PILOT_OK = re.compile(r"^\s*SUCCESS\s*=", re.I)


def _smspilot(body: str, data: Any) -> Reply | None:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            text = (_scalar(err.get("description")) or _scalar(err.get("description_en"))
                    or _scalar(err.get("description_ru")) or excerpt(body))
            code = _scalar(err.get("code"))
            return _error(f"{text} (code {code})" if code else text)
        sent = data.get("send")
        if isinstance(sent, list) and sent and isinstance(sent[0], dict):
            item = sent[0]
            if _int(item.get("error")) or (_int(item.get("status")) or 0) < 0:
                return _error(json.dumps(item, ensure_ascii=False))
            mid = _scalar(item.get("server_id")) or _scalar(item.get("id"))
            return Reply(True, mid)
        return None
    if _PILOT_ERROR.match(body):
        return _error(body)
    if _PILOT_OK.match(body):
        lines = body.strip().splitlines()
        mid = lines[1].split(",")[0].strip() if len(lines) > 1 else ""
        return Reply(True, mid)
    if re.fullmatch(r"\s*\d+\s*", body):
        return Reply(True, body.strip())
    return _error(body) if body.strip() else None


def _semysms(body: str, data: Any) -> Reply | None:
    if not isinstance(data, dict) or "code" not in data:
        return None
    code = _int(data.get("code"))
    if code == 0:
        return Reply(True, _scalar(data.get("id")))
    text = _scalar(data.get("error")) or _scalar(data.get("message")) or excerpt(body)
    return _error(f"{text} (code {_scalar(data.get('code'))})")


def _rostelecom(body: str, data: Any) -> Reply | None:
    if not isinstance(data, dict):
        return None
    status = _scalar(data.get("status")).lower()
    if status == "ok":
        result = data.get("result")
        mid = ""
        if isinstance(result, dict):
            mid = next((_scalar(result.get(k)) for k in ("uid", "id", "message_id", "messageId")
                        if _scalar(result.get(k))), "")
        elif _scalar(result):
            mid = _scalar(result)
        return Reply(True, mid or _scalar(data.get("uid")) or _scalar(data.get("id")))
    if status == "error" or "error" in data or "errors" in data:
        parts = []
        for key in ("description", "message", "error", "errors", "error_description", "code"):
            value = data.get(key)
            if value not in (None, "", [], {}):
                parts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        return _error("; ".join(parts) or excerpt(body))
    return None


_PARSERS: dict[str, Callable[[str, Any], Reply | None]] = {
    "smsc": _smsc,
    "digital_direct": _digital_direct,
    "prostor": _prostor,
    "smspilot": _smspilot,
    "semysms": _semysms,
    "rostelecom": _rostelecom,
}


def read_reply(fmt: str, status: int, body: str, retry_header: str | None = None) -> Reply | None:
    """The verdict on a vendor-format answer; None for the generic format (the caller decides)."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        return None
    http = f"HTTP {status}: {excerpt(body)}" if body.strip() else f"HTTP {status}"
    if status == 429:
        return _error(http, "throttled", retry_after(retry_header))
    if status >= 500:
        return _error(http, "unavailable", retry_after(retry_header))
    verdict = parser(body, _json(body))
    if 200 <= status < 300:
        return verdict if verdict is not None else Reply(False, problem="unreadable", words=excerpt(body))
    if verdict is not None and not verdict.accepted and verdict.problem != "rejected":
        return verdict
    if status in (401, 403):
        return _error(http, "credentials")
    return _error(http, "rejected")
