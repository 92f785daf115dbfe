"""Reading SMS gateways' answers: accepted (with the gateway's message id) or why not.

A gateway's answer is read, never assumed: HTTP 200 with an error in the body
is a failure.  Each failure gets a *problem* (services/senders/sms/problems.py)
that decides whether a retry can help and whose fault it is, and its reason
quotes the gateway's own words.

HTTP level, every format: 429 -> ``throttled`` (Retry-After honoured), 5xx and
408 -> ``unavailable`` (both retried); otherwise a non-2xx answer whose body
names a problem has that problem, else 401/403 -> ``credentials``, 402 ->
``funds``, any other 3xx/4xx -> ``request`` (the request does not fit the
gateway: a setting to fix).  Then the body, per format:

=================  ============================================================================
format             how an answer is read
=================  ============================================================================
smsc               fmt=3 JSON ``{"id": 1234, "cnt": 1}`` (its ``balance`` read when present) /
                   ``{"error": "...", "error_code": N}``; text ``OK - 1 SMS, ID - 1234`` /
                   ``ERROR = N (...)``; fmt=1 ``1234,1`` / ``0,-N``; N by the smsc.ru code table
digital_direct     ``{"errors": false, "items": [{"messageUuid": ..., "code": 201}]}`` or a
                   list of ``{"messageUuid"}``; ``{"error": {"code": 4012, "msg": "Bad
                   credentials"}}`` (4010, 4012, 4030 -> credentials); a failed item by its
                   ``code`` (an HTTP status: 5xx -> unavailable, 429, 402, 401/403) or words;
                   ``"errors": true`` without a readable item is an unclassified error
prostor            ``accepted;ID`` (or ``ID=accepted``); anything else is an error read by its
                   words (``invalid mobile phone`` -> number, ``not enough credits`` -> funds)
smspilot           ``{"send": [{"server_id": ...}], "balance": "11908.50"}`` (the balance kept);
                   ``{"error": {"code": .., "description": ..}}`` and text ``ERROR=N:...`` by the
                   SMSPilot code table, else the words; text ``SUCCESS=...`` or a bare id
semysms            ``{"code": 0, "id": ...}``; a non-zero ``code`` with ``error`` by its words
rostelecom         ``{"status": "ok", "result": {"uid": ...}}``; ``{"status": "error", ...}`` by
                   its words
jasmin             ``Success "<id>"``; ``Error "..."`` by its words (Jasmin's HTTP API /send,
                   https://docs.jasminsms.com/en/latest/apis/ja-http/)
generic            any 2xx (or ``success_pattern`` when set); the id when the answer plainly
                   carries one
=================  ============================================================================

An explicit error that neither a code nor a keyword explains is ``unclassified``:
retried up to the operator's attempts, and when they run out the reason says the
gateway's answer was not understood, quoting it.  An answer of a known format
that is neither success nor error is ``unreadable``: the message may have gone
out, so it ends "outcome unknown" and is not sent again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgd import safejson
from services.senders.net import excerpt, retry_after
from services.senders.sms.problems import (
    DIGITAL_DIRECT_CODES,
    SMSC_CODES,
    SMSPILOT_CODES,
    by_http_status,
    classify_words,
    problem,
)


@dataclass
class Reply:
    accepted: bool
    message_id: str = ""
    problem: str = ""
    words: str = ""  # the gateway's own words about a failure
    retry_after: float | None = None
    balance: float | None = None  # the account's balance, where the answer carries it (SMSPilot, smsc.ru)

    @property
    def transient(self) -> bool:
        """A retry may help."""
        return problem(self.problem).transient

    @property
    def fault(self) -> str:
        """The fault class (msgd/envelope.py) the message fails with."""
        return problem(self.problem).fault

    @property
    def code(self) -> str:
        """The reason code (msgd/reasons.py) the message fails with."""
        return problem(self.problem).code

    def reason(self, gateway: str) -> str:
        hint = problem(self.problem).hint
        words = self.words or "(empty answer)"
        wait = f" (asks to retry in {self.retry_after:g} s)" if self.retry_after is not None else ""
        return f"SMS gateway {gateway}: {hint}{wait} — it answered: {words}"


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


def _balance(value: Any) -> float | None:
    try:
        return float(_scalar(value).replace(",", "."))
    except ValueError:
        return None


def _error(words: str, known: str | None = None, wait: float | None = None) -> Reply:
    """An error answer: the ``known`` problem (by a code), else the one its words name."""
    words = excerpt(words)
    return Reply(False, problem=known or classify_words(words), words=words, retry_after=wait)


def _coded(table: dict[int, tuple[str, float | None]], code: int | None, words: str) -> Reply:
    """By the vendor's code table; a code it does not list is read by its words."""
    known, wait = table.get(code if code is not None else -1, (None, None))
    return _error(words, known, wait)


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
        return Reply(True, mid, balance=_balance(data.get("balance"))) if mid else None
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
        # An item's code is an HTTP status (201 accepted, 400 invalid, 503 ...): 5xx, 429, 402
        # and 401/403 say what happened whatever the words; other codes are read by the words.
        return _error(words or excerpt(body), by_http_status(code) if code is not None else None)
    return None


