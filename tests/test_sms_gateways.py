"""Every preset against a real local HTTP server that plays the vendor's API.

Each emulator checks the request the way the vendor would (form or JSON body,
credentials, number, balance) and answers in the vendor's format, including
its error answers.  The server also records arrival times and how many
requests are in flight, for tests/test_sms_speed.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from msgd.config.parse import parse
from msgd.settings import Settings
from services.senders.base import ChannelConfig, Outbound, PermanentError, TransientError
from services.senders.sms.presets import (
    PRESETS,
    effective_settings,
    format_for_url,
    normalize_request_type,
    preset_names,
    preset_settings,
)
from services.senders.sms.replies import read_reply
from services.senders.sms.sender import SmsSender, fill_params
from tests.support import serve_http, stop_http

TEXT = "Уважаемый абонент! Баланс 100 руб. & 50% скидка + бонус"
PHONE = "+79121234567"
REFUSED_NUMBER = "+79990000000"  # valid for phonenumbers, refused by the emulated gateways


# -- the server ------------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    arrived: float

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("ascii"), keep_blank_values=True).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def basic(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        login, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return login, password


Answer = tuple[int, Any, dict[str, str]]


@dataclass
class FakeGateway:
    respond: Callable[[Hit], Answer]
    latency: float = 0.0  # the gateway's own processing time per request
    hits: list[Hit] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/send"

    def start(self) -> FakeGateway:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                arrived = time.monotonic()
                with gw.lock:
                    gw.in_flight += 1
                    gw.max_in_flight = max(gw.max_in_flight, gw.in_flight)
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    parts = urlsplit(self.path)
                    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                    hit = Hit(self.command, parts.path, query, dict(self.headers), body, arrived)
                    with gw.lock:
                        gw.hits.append(hit)
                    if gw.latency:
                        threading.Event().wait(gw.latency)  # emulated processing time
                    status, answer, headers = gw.respond(hit)
                finally:
                    with gw.lock:
                        gw.in_flight -= 1
                text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                data = text.encode("utf-8")
                self.send_response(status)
                kind = "text/plain" if isinstance(answer, str) else "application/json"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.server = serve_http(Handler)
        return self

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., FakeGateway]]:
    started: list[FakeGateway] = []

    def make(respond: Callable[[Hit], Answer], latency: float = 0.0) -> FakeGateway:
        gw = FakeGateway(respond, latency).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def sender() -> Iterator[SmsSender]:
    s = SmsSender(Settings(http_timeout=5.0))
    yield s
    s.close()


def msg(recipient: str = PHONE, body: str = TEXT) -> Outbound:
    return Outbound(message_id="m-1", event_id="e-1", event_type="low_balance", operator_code="best",
                    channel="sms", recipient=recipient, body=body)


# -- the vendors -----------------------------------------------------------------------------


@dataclass
class Account:
    """The gateway's side: what it expects and how it is doing."""

    login: str = "best"
    password: str = "Gw-Pa55word"
    key: str = "MzE5NTp3UXd3NHE2VmFPbHpj"
    sender: str = "BEST"
    balance: float = 100.0
    mode: str = "ok"  # ok | throttle | down


def _md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def smsc(acc: Account) -> Callable[[Hit], Answer]:
    """smsc.ru /sys/send.php with fmt=3 (JSON) or the default text answers."""

    def respond(hit: Hit) -> Answer:
        form = hit.form if hit.method == "POST" else hit.query
        as_json = form.get("fmt") == "3"

        def error(code: int, text: str) -> Answer:
            if as_json:
                return 200, {"error": text, "error_code": code}, {}
            return 200, f"ERROR = {code} ({text})", {}

        if acc.mode == "down":
            return 503, "<html>503 Service Temporarily Unavailable</html>", {}
        if hit.headers.get("Content-Type") != "application/x-www-form-urlencoded" or form.get("charset") != "utf-8":
            return 400, "bad request", {}
        if acc.mode == "throttle":
            return error(9, "duplicate request, wait a minute")
        if form.get("login") != acc.login or form.get("psw") not in (acc.password, _md5(acc.password)):
            return error(2, "неверный логин или пароль")
        if form.get("phones") == REFUSED_NUMBER.lstrip("+"):
            return error(7, "invalid number")
        if acc.balance <= 0:
            return error(3, "недостаточно средств на счете")
        if form.get("mes") != TEXT or not form.get("phones", "").isdigit():
            return 400, "bad request", {}
        return (200, {"id": 101, "cnt": 1}, {}) if as_json else (200, "OK - 1 SMS, ID - 101", {})

    return respond


