"""Every failure the HTTP (SMS, Telegram, push) and SMTP paths can raise reads as plain words
(issue 10, point 7): what happened and what to do, never a bare class name, never a secret.

The enumeration is taken from the libraries themselves (every exception class of
requests.exceptions, urllib3.exceptions, http.client, smtplib, ssl and socket), wrapped the
way requests and smtplib raise them; the SMS sender's asyncio transport likewise (every class
of aiohttp's client and HTTP-parser exceptions and of asyncio's, as aiohttp raises and wraps
them); then real local servers misbehave in each way a gateway can, and the SMS sender words
what it meets.
"""

from __future__ import annotations

import asyncio
import builtins
import http.client
import inspect
import io
import json
import re
import smtplib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
import requests
import urllib3.exceptions as u3
from aiohttp import client_exceptions as aio_x
from aiohttp import http_exceptions as aio_hx
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL as YURL

from msgd.settings import Settings
from services.senders.aio_errors import aio_error
from services.senders.base import (
    ChannelConfig,
    MaybeSent,
    Outbound,
    PermanentError,
    SendError,
    TransientError,
)
from services.senders.email.errors import after_data, classify
from services.senders.http_errors import network_error
from services.senders.sms.sender import SmsSender
from tests.support import SEND_TIMEOUT_S, SLOWER_THAN_TIMEOUT_S

SECRET = "Tok-3n-S3cret-77"
URL = f"https://gw.example:8443/bot{SECRET}/send?psw={SECRET}"
MODULES = (requests.exceptions, u3, http.client, smtplib, ssl, socket, builtins, aio_x, aio_hx, asyncio)


def exception_classes(module: Any) -> list[type[BaseException]]:
    return sorted({c for c in vars(module).values() if isinstance(c, type) and issubclass(c, BaseException)
                   and not issubclass(c, Warning)}, key=lambda c: c.__name__)


CLASS_NAMES = {c.__name__ for m in MODULES for c in exception_classes(m)}
NAME_RE = re.compile(r"\b(" + "|".join(sorted(CLASS_NAMES, key=len, reverse=True)) + r")\b")


def assert_plain(reason: str, *names: str) -> None:
    """No class name, no secret, a sentence, and it names the far side (one of ``names``)."""
    named = NAME_RE.findall(reason)
    assert not named, f"bare class name {named} in {reason!r}"
    assert SECRET not in reason, reason
    assert len(reason.split()) >= 6, f"too few words: {reason!r}"
    assert any(n in reason for n in names), f"none of {names} named in {reason!r}"


# -- what urllib3, http.client, ssl and socket raise, as requests wraps it ----------------------------

OS_ERRORS: list[BaseException] = [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionAbortedError(103, "Software caused connection abort"),
    BrokenPipeError(32, "Broken pipe"),
    TimeoutError("timed out"),
    socket.gaierror(-2, "Name or service not known"),
    socket.herror(1, "Unknown host"),
    OSError(101, "Network is unreachable"),
    OSError(113, "No route to host"),
    OSError("something odd"),
    ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"),
    ssl.SSLSyscallError(5, "Some I/O error occurred"),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
    http.client.BadStatusLine("\x15\x03\x01\x00\x02\x02"),
    http.client.IncompleteRead(b"hel", 2),
    http.client.LineTooLong("header line"),
    http.client.HTTPException("odd"),
]


class _Body(io.BytesIO):
    """What urllib3's InvalidChunkLength reads from a response: its position and what is left."""

    length_remaining = 2