def _digital_direct_error(err: dict[str, Any], body: str) -> Reply:
    code = _int(err.get("code"))
    text = _scalar(err.get("msg")) or _scalar(err.get("message")) or excerpt(body)
    words = f"{text} (code {code})" if code is not None else text
    return _coded(DIGITAL_DIRECT_CODES, code, words)


def _digital_direct(body: str, data: Any) -> Reply | None:
    verdict: Reply | None = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):
            return _digital_direct_error(data["error"], body)
        items = data.get("items")
        if isinstance(items, list) and items:
            verdict = _digital_direct_item(items[0], body)
        if data.get("errors") is True and (verdict is None or verdict.accepted):
            return _error(excerpt(body))  # the answer says it failed, its item does not say why
        return verdict
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
            return _coded(SMSPILOT_CODES, _int(code), f"{text} (code {code})" if code else text)
        sent = data.get("send")
        if isinstance(sent, list) and sent and isinstance(sent[0], dict):
            item = sent[0]
            if _int(item.get("error")) or (_int(item.get("status")) or 0) < 0:
                return _coded(SMSPILOT_CODES, _int(item.get("error")), json.dumps(item, ensure_ascii=False))
            mid = _scalar(item.get("server_id")) or _scalar(item.get("id"))
            return Reply(True, mid, balance=_balance(data.get("balance")))
        return None
    if (m := _PILOT_ERROR.match(body)) is not None:
        return _coded(SMSPILOT_CODES, int(m[1]), body)
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


_JASMIN_OK = re.compile(r'^\s*Success\s+"([^"\s]+)"', re.I)
_JASMIN_ERROR = re.compile(r'^\s*Error\s+"(.*)"\s*$', re.I | re.S)


# Jasmin's own error texts (jasmin/protocols/http/endpoints/send.py, validation.py) -> problem
_JASMIN_WORDS = (
    (re.compile(r"Argument \[to\] has an invalid value", re.I), "number"),
    (re.compile(r"throughput exceeded", re.I), "throttled"),
    (re.compile(r"Cannot charge", re.I), "funds"),
    (re.compile(r"No route found|no bound connectors", re.I), "request"),
)


def _jasmin(body: str, data: Any) -> Reply | None:
    if (m := _JASMIN_OK.match(body)) is not None:
        return Reply(True, m[1])
    if (m := _JASMIN_ERROR.match(body)) is not None:
        known = next((name for pattern, name in _JASMIN_WORDS if pattern.search(m[1])), None)
        return _error(m[1], known)
    return None


_PARSERS: dict[str, Callable[[str, Any], Reply | None]] = {
    "jasmin": _jasmin,
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
    if status >= 500 or status == 408:
        return _error(http, "unavailable", retry_after(retry_header))
    verdict = parser(body, _json(body))
    if 200 <= status < 300:
        return verdict if verdict is not None else Reply(False, problem="unreadable", words=excerpt(body))
    if verdict is not None and not verdict.accepted and verdict.problem != "unclassified":
        return verdict
    # An HTTP error status is the gateway's verdict on the request itself: a setting to fix.
    return _error(http, by_http_status(status) or "request")
