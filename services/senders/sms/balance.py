"""An SMS gateway's account: a read-only query that checks the credentials and, where the
gateway offers it, reads the balance. Nothing is sent to a subscriber.

``msgd doctor`` runs it for every SMS slot of these formats, and the dlr stage's balance poll
(services/dlr/balances.py) keeps its balance for the metrics and the admin
(services/senders/sms/accounts.py). Each query, from the
gateway's own public API documentation:

=================  ============================================================================
format             query (the address is the send address's sibling) -> answer
=================  ============================================================================
smsc               ``POST .../sys/balance.php`` ``login``, ``psw``, ``fmt=3``, ``cur=1``
                   (https://smsc.ru/api/http/balance/get_balance/) -> ``{"balance": "123.45",
                   "currency": "RUB"}``; ``{"error": "...", "error_code": N}`` (the codes of
                   https://smsc.ru/api/http/balance/balance_answer/: 1 parameters, 2 login or
                   password, 4 IP blocked, 9 too many requests)
smspilot           ``GET api.php?balance=rur&apikey=...&format=json`` (HTTP API v1,
                   https://smspilot.ru/apikey.php) -> ``{"balance": "123.45"}``; ``{"error":
                   {"code": .., "description": ..}}`` (100/101/106: the API key)
prostor            ``GET http://gate.prostor-sms.ru/credits/`` with HTTP basic auth (login,
                   password) -> ``credits=123.45`` (Prostor's HTTP gate, as its public client
                   libraries call it, e.g. "getCreditByGet" in prostor-sms PHP clients)
digital_direct     ``GET .../api/v1/message/<uuid>`` with the send's Authorization, for the nil
                   UUID (https://api.docs.direct.i-dgtl.ru/messages/get): 401 with ``{"error":
                   {"code": 4012, "msg": "Bad credentials"}}`` = refused, 404 = accepted. Digital
                   Direct's API documents no balance query: credentials only
semysms            ``GET .../api/3/user.php?token=...`` (https://semysms.net/api.php, "Account
                   information") -> ``{"code": 0, ..., "messages_premium": 4998}`` (the balance,
                   in messages); a non-zero ``code`` with ``error``
=================  ============================================================================

Every answer is read, never assumed: an HTTP error is reported by its status and an excerpt of
the body (a non-JSON 404 page is "HTTP 404: <html>..."), never as a parser's exception; bad
credentials are :data:`CREDENTIALS`, an empty account :data:`FUNDS` (the no-money words of
services/senders/sms/problems.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

import requests

from msgd import safejson
from services.senders.net import excerpt, response_text
from services.senders.sms.problems import SMSC_CODES, SMSPILOT_CODES, by_http_status, classify_words
from services.senders.sms.request import HttpRequest, build_request
from services.senders.sms.settings import SmsSettings

CREDENTIALS, FUNDS = "credentials", "funds"
FORMATS = ("smsc", "smspilot", "prostor", "digital_direct", "semysms")
NIL_UUID = "00000000-0000-0000-0000-000000000000"
_PROSTOR_CREDITS = re.compile(r"^\s*credits\s*=\s*(-?\d+(?:[.,]\d+)?)\s*$", re.I)


@dataclass(frozen=True)
class AccountCheck:
    """What a gateway said about the account.

    ``accepted``: the credentials were accepted. ``balance``: the account's balance (None = this
    gateway's query reports none), in ``unit`` ("RUB", "messages"). ``problem`` when not
    accepted or unreadable: ``credentials``, ``funds``, ``unavailable``, ``unreadable``... (the
    names of services/senders/sms/problems.py); ``words``: the gateway's own words, or "HTTP
    <status>: <body excerpt>"."""

    accepted: bool
    balance: float | None = None
    unit: str = ""
    problem: str = ""
    words: str = ""

    @property
    def empty(self) -> bool:
        """The account has no money left (said so, or a balance of zero or less)."""
        return self.problem == FUNDS or (self.balance is not None and self.balance <= 0)


def supported(fmt: str) -> bool:
    return fmt in FORMATS


def _secret(secrets: dict[str, str], *keys: str) -> str:
    return next((secrets[k] for k in keys if secrets.get(k)), "")


def account_request(s: SmsSettings) -> HttpRequest | None:
    """The read-only query for ``s``'s gateway; None when its format has none or the settings
    lack what the query needs (credentials written inside ``params`` are not used for it)."""
    merged, secrets = s.effective(), s.secret_values()
    fmt, url = str(merged.get("reply_format") or ""), str(merged.get("url") or "")
    if not url or fmt not in FORMATS:
        return None
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    if fmt == "smsc":
        login, psw = _secret(secrets, "login"), _secret(secrets, "password")
        if not (login and psw):
            return None
        body = f"login={quote(login, safe='')}&psw={quote(psw, safe='')}&fmt=3&cur=1"
        return HttpRequest("POST", urljoin(url, "balance.php"), body.encode(), form)
    if fmt == "smspilot":
        key = _secret(secrets, "api_key", "password")
        if not key:
            return None
        return HttpRequest("GET", f"{url.split('?')[0]}?balance=rur&apikey={quote(key, safe='')}&format=json")
    if fmt == "prostor":
        login, password = _secret(secrets, "login"), _secret(secrets, "password")
        if not (login and password):
            return None
        return HttpRequest("GET", urljoin(url, "/credits/"), auth=(login, password))
    if fmt == "digital_direct":
        send = build_request("digital_direct_json", url, "0", "", {**merged, "sender_name": "-"}, secrets)
        headers = {k: v for k, v in send.headers.items() if k in ("Authorization", "Accept")}
        return HttpRequest("GET", f"{url.rstrip('/')}/{NIL_UUID}", None, headers, send.auth)
    token = _secret(secrets, "token", "password")
    if not token:
        return None
    return HttpRequest("GET", f"{urljoin(url, 'user.php')}?token={quote(token, safe='')}")