def prostor(acc: Account) -> Callable[[Hit], Answer]:
    """gate.prostor-sms.ru/send/: plain-text answers."""

    def respond(hit: Hit) -> Answer:
        form = hit.form
        if acc.mode == "down":
            return 502, "Bad Gateway", {}
        if acc.mode == "throttle":
            return 429, "too many requests", {"Retry-After": "7"}
        if form.get("login") != acc.login or form.get("password") != acc.password:
            return 401, "authorization failed: wrong login or password", {}
        if form.get("phone") == REFUSED_NUMBER.lstrip("+"):
            return 200, "invalid mobile phone", {}
        if acc.balance <= 0:
            return 200, "not enough credits", {}
        if form.get("text") != TEXT or "sender" in form:  # no sender_name: the pair is left out
            return 400, "bad request", {}
        return 200, "accepted;A133541BC", {}

    return respond


def smspilot(acc: Account) -> Callable[[Hit], Answer]:
    """smspilot.ru/api.php with format=json."""

    def respond(hit: Hit) -> Answer:
        form = hit.form
        if acc.mode == "down":
            return 500, "Internal Server Error", {}
        if acc.mode == "throttle":
            return 429, {"error": {"code": "429", "description": "Too many requests"}}, {"Retry-After": "7"}
        if form.get("format") != "json" or form.get("send") != TEXT:
            return 400, "bad request", {}
        if form.get("apikey") != acc.key:
            return 200, {"error": {"code": "101", "description": "APIKEY is invalid"}}, {}
        if form.get("to") == REFUSED_NUMBER.lstrip("+"):  # codes: SMSPilot's error list (sms_problems.py)
            return 200, {"error": {"code": "211", "description": "Invalid phone"}}, {}
        if acc.balance <= 0:
            return 200, {"error": {"code": "241", "description": "Not enough money"}}, {}
        return 200, {"send": [{"server_id": "10000", "phone": form["to"], "price": "1.68", "status": "0"}],
                     "balance": "11908.50", "cost": "1.68"}, {}

    return respond


def semysms(acc: Account) -> Callable[[Hit], Answer]:
    """semysms.net/api/3/sms.php."""

    def respond(hit: Hit) -> Answer:
        form = hit.form
        if acc.mode == "down":
            return 503, "Service Unavailable", {}
        if acc.mode == "throttle":
            return 429, {"code": 429, "error": "Too many requests"}, {"Retry-After": "7"}
        if form.get("token") != acc.key or form.get("device") != "active":
            return 200, {"code": 1, "error": "Invalid token"}, {}
        if form.get("phone") == REFUSED_NUMBER:
            return 200, {"code": 4, "error": "Invalid phone number"}, {}
        if acc.balance <= 0:
            return 200, {"code": 8, "error": "Insufficient funds on the balance"}, {}
        if form.get("msg") != TEXT or not form.get("phone", "").startswith("+7"):
            return 400, "bad request", {}
        return 200, {"code": 0, "id": 12345}, {}

    return respond