def urllib3_instances() -> list[BaseException]:
    """One instance of every urllib3 exception class, built as urllib3 builds them."""
    out: list[BaseException] = []
    for cls in exception_classes(u3):
        params = [p for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
        values = {"pool": None, "url": f"/bot{SECRET}/send", "conn": None, "host": "gw.example",
                  "reason": socket.gaierror(-2, "Name or service not known"), "error": OSError(111, "Connection refused"),
                  "message": f"Failed to establish a new connection: {SECRET}", "partial": 3, "expected": 5,
                  "response": _Body(b"OK"), "length": b"zz", "location": URL, "scheme": "gopher", "defects": [],
                  "unparsed_data": b"", "retries": 0}
        try:
            made = cls(*[values.get(p.name, f"odd {SECRET}") for p in params])
        except Exception:  # noqa: BLE001 - a class that cannot be built alone is built with a message
            made = cls(f"odd {SECRET}")
        try:
            repr(made)  # urllib3 formats its causes with repr (InvalidChunkLength's fails on a fake body)
        except TypeError:
            made = cls.__new__(cls)
            made.args = (f"odd {SECRET}",)
            made.partial, made.expected = b"OK", 2  # type: ignore[attr-defined]
        out.append(made)
    return out


def http_cases() -> Iterator[tuple[str, BaseException]]:
    for cls in exception_classes(requests.exceptions):  # as raised with a message only
        text = f"HTTPSConnectionPool(host='gw.example', port=8443): {URL}"
        yield f"requests.{cls.__name__}", (cls(text, URL, 0) if issubclass(cls, json.JSONDecodeError)
                                           else cls(text))
    for inner in [*urllib3_instances(), *OS_ERRORS]:
        name = type(inner).__name__
        yield f"ConnectionError({name})", requests.exceptions.ConnectionError(inner)
        yield f"ConnectionError(MaxRetryError({name}))", requests.exceptions.ConnectionError(
            u3.MaxRetryError(None, URL, reason=inner))  # type: ignore[arg-type]
        yield f"ConnectionError(ProtocolError({name}))", requests.exceptions.ConnectionError(
            u3.ProtocolError("Connection aborted.", inner))
        new = u3.NewConnectionError(None, f"Failed to establish a new connection: {name}")  # type: ignore[arg-type]
        new.__cause__ = inner
        yield f"ConnectionError(MaxRetryError(NewConnectionError({name})))", requests.exceptions.ConnectionError(
            u3.MaxRetryError(None, URL, reason=new))  # type: ignore[arg-type]
        yield f"SSLError({name})", requests.exceptions.SSLError(u3.MaxRetryError(None, URL, reason=u3.SSLError(inner)))  # type: ignore[arg-type]
        yield f"ProxyError({name})", requests.exceptions.ProxyError(
            u3.MaxRetryError(None, URL, reason=u3.ProxyError("Unable to connect to proxy", inner)))  # type: ignore[arg-type]
        yield f"ChunkedEncodingError({name})", requests.exceptions.ChunkedEncodingError(
            u3.ProtocolError("Connection broken", inner))
    for plain in (ValueError(f"Invalid header value {SECRET!r}"), UnicodeEncodeError("latin-1", "Пароль", 0, 6, "x"),
                  http.client.InvalidURL(f"URL can't contain control characters. {URL!r}")):
        yield f"raw {type(plain).__name__}", plain


HTTP_CASES = list(http_cases())


@pytest.mark.parametrize("service", ["SMS gateway", "Telegram Bot API", "push service"])
@pytest.mark.parametrize(("case", "exc"), HTTP_CASES, ids=[c for c, _ in HTTP_CASES])
def test_every_http_failure_reads_as_plain_words(case: str, exc: BaseException, service: str) -> None:
    for proxy in ("", "http://user:" + SECRET + "@proxy.example:3128", "socks5h://proxy.example:1080"):
        err = network_error(exc, service, URL, 15.0, proxy)
        assert isinstance(err, SendError)
        assert_plain(err.reason, service, "gw.example", "proxy")


@pytest.mark.parametrize(("exc", "maybe"), [
    (requests.exceptions.ReadTimeout(u3.ReadTimeoutError(None, URL, "Read timed out.")), True),  # type: ignore[arg-type]
    (requests.exceptions.ConnectionError(u3.ReadTimeoutError(None, URL, "Read timed out.")), True),  # type: ignore[arg-type]
    (requests.exceptions.ConnectionError(u3.ProtocolError("aborted", http.client.RemoteDisconnected("x"))), True),
    (requests.exceptions.ChunkedEncodingError(u3.ProtocolError("broken", http.client.IncompleteRead(b"", 2))), True),
    (requests.exceptions.ContentDecodingError(u3.DecodeError("bad gzip")), True),
    (requests.exceptions.ConnectTimeout(u3.MaxRetryError(None, URL, u3.ConnectTimeoutError("x"))), False),  # type: ignore[arg-type]
    (requests.exceptions.ConnectionError(u3.MaxRetryError(None, URL, u3.NameResolutionError(  # type: ignore[arg-type]
        "gw.example", None, socket.gaierror(-2, "Name or service not known")))), False),  # type: ignore[arg-type]
    (requests.exceptions.InvalidURL("bad"), False),
])
def test_a_failure_after_the_request_was_sent_is_told_from_one_before(exc: BaseException, maybe: bool) -> None:
    err = network_error(exc, "SMS gateway", URL, 15.0)
    assert isinstance(err, MaybeSent) is maybe, err.reason
    assert ("may have been delivered" in err.reason) is maybe


# -- what aiohttp and asyncio raise, as aiohttp raises and wraps it (the SMS sender's transport) ----------

AIO_KEY = ConnectionKey("gw.example", 8443, True, True, None, None, None)
AIO_INFO = RequestInfo(YURL(URL), "POST", CIMultiDictProxy(CIMultiDict()), YURL(URL))


def aiohttp_instances() -> list[BaseException]:
    """One instance of every exception class of aiohttp's client and HTTP parser and of asyncio,
    built with the arguments aiohttp passes (secrets where a message or URL may carry them)."""
    values: dict[str, Any] = {
        "connection_key": AIO_KEY, "os_error": OSError(111, "Connection refused"),
        "certificate_error": ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        "request_info": AIO_INFO, "history": (), "url": URL, "expected": b"\x01" * 32, "got": b"\x02" * 32,
        "host": "gw.example", "port": 8443, "path": "/run/gw.sock", "message": f"odd {SECRET}",
        "hdr": f"X-Token: {SECRET}", "line": f"psw={SECRET}", "limit": 8190, "partial": b"OK", "consumed": 2,
    }
    out: list[BaseException] = []
    for module in (aio_x, aio_hx, asyncio):
        for cls in exception_classes(module):
            if cls.__module__ != module.__name__ and module is not asyncio:
                continue  # re-exported from elsewhere: built where it is defined
            if issubclass(cls, asyncio.CancelledError):
                continue  # not a failure: the stage's own shutdown, never caught as one
            params = [p for p in inspect.signature(cls.__init__).parameters.values()
                      if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
            try:
                made = cls(*[values.get(p.name, f"odd {SECRET}") for p in params])
            except Exception:  # noqa: BLE001 - a class that cannot be built so is built with a message
                made = cls(f"odd {SECRET}")
            if isinstance(made, aio_x.ClientResponseError):
                made.status, made.message = 400, f"Bad status line {SECRET}"
            out.append(made)
    return out


def aio_cases() -> Iterator[tuple[str, BaseException]]:
    for inner in [*aiohttp_instances(), *OS_ERRORS]:
        name = f"{type(inner).__module__.split('.')[0]}.{type(inner).__name__}"
        yield name, inner
        payload = aiohttp.ClientPayloadError(f"Response payload is not completed: {inner!r}")
        payload.__cause__ = inner
        yield f"ClientPayloadError({name})", payload
        if isinstance(inner, OSError):
            yield f"ClientConnectorError({name})", aiohttp.ClientConnectorError(AIO_KEY, inner)
            wrapped = aiohttp.ClientOSError(*inner.args)
            wrapped.__cause__ = inner
            yield f"ClientOSError({name})", wrapped
    for plain in (ValueError(f"Newline or carriage return character detected in HTTP header {SECRET!r}"),
                  UnicodeEncodeError("latin-1", "Пароль", 0, 6, "ordinal not in range(256)"), TypeError(SECRET)):
        yield f"raw {type(plain).__name__}", plain


AIO_CASES = list(aio_cases())


@pytest.mark.parametrize(("case", "exc"), AIO_CASES, ids=[c for c, _ in AIO_CASES])
def test_every_aiohttp_failure_reads_as_plain_words(case: str, exc: BaseException) -> None:
    err = aio_error(exc, "SMS gateway", URL, 15.0, host_label="SMS gateway host")
    assert isinstance(err, SendError)
    assert_plain(err.reason, "SMS gateway", "gw.example")


@pytest.mark.parametrize(("exc", "maybe"), [
    (aio_x.SocketTimeoutError("Timeout on reading data from socket"), True),
    (TimeoutError(), True),
    (aio_x.ServerDisconnectedError(), True),
    (aio_x.ClientOSError(104, "Connection reset by peer"), True),
    (aio_x.ClientPayloadError("Response payload is not completed"), True),
    (aio_x.ClientResponseError(AIO_INFO, (), status=400, message="Bad status line"), True),
    (aio_x.ConnectionTimeoutError("Connection timeout to host"), False),
    (aio_x.ClientConnectorError(AIO_KEY, ConnectionRefusedError(111, "Connect call failed")), False),
    (aio_x.ClientConnectorDNSError(AIO_KEY, socket.gaierror(-2, "Name or service not known")), False),
    (aio_x.ClientConnectorCertificateError(AIO_KEY, ssl.SSLCertVerificationError(1, "verify failed")), False),
    (aio_x.InvalidUrlClientError("gw.example/send"), False),
    (aio_x.NonHttpUrlClientError("ftp://gw.example/send"), False),
    (UnicodeEncodeError("latin-1", "Пароль", 0, 6, "x"), False),
])
def test_an_aiohttp_failure_after_the_request_was_sent_is_told_from_one_before(exc: BaseException,
                                                                                maybe: bool) -> None:
    err = aio_error(exc, "SMS gateway", URL, 15.0)
    assert isinstance(err, MaybeSent) is maybe, err.reason
    assert ("may have been delivered" in err.reason) is maybe


# -- SMTP ----------------------------------------------------------------------------------------------

def smtp_cases() -> Iterator[tuple[str, BaseException]]:
    made = {
        smtplib.SMTPResponseException: (421, b"4.7.0 try later"),
        smtplib.SMTPSenderRefused: (553, b"5.7.1 sender rejected", "noc@best.example"),
        smtplib.SMTPRecipientsRefused: ({"user@example.net": (550, b"5.1.1 no such user")},),
        smtplib.SMTPDataError: (554, b"5.7.1 spam"),
        smtplib.SMTPConnectError: (421, b"too many connections"),
        smtplib.SMTPHeloError: (501, b"bad helo"),
        smtplib.SMTPAuthenticationError: (535, b"5.7.8 bad credentials " + SECRET.encode()),
    }
    for cls in exception_classes(smtplib):
        args = made.get(cls, ("Connection unexpectedly closed: timed out",))
        yield cls.__name__, cls(*args)
    for exc in OS_ERRORS:
        yield type(exc).__name__, exc
    yield "UnicodeEncodeError", UnicodeEncodeError("ascii", "Пароль", 0, 6, "ordinal not in range(128)")
    yield "ValueError", ValueError("Header values may not contain linefeed or carriage return characters")
    yield "RuntimeError", RuntimeError(f"an unforeseen failure {SECRET}")


SMTP_CASES = list(smtp_cases())


@pytest.mark.parametrize(("case", "exc"), SMTP_CASES, ids=[c for c, _ in SMTP_CASES])
def test_every_smtp_failure_reads_as_plain_words(case: str, exc: BaseException) -> None:
    from msgd.redact import register_secrets

    register_secrets([SECRET])
    err = classify(exc, "smtp.example:465", "smtp.example", 15.0, "user@example.net")
    assert_plain(err.reason, "SMTP", "smtp.example", "e-mail")
    late = after_data(exc, "smtp.example:465", 15.0)
    assert isinstance(late, MaybeSent)
    assert_plain(late.reason, "smtp.example:465")


# -- real servers misbehaving the ways a gateway can ---------------------------------------------------

def _misbehaving(behaviour: Callable[[socket.socket], None]) -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                behaviour(conn)

    threading.Thread(target=run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/send"
    finally:
        stop.set()
        server.close()


def _linger_reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


GATEWAYS: dict[str, tuple[Callable[[socket.socket], None], str]] = {
    "answer cut mid-body": (lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nOK - 1 SMS"),
                            "closed the connection in the middle of its answer — it may have been delivered"),
    "chunked answer cut": (lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nOK - 1"),
                           "closed the connection in the middle of its answer — it may have been delivered"),
    "broken gzip": (lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello"),
                    "sent an answer that cannot be decoded"),
    "closed without an answer": (lambda c: None, "closed the connection without an answer"),
    "reset": (_linger_reset, "the connection"),
    "not HTTP": (lambda c: c.sendall(b"\x15\x03\x01\x00\x02\x02\r\n\r\n"), "answered with something that is not HTTP"),
    "body too slow": (lambda c: (c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nOK"), threading.Event().wait(SLOWER_THAN_TIMEOUT_S)),
                      f"did not answer within {SEND_TIMEOUT_S:g} s after the request was sent"),
    "no answer": (lambda c: threading.Event().wait(SLOWER_THAN_TIMEOUT_S), f"did not answer within {SEND_TIMEOUT_S:g} s after the request was sent"),
}


@pytest.mark.parametrize("name", list(GATEWAYS))
def test_a_misbehaving_gateway_is_reported_in_plain_words(name: str) -> None:
    behaviour, words = GATEWAYS[name]
    sender = SmsSender(Settings.from_env({}))
    msg = Outbound(message_id="0f8fad5b-d9cb-469f-a165-70867728950e", event_id="e", event_type="low_balance",
                   operator_code="best", channel="sms", recipient="+79121234567", body="Баланс 10 руб.")
    gen = _misbehaving(behaviour)
    url = next(gen)
    try:
        params = {"url": url, "request_type": "post", "params": f"psw={SECRET}&phones=%sms%&mes=%text%",
                  "timeout": SEND_TIMEOUT_S}
        with pytest.raises(MaybeSent) as err:
            sender.send(msg, ChannelConfig("sms", params, {}))
    finally:
        gen.close()
        sender.close()
    assert words in err.value.reason
    assert_plain(err.value.reason, url.split("/")[2])


def test_a_gateway_that_refuses_is_safely_retryable_and_a_bad_address_is_a_setting() -> None:
    from tests.support import free_port

    sender = SmsSender(Settings.from_env({}))
    msg = Outbound(message_id="0f8fad5b-d9cb-469f-a165-70867728950e", event_id="e", event_type="low_balance",
                   operator_code="best", channel="sms", recipient="+79121234567", body="Баланс 10 руб.")
    try:
        with pytest.raises(TransientError) as err:
            sender.send(msg, ChannelConfig("sms", {"url": f"http://127.0.0.1:{free_port()}/send",
                                                   "params": "m=%text%"}, {}))
        assert not isinstance(err.value, MaybeSent)
        with pytest.raises(PermanentError) as bad:
            sender.send(msg, ChannelConfig("sms", {"url": "http://gw.example:99999/send", "params": "m=%text%"}, {}))
    finally:
        sender.close()
    # A port over 65535 is refused by the settings model (as when saved) before any request.
    assert_plain(bad.value.reason, "SMS gateway address", "url: 'http://gw.example' is not a valid http(s) URL")