def _number(value: Any) -> float | None:
    try:
        return float(str(value).strip().replace(",", "."))
    except (TypeError, ValueError):
        return None


def _http_error(status: int, body: str) -> AccountCheck:
    words = f"HTTP {status}: {excerpt(body)}" if body.strip() else f"HTTP {status}"
    known = by_http_status(status)
    if known is None:
        named = classify_words(body) if body.strip() else "unclassified"
        known = named if named in (CREDENTIALS, FUNDS) else "request"
    return AccountCheck(False, problem=known, words=words)


def _coded(table: dict[int, tuple[str, float | None]], code: Any, words: str) -> AccountCheck:
    try:
        known = table.get(int(str(code)), ("", None))[0]
    except (TypeError, ValueError):
        known = ""
    return AccountCheck(False, problem=known or classify_words(words), words=words)


def read_account(fmt: str, status: int, body: str) -> AccountCheck:
    """The answer to :func:`account_request` (``status``: HTTP status, ``body``: the answer as text)."""
    if fmt == "digital_direct" and status == 404:
        return AccountCheck(True)  # no such message: the key was accepted
    if status in (401, 403) or status == 402 or status == 429 or status >= 500 \
            or (status >= 400 and fmt != "digital_direct"):
        checked = _http_error(status, body)
        if fmt == "digital_direct" and isinstance(data := _json(body), dict) and isinstance(data.get("error"), dict):
            err = data["error"]
            return AccountCheck(False, problem=checked.problem, words=f"{err.get('msg') or err.get('message')}"
                                f" (code {err.get('code')}, HTTP {status})")
        return checked
    data = _json(body)
    if fmt == "smsc":
        if isinstance(data, dict) and ("error" in data or "error_code" in data):
            return _coded(SMSC_CODES, data.get("error_code"),
                          f"{data.get('error')} (error_code {data.get('error_code')})")
        if isinstance(data, dict) and _number(data.get("balance")) is not None:
            return AccountCheck(True, _number(data.get("balance")), str(data.get("currency") or ""))
    elif fmt == "smspilot":
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            err = data["error"]
            text = err.get("description") or err.get("description_en") or err.get("description_ru") or ""
            return _coded(SMSPILOT_CODES, err.get("code"), f"{text} (code {err.get('code')})")
        value = data.get("balance") if isinstance(data, dict) else data
        if _number(value) is not None:
            return AccountCheck(True, _number(value), "RUB")
    elif fmt == "prostor":
        if (m := _PROSTOR_CREDITS.match(body)) is not None:
            return AccountCheck(True, _number(m[1]))
    elif fmt == "semysms":
        if isinstance(data, dict) and "code" in data:
            if str(data.get("code")).strip() == "0":
                return AccountCheck(True, _number(data.get("messages_premium")), "messages")
            words = f"{data.get('error') or data.get('message') or excerpt(body)} (code {data.get('code')})"
            return AccountCheck(False, problem=classify_words(words), words=words)
    elif fmt == "digital_direct" and status < 400:
        return AccountCheck(True)
    if fmt == "digital_direct" and isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        words = f"{err.get('msg') or err.get('message')} (code {err.get('code')})"
        return AccountCheck(False, problem=classify_words(words) if str(err.get("code")) not in
                            ("4010", "4012", "4030") else CREDENTIALS, words=words)
    if body.strip():
        named = classify_words(body)
        if named in (CREDENTIALS, FUNDS):
            return AccountCheck(False, problem=named, words=excerpt(body))
    return AccountCheck(False, problem="unreadable", words=f"HTTP {status}: {excerpt(body) or '(empty)'}")


def _json(body: str) -> Any:
    try:
        return safejson.loads(body) if body.strip() else None
    except ValueError:
        return None


def query_account(s: SmsSettings, session: requests.Session, timeout: float,
                  verify: bool | str) -> AccountCheck | None:
    """Ask ``s``'s gateway (None: it has no query, or the settings lack its credentials);
    requests' exceptions (connection, timeout) propagate to the caller, which words them."""
    request = account_request(s)
    if request is None:
        return None
    resp = session.request(request.method, request.url, data=request.body, headers=request.headers,
                           auth=request.auth, timeout=timeout, verify=verify, allow_redirects=False)
    body = response_text(resp, 65536)
    return read_account(str(s.effective().get("reply_format")), resp.status_code, body)