def rostelecom(acc: Account) -> Callable[[Hit], Answer]:
    """sms.rt.ru/api/v2/send_message: JSON in, JSON out, basic auth."""

    def respond(hit: Hit) -> Answer:
        if acc.mode == "down":
            return 503, "Service Unavailable", {}
        if acc.mode == "throttle":
            return 429, {"status": "error", "description": "Rate limit exceeded"}, {"Retry-After": "7"}
        if not hit.headers.get("Content-Type", "").startswith("application/json"):
            return 400, "bad request", {}
        if hit.basic() != (acc.login, acc.password):
            return 401, {"status": "error", "description": "Authentication failed"}, {}
        body = hit.json
        if set(body) != {"msisdn", "shortcode", "message_text"} or body["shortcode"] != acc.sender:
            return 400, {"status": "error", "description": "bad request"}, {}
        if body["msisdn"] == REFUSED_NUMBER.lstrip("+"):
            return 200, {"status": "error", "description": "Invalid msisdn"}, {}
        if acc.balance <= 0:
            return 200, {"status": "error", "description": "Insufficient balance"}, {}
        return 200, {"status": "ok", "result": {"uid": "rt-7f3a9c"}}, {}

    return respond


def digital_direct(acc: Account) -> Callable[[Hit], Answer]:
    """direct.i-dgtl.ru/api/v1/message: a JSON list of messages, Authorization: Basic <key>."""

    def respond(hit: Hit) -> Answer:
        if acc.mode == "down":
            return 503, "Service Unavailable", {}
        if acc.mode == "throttle":
            return 429, {"error": {"code": 4290, "msg": "Too many requests"}}, {"Retry-After": "7"}
        if hit.headers.get("Authorization") != f"Basic {acc.key}":
            return 401, {"error": {"code": 4012, "msg": "Bad credentials"}}, {}
        body = hit.json
        if not isinstance(body, list) or len(body) != 1 or body[0].get("channelType") != "SMS":
            return 400, {"error": {"code": 4000, "msg": "Bad request"}}, {}
        item = body[0]
        if item["destination"] == REFUSED_NUMBER.lstrip("+"):
            return 200, {"errors": True, "items": [{"code": 400, "error": "Invalid destination phone number"}]}, {}
        if acc.balance <= 0:
            return 200, {"errors": True, "items": [{"code": 402, "error": "Insufficient funds"}]}, {}
        if item["senderName"] != acc.sender or item["content"] != TEXT:
            return 400, {"error": {"code": 4000, "msg": "Bad request"}}, {}
        return 200, {"errors": False, "items": [{"messageUuid": "063474ec-a34f-4558-90c5-984395000004",
                                                 "code": 201}]}, {}

    return respond


def jasmin(acc: Account) -> Callable[[Hit], Answer]:
    """Jasmin's HTTP API /send (jasmin/protocols/http/endpoints/send.py in jasmin 0.11.1): UCS-2 hex
    content with coding=8, answers Success "<id>" / Error "..." with Jasmin's own words and codes."""

    def respond(hit: Hit) -> Answer:
        form = hit.form
        if acc.mode == "down":
            return 500, 'Error "Cannot send submit_sm, check SMPPClientManagerPB log file for details"', {}
        if form.get("username") != acc.login or form.get("password") != acc.password:
            return 403, f'Error "Authentication failure for username:{form.get("username")}"', {}
        if acc.mode == "throttle":
            return 403, 'Error "User throughput exceeded"', {}
        if form.get("to") == REFUSED_NUMBER.lstrip("+"):
            return 400, f'Error "Argument [to] has an invalid value: [{form["to"]}]."', {}
        if acc.balance <= 0:
            return 403, 'Error "Cannot charge submit_sm, check RouterPB log file for details"', {}
        if form.get("coding") != "8" or bytes.fromhex(form.get("hex-content", "")).decode("utf-16-be") != TEXT:
            return 400, 'Error "content or hex-content not present."', {}
        return 200, 'Success "07033084-5cfd-4812-90a4-e4d24ffb6e3d"', {}

    return respond


