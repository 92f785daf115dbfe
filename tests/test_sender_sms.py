"""SMS over HTTP against a real local HTTP(S) server that records what it receives."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from msgd.settings import Settings
from services.senders.base import ChannelConfig, Outbound, PermanentError, TransientError
from services.senders.registry import sender_classes
from services.senders.sms.sender import SmsSender, fill_params, gateway_id
from tests.support import SEND_TIMEOUT_S, free_port, serve_http, stop_http

TEXT = "Уважаемый абонент! Баланс: 100 руб. & 50% скидка + бонус"
PHONE = "+79121234567"
SECRET = "S3cr3t-Pa55word"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Gateway:
    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    reply: tuple[int, str, dict[str, str]] = (200, "OK - 1 SMS, ID - 4242", {})
    release: threading.Event | None = None  # when set, the handler waits for it before answering
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(gw: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible

        def setup(self) -> None:
            super().setup()
            with gw.lock:
                gw.connections += 1

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with gw.lock:
                gw.seen.append(Seen(self.command, parts.path, parts.query, body, dict(self.headers)))
            if gw.release is not None:
                gw.release.wait(5)
            status, text, headers = gw.reply
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve(gw: Gateway, server: ThreadingHTTPServer) -> Iterator[Gateway]:
    try:
        yield gw
    finally:
        if gw.release is not None:
            gw.release.set()
        stop_http(server)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(url="", port=0)
    server = serve_http(_handler(gw))
    gw.port = server.server_address[1]
    gw.url = f"http://127.0.0.1:{gw.port}/sys/send.php?"
    yield from _serve(gw, server)


@pytest.fixture
def tls_gateway(cert: tuple[Path, Path]) -> Iterator[Gateway]:
    gw = Gateway(url="", port=0)
    server = serve_http(_handler(gw), cert)
    gw.port = server.server_address[1]
    gw.url = f"https://127.0.0.1:{gw.port}/send"
    yield from _serve(gw, server)


@pytest.fixture
def sender() -> Iterator[SmsSender]:
    s = SmsSender(Settings(http_timeout=5.0))
    yield s
    s.close()


def msg(recipient: str = PHONE, body: str = TEXT) -> Outbound:
    return Outbound(
        message_id="m-1", event_id="e-1", event_type="balance_low", operator_code="op1",
        channel="sms", recipient=recipient, body=body,
    )


def cfg(url: str, **params: Any) -> ChannelConfig:
    secrets = params.pop("secrets", {})
    base = {"url": url, "request_type": "post",
            "params": "charset=utf-8&login=L&psw=P&phones=%sms%&mes=%text%"}
    base.update(params)
    return ChannelConfig(channel="sms", params=base, secrets=secrets)



# -- discovery and encoding --------------------------------------------------------------


def test_discovered_as_sms_channel() -> None:
    assert sender_classes()["sms"] is SmsSender
    assert SmsSender.recipients({"sms": [" +7912 ", ""]}) == ["+7912"]


def test_placeholders_are_percent_encoded_and_the_rest_is_literal() -> None:
    filled = fill_params("a=1&to=%2B%sms%&x='q r'&t=%text%", "79121234567", "a b+c/д")
    assert filled == "a=1&to=%2B79121234567&x='q r'&t=a%20b%2Bc%2F%D0%B4"
    # a %text% inside the message is not substituted again
    assert fill_params("t=%text%&p=%sms%", "1", "%sms%") == "t=%25sms%25&p=1"


# -- requests as the gateway sees them ---------------------------------------------------


def test_post_form_with_cyrillic_and_plus(gateway: Gateway, sender: SmsSender) -> None:
    result = sender.send(msg(), cfg(gateway.url))
    (req,) = gateway.seen
    assert req.method == "POST" and req.path == "/sys/send.php"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(req.body.decode("ascii"), keep_blank_values=True)
    assert form == {"charset": ["utf-8"], "login": ["L"], "psw": ["P"],
                    "phones": [PHONE], "mes": [TEXT]}
    assert f"phones=%2B79121234567&mes={quote(TEXT, safe='')}".encode() in req.body
    assert result.gateway_message_id == "4242"
    assert result.detail == "OK - 1 SMS, ID - 4242"


def test_strip_plus(gateway: Gateway, sender: SmsSender) -> None:
    sender.send(msg(), cfg(gateway.url, strip_plus=True))
    form = parse_qs(gateway.seen[0].body.decode())
    assert form["phones"] == ["79121234567"]


def test_get_query_with_cyrillic(gateway: Gateway, sender: SmsSender) -> None:
    sender.send(msg(), cfg(gateway.url, request_type="GET"))
    sender.send(msg(), cfg(gateway.url.rstrip("?") + "?fixed=1", request_type="get", strip_plus=True))
    first, second = gateway.seen
    assert first.method == "GET" and first.body == b""
    assert parse_qs(first.query)["mes"] == [TEXT]
    assert parse_qs(first.query)["phones"] == [PHONE]
    q2 = parse_qs(second.query)
    assert q2["fixed"] == ["1"] and q2["phones"] == ["79121234567"] and q2["mes"] == [TEXT]


def test_encoded_plus_before_placeholder_preset(gateway: Gateway, sender: SmsSender) -> None:
    config = cfg(gateway.url, strip_plus=True, params="user=u&to=%2B%sms%&text=%text%")
    sender.send(msg(), config)
    sender.send(msg(recipient="79121234567"), config)
    for req in gateway.seen:
        assert parse_qs(req.body.decode())["to"] == [PHONE]


def _auth_header(req: Seen) -> str | None:
    return req.headers.get("Authorization")


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({"login": "user", "password": "pw-1234"}, "Basic " + base64.b64encode(b"user:pw-1234").decode()),
        ({"login": "user", "password": ""}, None),
        ({"login": "", "password": "pw-1234"}, None),
        ({}, None),
    ],
)
def test_basic_auth_only_with_login_and_password(
    gateway: Gateway, sender: SmsSender, secrets: dict[str, str], expected: str | None
) -> None:
    sender.send(msg(), cfg(gateway.url, secrets=secrets))
    assert _auth_header(gateway.seen[0]) == expected


# -- outcomes ----------------------------------------------------------------------------


def test_success_pattern(gateway: Gateway, sender: SmsSender) -> None:
    gateway.reply = (200, '{"status": "OK", "result": {"message_id": "abc-1"}}', {})
    result = sender.send(msg(), cfg(gateway.url, success_pattern=r'"status":\s*"OK"'))
    assert result.gateway_message_id == "abc-1"

    gateway.reply = (200, "ERROR = 2 (неверный логин или пароль)", {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(gateway.url, success_pattern=r"^OK"))
    assert "ERROR = 2 (неверный логин или пароль)" in err.value.reason
    assert "did not accept" in err.value.reason


def test_any_2xx_is_success_without_pattern(gateway: Gateway, sender: SmsSender) -> None:
    gateway.reply = (200, "accepted;A133541BC", {})
    assert sender.send(msg(), cfg(gateway.url)).gateway_message_id == "A133541BC"
    gateway.reply = (202, "queued", {})
    result = sender.send(msg(), cfg(gateway.url))
    assert result.gateway_message_id == "" and result.detail == "queued"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(gateway: Gateway, sender: SmsSender, status: int) -> None:
    gateway.reply = (status, "Service Unavailable", {})
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(gateway.url))
    assert f"SMS gateway answered HTTP {status}: Service Unavailable" in err.value.reason


def test_429_honours_retry_after(gateway: Gateway, sender: SmsSender) -> None:
    gateway.reply = (429, "Too many requests", {"Retry-After": "7"})
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(gateway.url))
    assert err.value.retry_after == 7.0
    assert "429" in err.value.reason


def test_client_errors_are_permanent(gateway: Gateway, sender: SmsSender) -> None:
    gateway.reply = (400, "bad phone number", {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(gateway.url))
    assert err.value.reason == "SMS gateway answered HTTP 400: bad phone number"


def test_unknown_request_type(sender: SmsSender) -> None:
    with pytest.raises(PermanentError, match="request type 'soap' is not one of POST, GET, Ростелеком JSON"):
        sender.send(msg(), cfg("http://127.0.0.1:1/", request_type="soap"))


def test_refused_connection(sender: SmsSender) -> None:
    port = free_port()
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(f"http://127.0.0.1:{port}/send?psw={SECRET}", request_type="get"))
    assert err.value.reason == (
        f"SMS gateway 127.0.0.1:{port} refused the connection (is it running? firewall?)"
    )


def test_dns_failure(sender: SmsSender) -> None:
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg("https://nonexistent.invalid/send.php?"))
    reason = err.value.reason
    assert reason.startswith("cannot resolve SMS gateway host 'nonexistent.invalid' (DNS: ")
    assert reason.endswith("— check the DNS settings")


def test_timeout_after_the_request_was_sent_may_have_been_delivered(gateway: Gateway, sender: SmsSender) -> None:
    from services.senders.base import MaybeSent

    gateway.release = threading.Event()
    with pytest.raises(MaybeSent) as err:
        sender.send(msg(), cfg(gateway.url, timeout=SEND_TIMEOUT_S))
    assert err.value.reason == (f"SMS gateway 127.0.0.1:{gateway.port} did not answer within {SEND_TIMEOUT_S:g} s after the"
                                " request was sent — it may have been delivered")


def test_dedupes_message_id_needs_the_id_in_the_request(gateway: Gateway, sender: SmsSender) -> None:
    with pytest.raises(PermanentError, match="dedupes_message_id: needs %message_id% in params"):
        sender.send(msg(), cfg(gateway.url, dedupes_message_id=True))
    sender.send(msg(), cfg(gateway.url, params="id=%message_id%&phones=%sms%&mes=%text%"))
    assert parse_qs(gateway.seen[-1].body.decode())["id"] == ["m-1"]


def test_unusable_timeout_and_ca_bundle_are_settings_errors(sender: SmsSender, tmp_path: Path) -> None:
    for timeout in (-1, 0, "-0.5", "fast"):
        with pytest.raises(PermanentError) as err:
            sender.send(msg(), cfg("http://127.0.0.1:1/", timeout=timeout))
        assert err.value.reason.startswith("the SMS settings cannot be used: timeout: must be ")
        assert err.value.reason.endswith("— fix them in the web admin or the config file (msgd config load)")
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg("https://127.0.0.1:1/", ca_bundle=missing))
    assert err.value.reason.startswith(f"SMS ca_bundle file {missing!r} does not exist — set ca_bundle")


@pytest.mark.parametrize(
    ("url", "shown"),
    [("ftp://gw.example:2121/KEY-4242/send", "url: 'ftp://gw.example:2121' is not a valid http(s) URL"),
     ("gw.example/KEY-4242/send", "url: is not a valid http(s) URL: it must start with http:// or https:// and a host")],
)
def test_invalid_gateway_address_shows_scheme_and_host_only(sender: SmsSender, url: str, shown: str) -> None:
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(url, request_type="get"))
    assert err.value.reason.startswith(f"the SMS settings cannot be used: {shown}")
    assert "KEY-4242" not in err.value.reason and "/send" not in err.value.reason


def test_tls_certificate_checked_and_ca_bundle(
    tls_gateway: Gateway, sender: SmsSender, cert: tuple[Path, Path]
) -> None:
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(tls_gateway.url))
    assert "TLS certificate of the SMS gateway" in err.value.reason
    assert "could not be verified" in err.value.reason and "set ca_bundle" in err.value.reason
    assert sender.send(msg(), cfg(tls_gateway.url, ca_bundle=str(cert[0]))).gateway_message_id == "4242"
    assert sender.send(msg(), cfg(tls_gateway.url, verify=False)).gateway_message_id == "4242"


# -- secrets -----------------------------------------------------------------------------


def test_secrets_never_in_reasons(gateway: Gateway, sender: SmsSender) -> None:
    template = f"login=L&psw={SECRET}&phones=%sms%&mes=%text%"
    gateway.reply = (400, f"bad request: login=L password {SECRET}", {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(gateway.url, params=template))
    assert SECRET not in err.value.reason and SECRET not in str(err.value)
    assert "***" in err.value.reason

    gateway.reply = (401, "wrong credentials for pw-777777", {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(gateway.url, secrets={"login": "u", "password": "pw-777777"}))
    assert "pw-777777" not in err.value.reason and "check the login and password" in err.value.reason

    # a GET to a dead gateway must not quote the URL (its query has the password)
    port = free_port()
    with pytest.raises(TransientError) as dead:
        sender.send(msg(), cfg(f"http://127.0.0.1:{port}/s", request_type="get", params=template))
    assert SECRET not in dead.value.reason and "/s" not in dead.value.reason


def test_gateway_id_shapes() -> None:
    assert gateway_id('{"id": 17}') == "17"
    assert gateway_id('[{"sms_id": "x1"}]') == "x1"
    assert gateway_id('{"data": {"messages": [{"messageId": "q"}]}}') == "q"
    assert gateway_id("OK - 1 SMS, ID - 1234") == "1234"
    assert gateway_id("done") == ""


# -- concurrency -------------------------------------------------------------------------


def test_threads_share_the_sender_and_reuse_connections(gateway: Gateway, sender: SmsSender) -> None:
    threads, per_thread = 4, 6
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait(5)
                for i in range(per_thread):
                    sender.send(msg(body=f"поток {n} сообщение {i}"), cfg(gateway.url))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
        return run

    pool = [threading.Thread(target=work(n)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(10)
    assert not errors
    total = threads * per_thread
    assert len(gateway.seen) == total
    texts = {parse_qs(r.body.decode())["mes"][0] for r in gateway.seen}
    assert len(texts) == total
    assert gateway.connections <= threads < total
