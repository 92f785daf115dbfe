"""``msgd doctor``'s words about a gateway (issue: a new user's first run): a generic SMS gateway
that answers HTTP 500 to everything is not called "reachable" with an ``ok`` -- only that it
accepts connections, as a note that its answers and credentials are not checked; a gateway's
body is read in the charset the sender reads it in (UTF-8 without a declared charset is not
Latin-1 mojibake), and its control characters never reach the terminal raw."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from msgd import doctor
from services.senders.aio import Answer
from services.senders.probe import ProbeRequest
from services.senders.sms.doctor import probe as sms_probe
from services.senders.telegram.doctor import probe as telegram_probe
from tests.support import serve_http, stop_http

RUSSIAN = "Внутренняя ошибка сервера"
Reply = tuple[int, bytes, str]  # status, body bytes, Content-Type as sent (no charset added)


@pytest.fixture
def gateway() -> Iterator[Callable[[Reply], str]]:
    """A local HTTP server answering every request with the given raw bytes; its base URL."""
    servers: list[Any] = []

    def start(reply: Reply) -> str:
        status, body, kind = reply

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

        server = serve_http(Handler)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        stop_http(server)


def text(found: list[doctor.Finding]) -> str:
    return "\n".join(f.render() for f in found)


def test_a_generic_gateway_answering_500_is_a_note_not_an_ok(gateway: Callable[[Reply], str]) -> None:
    root = gateway((500, b"Internal Server Error", "text/plain"))
    found = sms_probe(ProbeRequest("operator fake: sms #1", {"url": f"{root}/send", "params": "to=%sms%&text=%text%"}))
    shown = text(found)
    assert [f.level for f in found] == [doctor.NOTE], shown
    assert "is reachable" not in shown and not shown.startswith("ok")
    port = root.rsplit(":", 1)[1]
    assert shown.startswith(f"note    operator fake: sms #1: 127.0.0.1:{port} accepts TCP connections; its answers"
                            " and credentials are not checked: this gateway type has no read-only call"), shown
    summary, code = doctor.report(found)
    assert code == 0 and "1 note(s)" in summary and "everything msgd needs answers" in summary


@pytest.mark.parametrize("kind", ["text/html", "text/plain", "application/octet-stream"])
def test_a_utf8_body_without_charset_is_read_as_the_sender_reads_it(gateway: Callable[[Reply], str],
                                                                     kind: str) -> None:
    body = f"<html><body>{RUSSIAN}</body></html>".encode()
    root = gateway((500, body, kind))
    found = sms_probe(ProbeRequest("sms", {"preset": "smsc", "url": f"{root}/sys/send.php",
                                           "login": "best", "password": "Gw-Pa55word"}))
    assert f"HTTP 500: <html><body>{RUSSIAN}</body></html>" in text(found)
    assert Answer(500, {}, body, None).text() == f"<html><body>{RUSSIAN}</body></html>"  # the sender's reading


def test_a_cp1251_body_and_a_declared_charset(gateway: Callable[[Reply], str]) -> None:
    root = gateway((500, RUSSIAN.encode("cp1251"), "text/plain"))
    found = sms_probe(ProbeRequest("sms", {"preset": "smsc", "url": f"{root}/sys/send.php",
                                           "login": "best", "password": "Gw-Pa55word"}))
    assert f"HTTP 500: {RUSSIAN}" in text(found)
    root = gateway((500, RUSSIAN.encode("koi8-r"), "text/plain; charset=KOI8-R"))
    found = sms_probe(ProbeRequest("sms", {"preset": "smsc", "url": f"{root}/sys/send.php",
                                           "login": "best", "password": "Gw-Pa55word"}))
    assert f"HTTP 500: {RUSSIAN}" in text(found)


def test_control_characters_from_a_gateway_are_escaped(gateway: Callable[[Reply], str]) -> None:
    raw = "bad\x00gate\x1b[2J\u009bway\u202e".encode()
    root = gateway((502, raw, "text/plain; charset=utf-8"))
    found = sms_probe(ProbeRequest("sms", {"preset": "smsc", "url": f"{root}/sys/send.php",
                                           "login": "best", "password": "Gw-Pa55word"}))
    shown = text(found)
    assert "HTTP 502: bad\\x00gate\\x1b[2J\\x9bway\\u202e" in shown, shown
    assert not any(c in shown for c in "\x00\x1b\x9b\u202e")

    bot = gateway((404, raw, "text/html"))
    found = telegram_probe(ProbeRequest("telegram", {"api_url": bot, "token": "123456:" + "A" * 35}))
    shown = text(found)
    assert "not the Bot API's JSON: bad\\x00gate\\x1b[2J" in shown, shown
    assert not any(c in shown for c in "\x00\x1b\x9b\u202e")


def test_a_finding_never_renders_a_control_character() -> None:
    found = doctor.Finding(doctor.PROBLEM, "smtp\x07", "the server refuses the sender (553 no\r\x00)", "fix\x1b")
    assert found.render() == "PROBLEM smtp\\x07: the server refuses the sender (553 no\\x0d\\x00)\n        → fix\\x1b"