@dataclass
class Vendor:
    emulator: Callable[[Account], Callable[[Hit], Answer]]
    settings: Callable[[Account], dict[str, Any]]  # what the operator fills in
    message_id: str
    words: dict[str, str]  # case -> the gateway's words the reason must quote
    throttle_wait: float | None = 7.0


VENDORS: dict[str, Vendor] = {
    "smsc": Vendor(
        smsc, lambda a: {"login": a.login, "password": a.password}, "101",
        {"bad_credentials": "неверный логин или пароль", "bad_number": "invalid number",
         "no_funds": "недостаточно средств", "throttled": "wait a minute", "down": "503"},
        throttle_wait=60.0,
    ),
    "prostor": Vendor(
        prostor, lambda a: {"login": a.login, "password": a.password}, "A133541BC",
        {"bad_credentials": "wrong login or password", "bad_number": "invalid mobile phone",
         "no_funds": "not enough credits", "throttled": "too many requests", "down": "Bad Gateway"},
    ),
    "smspilot": Vendor(
        smspilot, lambda a: {"api_key": a.key}, "10000",
        {"bad_credentials": "APIKEY is invalid (code 101)", "bad_number": "Invalid phone",
         "no_funds": "Not enough money", "throttled": "Too many requests", "down": "Internal Server Error"},
    ),
    "semysms": Vendor(
        semysms, lambda a: {"token": a.key, "device": "active"}, "12345",
        {"bad_credentials": "Invalid token (code 1)", "bad_number": "Invalid phone number",
         "no_funds": "Insufficient funds", "throttled": "Too many requests", "down": "Service Unavailable"},
    ),
    "rostelecom": Vendor(
        rostelecom, lambda a: {"login": a.login, "password": a.password, "sender_name": a.sender},
        "rt-7f3a9c",
        {"bad_credentials": "Authentication failed", "bad_number": "Invalid msisdn",
         "no_funds": "Insufficient balance", "throttled": "Rate limit exceeded", "down": "Service Unavailable"},
    ),
    "digital_direct": Vendor(
        digital_direct, lambda a: {"password": a.key, "sender_name": a.sender},
        "063474ec-a34f-4558-90c5-984395000004",
        {"bad_credentials": "Bad credentials (code 4012)", "bad_number": "Invalid destination phone number",
         "no_funds": "Insufficient funds", "throttled": "Too many requests", "down": "Service Unavailable"},
    ),
    "jasmin": Vendor(
        jasmin, lambda a: {"login": a.login, "password": a.password}, "07033084-5cfd-4812-90a4-e4d24ffb6e3d",
        {"bad_credentials": "Authentication failure", "bad_number": "has an invalid value",
         "no_funds": "Cannot charge submit_sm", "throttled": "User throughput exceeded",
         "down": "Cannot send submit_sm"},
        throttle_wait=None,
    ),
}

SECRET_KEYS = {"login", "password", "api_key", "token", "md5_key"}


def preset_config(name: str, url: str, filled: dict[str, Any], **extra: Any) -> ChannelConfig:
    """What the operator writes: the preset, the credentials, and (for the test) the address."""
    params: dict[str, Any] = {"preset": name, "url": url, **extra}
    secrets: dict[str, Any] = {}
    for key, value in filled.items():
        (secrets if key in SECRET_KEYS else params)[key] = value
    return ChannelConfig(channel="sms", params=params, secrets=secrets)


def test_every_preset_is_emulated() -> None:
    assert sorted(VENDORS) == sorted(preset_names())


@pytest.mark.parametrize("name", list(VENDORS))
def test_preset_sends_and_keeps_the_gateway_id(
    name: str, make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    vendor, acc = VENDORS[name], Account()
    gw = make_gateway(vendor.emulator(acc))
    result = sender.send(msg(), preset_config(name, gw.url, vendor.settings(acc)))
    assert result.gateway_message_id == vendor.message_id
    assert result.extra == {"segments": 1, "encoding": "UCS-2", "phone": "79121234567"}
    assert len(gw.hits) == 1


CASES = {
    # case -> (expected error, plain-words hint in the reason, fault class)
    "bad_credentials": (PermanentError, "bad credentials", "gateway"),
    "bad_number": (PermanentError, "refused the phone number", "recipient"),
    "no_funds": (PermanentError, "not enough money", "gateway"),
    "throttled": (TransientError, "rate limiting", "transient-exhausted"),
    "down": (TransientError, "temporary problem", "transient-exhausted"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(VENDORS))
def test_preset_errors_are_read_and_classified(
    name: str, case: str, make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    vendor, acc = VENDORS[name], Account()
    gw = make_gateway(vendor.emulator(acc))
    filled = vendor.settings(acc)
    recipient = PHONE
    if case == "bad_credentials":
        filled = {k: ("wrong-" + v if k in SECRET_KEYS and k != "login" else v) for k, v in filled.items()}
    elif case == "bad_number":
        recipient = REFUSED_NUMBER
    elif case == "no_funds":
        acc.balance = 0
    elif case == "throttled":
        acc.mode = "throttle"
    elif case == "down":
        acc.mode = "down"
    kind, hint, fault = CASES[case]
    with pytest.raises(SendErrorTypes) as err:
        sender.send(msg(recipient), preset_config(name, gw.url, filled))
    exc = err.value
    assert type(exc) is kind, exc.reason
    assert exc.fault == fault, exc.reason
    assert hint in exc.reason
    assert vendor.words[case] in exc.reason  # the gateway's own words
    assert exc.reason.startswith(f"SMS gateway 127.0.0.1:{gw.server.server_address[1]}: ")  # type: ignore[union-attr]
    for secret in filled.values():
        if len(secret) >= 6 and secret not in ("active", "BEST", "best"):
            assert secret not in exc.reason
    if case == "throttled":
        assert exc.retry_after == vendor.throttle_wait
    assert len(gw.hits) == 1


SendErrorTypes = (PermanentError, TransientError)


# -- request shapes ----------------------------------------------------------------------------


def test_smsc_preset_form_and_placeholders(make_gateway: Callable[..., FakeGateway], sender: SmsSender) -> None:
    acc = Account(password="p&ss word+1")
    gw = make_gateway(smsc(acc))
    sender.send(msg("8 (912) 123-45-67"), preset_config("SMSC.RU", gw.url, {"login": "best", "password": acc.password}))
    (hit,) = gw.hits
    raw = hit.body.decode("ascii")
    assert raw == ("charset=utf-8&fmt=3&login=best&psw=p%26ss%20word%2B1&phones=79121234567&mes="
                   + fill_params("%text%", "", TEXT))  # no sender_name: "&sender=" is left out
    assert hit.form["psw"] == acc.password
    assert "Authorization" not in hit.headers  # the credentials travel in the parameters


def test_sender_placeholder_and_explicit_override(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 7", {}))
    config = preset_config("smsc", gw.url, {"login": "best", "password": "Gw-Pa55word", "sender_name": "BEST ISP"},
                           request_type="GET", strip_plus=False)
    result = sender.send(msg(), config)
    (hit,) = gw.hits
    assert hit.method == "GET" and hit.body == b""
    assert hit.query["sender"] == "BEST ISP" and hit.query["phones"] == PHONE and hit.query["mes"] == TEXT
    assert result.gateway_message_id == "7"  # smsc.ru's text answer read as well


def test_rostelecom_json_body_and_basic_auth(make_gateway: Callable[..., FakeGateway], sender: SmsSender) -> None:
    acc = Account()
    gw = make_gateway(rostelecom(acc))
    config = ChannelConfig("sms", {"url": gw.url, "request_type": "Ростелеком JSON", "sender_name": "BEST",
                                   "params": "ignored=1&as=the manual says"},
                           {"login": "best", "password": acc.password})
    assert sender.send(msg(), config).gateway_message_id == "rt-7f3a9c"
    (hit,) = gw.hits
    assert hit.method == "POST" and hit.headers["Content-Type"] == "application/json; charset=utf-8"
    assert hit.json == {"msisdn": "79121234567", "shortcode": "BEST", "message_text": TEXT}
    assert hit.basic() == ("best", acc.password)
    assert TEXT.encode("utf-8") in hit.body  # UTF-8, not \\u escapes


def test_rostelecom_needs_sender_and_credentials(sender: SmsSender) -> None:
    config = ChannelConfig("sms", {"url": "http://127.0.0.1:1/", "request_type": "rostelecom_json"}, {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), config)
    for name in ("login", "password", "sender_name"):
        assert f"{name}: is required by request type rostelecom_json (the Rostelecom JSON request)" in err.value.reason


def test_digital_direct_json_body_extras_and_key(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    acc = Account()
    gw = make_gateway(digital_direct(acc))
    config = ChannelConfig("sms", {"url": gw.url, "request_type": "DIGITAL DIRECT JSON", "sender_name": "BEST",
                                   "params": '{"ttl": 3600, "tags": ["billing"], "destination": "x"}'},
                           {"password": acc.key})
    assert sender.send(msg(), config).gateway_message_id == "063474ec-a34f-4558-90c5-984395000004"
    (hit,) = gw.hits
    assert hit.json == [{"channelType": "SMS", "senderName": "BEST", "destination": "79121234567",
                         "content": TEXT, "ttl": 3600, "tags": ["billing"]}]
    assert hit.headers["Authorization"] == f"Basic {acc.key}"


@pytest.mark.parametrize(
    ("key", "header"),
    [("Bearer tok-123456", "Bearer tok-123456"),
     ("3195:secret", "Basic " + base64.b64encode(b"3195:secret").decode())],
)
def test_digital_direct_key_forms(
    key: str, header: str, make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    gw = make_gateway(lambda hit: (200, [{"destination": "79121234567", "messageUuid": "u-1"}], {}))
    config = ChannelConfig("sms", {"url": gw.url, "preset": "digital_direct", "sender_name": "BEST"},
                           {"password": key})
    assert sender.send(msg(), config).gateway_message_id == "u-1"
    assert gw.hits[0].headers["Authorization"] == header


def test_digital_direct_bad_extras(sender: SmsSender) -> None:
    config = ChannelConfig("sms", {"url": "http://127.0.0.1:1/", "preset": "digital_direct", "sender_name": "B",
                                   "params": "ttl=3600"}, {"password": "k"})
    with pytest.raises(PermanentError, match="must be a JSON object"):
        sender.send(msg(), config)


# -- MD5 signature ---------------------------------------------------------------------------


def test_md5_signature_sends_the_password_digest(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    acc = Account(password="Gw-Pa55word")
    gw = make_gateway(smsc(acc))
    template = "charset=utf-8&fmt=3&login=%login%&psw=%md5%&phones=%sms%&mes=%text%"
    config = preset_config("smsc", gw.url, {"login": "best", "password": acc.password}, params=template)
    assert sender.send(msg(), config).gateway_message_id == "101"
    form = gw.hits[0].form
    assert form["psw"] == hashlib.md5(b"Gw-Pa55word").hexdigest()
    assert acc.password.encode() not in gw.hits[0].body and "Authorization" not in gw.hits[0].headers

    # md5_key ("MD5 подпись") is hashed instead of the password when it is set
    config = preset_config("smsc", gw.url, {"login": "best", "md5_key": "Other-Secret"}, params=template)
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), config)
    assert gw.hits[1].form["psw"] == hashlib.md5(b"Other-Secret").hexdigest()
    assert "bad credentials" in err.value.reason
    assert gw.hits[1].form["psw"] not in err.value.reason


def test_digest_and_password_masked_when_the_gateway_echoes_them(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    gw = make_gateway(lambda hit: (400, "bad request: " + hit.body.decode(), {}))
    config = ChannelConfig("sms", {"url": gw.url, "params": "u=%login%&h=%md5%&p=%password%&to=%sms%"},
                           {"login": "best", "password": "Echo-Pa55"})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), config)
    assert "Echo-Pa55" not in err.value.reason
    assert hashlib.md5(b"Echo-Pa55").hexdigest() not in err.value.reason
    assert "u=best" in err.value.reason


def test_missing_credential_fails_before_sending(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    gw = make_gateway(smsc(Account()))
    with pytest.raises(PermanentError, match=r"password: is required by preset smsc \(%password% in params: password\)"):
        sender.send(msg(), preset_config("smsc", gw.url, {"login": "best"}))
    with pytest.raises(PermanentError, match=r"device: is required by preset semysms .*token: is required by preset"
                                             r" semysms \(%token% in params: token \(or password\)\)"):
        sender.send(msg(), preset_config("semysms", gw.url, {}))
    assert gw.hits == []


# -- presets and request types as data ------------------------------------------------------------


def test_preset_settings_for_the_admin_picker() -> None:
    smsc_settings = preset_settings("smsc")
    assert smsc_settings["url"] == "https://smsc.ru/sys/send.php"
    assert smsc_settings["request_type"] == "post"
    assert "login=%login%&psw=%password%" in smsc_settings["params"]
    smsc_settings["url"] = "changed"
    assert preset_settings("SMSC.RU")["url"] == "https://smsc.ru/sys/send.php"  # a fresh copy
    assert preset_settings("Ростелеком")["request_type"] == "rostelecom_json"
    assert preset_settings("Digital Direct")["url"] == "https://direct.i-dgtl.ru/api/v1/message"
    assert preset_settings("Простор СМС")["url"] == "http://gate.prostor-sms.ru/send/"
    assert "%token%" in preset_settings("semysms")["params"] and "%device%" in preset_settings("semysms")["params"]
    assert "apikey=%api_key%" in preset_settings("smspilot")["params"]
    for preset in PRESETS.values():
        assert {"url", "request_type", "params", "strip_plus", "reply_format"} <= set(preset.settings)
        assert preset.credentials
    with pytest.raises(ValueError, match="unknown SMS preset 'twilio'"):
        preset_settings("twilio")


def test_unusable_settings_raise_value_error_with_the_operators_words() -> None:
    for params, words in [({"preset": "twilio"}, "unknown SMS preset 'twilio' (known: smsc"),
                          ({"request_type": "soap"}, "request type 'soap' is not one of POST"),
                          ({"reply_format": "xml"}, "reply_format 'xml' is not one of generic")]:
        with pytest.raises(ValueError) as err:
            effective_settings(params)
        assert str(err.value).startswith(words)  # plain text, not a KeyError's repr


def test_effective_settings() -> None:
    merged = effective_settings({"preset": "smsc", "url": "http://local/", "strip_plus": False, "params": ""})
    assert merged["url"] == "http://local/" and merged["strip_plus"] is False
    assert merged["params"].startswith("charset=utf-8")  # an empty value does not erase the preset's
    assert merged["reply_format"] == "smsc"
    implied = effective_settings({"request_type": "Digital Direct JSON"})
    assert implied["url"] == "https://direct.i-dgtl.ru/api/v1/message" and implied["reply_format"] == "digital_direct"
    by_host = effective_settings({"url": "https://smsc.ru/sys/send.php", "params": "login=a&psw=b"})
    assert by_host["reply_format"] == "smsc" and by_host["request_type"] == "post"
    assert effective_settings({"url": "http://127.0.0.1/x"})["reply_format"] == "generic"
    assert format_for_url("https://gate.prostor-sms.ru/send/") == "prostor"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("POST", "post"), ("get", "get"), ("Ростелеком JSON", "rostelecom_json"), ("РОСТЕЛЕКОМ json", "rostelecom_json"),
     ("Digital Direct JSON", "digital_direct_json"), ("digital-direct-json", "digital_direct_json"), (None, "post")],
)
def test_request_type_names(name: str | None, kind: str) -> None:
    assert normalize_request_type(name) == kind


def test_unknown_preset_fails_plainly(sender: SmsSender) -> None:
    with pytest.raises(PermanentError, match="unknown SMS preset 'smsx' \\(known: smsc, digital_direct"):
        sender.send(msg(), ChannelConfig("sms", {"preset": "smsx"}, {}))


def test_config_file_accepts_the_new_keys() -> None:
    parsed, problems = parse({"operators": [{"code": "best", "name": "B", "channels": {"sms": [
        {"preset": "smsc", "login": "best", "password": "pw-123456", "sender_name": "BEST",
         "region": "KZ", "rate_limit": 5},
        {"preset": "semysms", "token": "tok-123456", "device": "active"},
        {"preset": "smspilot", "api_key": "key-123456", "reply_format": "smspilot"},
    ]}}]})
    assert not problems, problems.errors()
    main, semy, pilot = parsed.operators[0].channels or []
    assert main.params == {"preset": "smsc", "sender_name": "BEST", "region": "KZ", "rate_limit": 5}
    assert main.secrets == {"login": "best", "password": "pw-123456"}
    assert semy.secrets == {"token": "tok-123456"} and semy.params["device"] == "active"
    assert pilot.secrets == {"api_key": "key-123456"}


# -- reading answers (the formats' other shapes) ----------------------------------------------------


def test_other_answer_shapes() -> None:
    ok = read_reply("smsc", 200, "OK - 2 SMS, ID - 1234, COST - 3.50, BALANCE - 96.5")
    assert ok is not None and ok.accepted and ok.message_id == "1234"
    err = read_reply("smsc", 200, "ERROR = 6 (message is denied), ID - 55")
    assert err is not None and not err.accepted and err.problem == "denied" and not err.transient
    blocked = read_reply("smsc", 200, '{"error": "IP blocked", "error_code": 4}')
    assert blocked is not None and blocked.transient and blocked.retry_after == 300
    assert (r := read_reply("smsc", 200, "1234,2")) is not None and r.message_id == "1234"
    assert (r := read_reply("smsc", 200, "0,-8")) is not None and r.problem == "undeliverable"
    assert (r := read_reply("prostor", 200, "A1B2=accepted")) is not None and r.message_id == "A1B2"
    assert (r := read_reply("smspilot", 200, "12345")) is not None and r.message_id == "12345"
    assert (r := read_reply("smspilot", 200, "ERROR=100:APIKEY IS REQUIRED")) is not None
    assert r.problem == "credentials"
    # an answer of a known format that is neither success nor error is not counted as sent
    assert (r := read_reply("smsc", 200, "<html>maintenance</html>")) is not None
    assert r.problem == "unreadable" and not r.transient
    assert read_reply("generic", 200, "whatever") is None


def test_basic_auth_only_when_the_credentials_are_not_in_params(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender
) -> None:
    gw = make_gateway(lambda hit: (200, "OK", {}))
    secrets = {"login": "user", "password": "pw-123456", "api_key": "key-123456"}
    sender.send(msg(), ChannelConfig("sms", {"url": gw.url, "params": "key=%api_key%&to=%sms%"}, secrets))
    sender.send(msg(), ChannelConfig("sms", {"url": gw.url, "params": "u=%login%&to=%sms%"}, secrets))
    sender.send(msg(), ChannelConfig("sms", {"url": gw.url, "params": "key=%api_key%&to=%sms%"},
                                     {"login": "user", "password": "pw-123456"}))  # the key is the password
    first, second, third = gw.hits
    assert first.basic() == ("user", "pw-123456") and first.form["key"] == "key-123456"
    assert "Authorization" not in second.headers
    assert "Authorization" not in third.headers and third.form["key"] == "pw-123456"
