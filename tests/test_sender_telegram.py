"""Telegram against a real local HTTP(S) server that emulates the Bot API's sendMessage.

``BotApi`` is also the Telegram of tests/test_channels_e2e.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog

from msgd.settings import Settings
from services.senders.base import (
    ChannelConfig,
    ContentError,
    MaybeSent,
    Outbound,
    PermanentError,
    TransientError,
)
from services.senders.registry import sender_classes
from services.senders.telegram.sender import MESSAGE_LIMIT, TelegramSender, split_message, utf16_len
from tests.support import SEND_TIMEOUT_S, SLOWER_THAN_TIMEOUT_S, free_port, serve_http, stop_http

TOKEN = "1876073174:AAFmQXtNzLk_aCFguXk6ZX0EfamGhQz9aps"
CHAT = "123456789"
TEXT = "Уважаемый абонент! Баланс: -15.00 руб. <b>не разметка</b> & 50% 🚀"

Answer = tuple[int, dict[str, Any]]


def chat_not_found() -> Answer:
    return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}


def too_many(retry_after: int) -> Answer:
    return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                 "parameters": {"retry_after": retry_after}}


@dataclass
class Call:
    token: str
    method: str
    payload: dict[str, Any]
    headers: dict[str, str]
    absolute: bool  # the request line had an absolute URI: it came through a proxy
    at: float


@dataclass
class BotApi:
    """The Bot API for one bot: records sendMessage calls; scripted answers per chat id
    (popped in order), otherwise ``ok`` with increasing message ids.  A wrong token gets 401."""

    token: str = TOKEN
    script: dict[str, list[Answer | str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    connections: int = 0
    next_id: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def sent(self, chat: str | None = None) -> list[str]:
        """Texts Telegram accepted (for one chat), in order."""
        with self.lock:
            return [c.payload["text"] for c in self.calls if c.payload.get("_ok")
                    and (chat is None or str(c.payload.get("chat_id")) == chat)]

    def wait_count(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.calls) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"Bot API got {len(self.calls)} calls, expected {n}")
                self.changed.wait(left)

    def _answer(self, call: Call) -> Answer:
        if call.token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if call.method == "getMe":
            return 200, {"ok": True, "result": {"id": 1876073174, "is_bot": True, "username": "msgd_test_bot"}}
        if call.method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        chat = str(call.payload.get("chat_id"))
        with self.lock:
            queue = self.script.get(chat) or []
            scripted = queue.pop(0) if queue else None
            if scripted == "sleep":
                return 0, {}
            if scripted is not None and not isinstance(scripted, str):
                return scripted
            if call.payload.get("parse_mode") == "HTML" and re.search(r"&(?![a-z]+;)", call.payload["text"]):
                return 400, {"ok": False, "error_code": 400,
                             "description": "Bad Request: can't parse entities: Unsupported start tag"}
            self.next_id += 1
            call.payload["_ok"] = True
            return 200, {"ok": True, "result": {"message_id": self.next_id, "chat": {"id": chat},
                                                "date": int(time.time()), "text": call.payload["text"]}}

    def start(self, tls: tuple[Path, Path] | None = None) -> BotApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with api.lock:
                    api.connections += 1

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = urlsplit(self.path).path
                m = re.match(r"^/bot([^/]+)/(\w+)$", path)
                try:
                    payload = json.loads(raw.decode("utf-8")) if raw else {}
                except ValueError:
                    payload = {}
                call = Call(m[1] if m else "", m[2] if m else "", payload, dict(self.headers),
                            self.path.startswith("http"), time.time())
                with api.lock:
                    api.calls.append(call)
                status, data = api._answer(call)
                with api.changed:
                    api.changed.notify_all()
                if status == 0:  # "sleep": never answer in time
                    time.sleep(SLOWER_THAN_TIMEOUT_S)
                    return
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = serve_http(Handler, tls)
        self.scheme = "https" if tls is not None else "http"
        return self

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture
def api() -> Iterator[BotApi]:
    a = BotApi().start()
    yield a
    a.stop()


@pytest.fixture
def tls_api(cert: tuple[Path, Path]) -> Iterator[BotApi]:
    a = BotApi().start(tls=cert)
    yield a
    a.stop()


@pytest.fixture
def sender() -> Iterator[TelegramSender]:
    s = TelegramSender(Settings(http_timeout=5.0))
    yield s
    s.close()


def msg(recipient: str = CHAT, body: str = TEXT, **kw: Any) -> Outbound:
    base: dict[str, Any] = dict(message_id="m-1", event_id="e-1", event_type="low_balance", operator_code="best",
                                channel="telegram", recipient=recipient, body=body, subject="Тема",
                                abonent_id="2731")
    base.update(kw)
    return Outbound(**base)


def cfg(api_url: str, token: str = TOKEN, **params: Any) -> ChannelConfig:
    return ChannelConfig(channel="telegram", params={"api_url": api_url, **params}, secrets={"token": token})



# -- discovery and settings -------------------------------------------------------------------


def test_discovered_as_telegram_channel() -> None:
    assert sender_classes()["telegram"] is TelegramSender
    assert TelegramSender.contact_key == "telegram_id"
    assert {"token", "proxy", "api_url", "timeout", "parse_mode"} <= set(TelegramSender.settings_model.model_fields)
    assert TelegramSender.recipients({"telegram_id": 123456789}) == ["123456789"]
    assert TelegramSender.recipients({"telegram_id": ["1", " -100200 ", ""]}) == ["1", "-100200"]
    assert TelegramSender.recipients({"sms": "+7912"}) == []


def test_config_file_accepts_the_keys_and_keeps_the_token_secret(db: str) -> None:
    from msgd.config import dump_config, load_config
    from msgd.store.models import ChannelSettings

    load_config(
        "operators:\n  - code: best\n    name: Best\n    channels:\n"
        f"      telegram: {{token: '{TOKEN}', proxy: 'socks5h://127.0.0.1:1080', api_url: 'https://api.telegram.org',"
        " timeout: 10, parse_mode: HTML, verify: true}\n"
    )
    row = ChannelSettings.objects.get(channel="telegram")
    assert row.secrets == {"token": TOKEN}
    assert row.params["parse_mode"] == "HTML" and "token" not in row.params
    assert TOKEN not in dump_config()


# -- delivery ------------------------------------------------------------------------------------


def test_send_message_plain_text(api: BotApi, sender: TelegramSender) -> None:
    result = sender.send(msg(), cfg(api.url))
    (call,) = api.calls
    assert call.token == TOKEN and call.method == "sendMessage"
    assert call.payload["chat_id"] == CHAT and call.payload["text"] == TEXT  # never HTML-escaped
    assert "parse_mode" not in call.payload
    assert call.headers["Content-Type"] == "application/json"
    assert result.gateway_message_id == "101"
    assert result.detail == "Telegram accepted message 101"


def test_parse_mode_is_passed_and_unparsable_markup_goes_as_plain_text(api: BotApi, sender: TelegramSender) -> None:
    sender.send(msg(body="<b>Баланс</b>"), cfg(api.url, parse_mode="html"))
    assert api.calls[0].payload["parse_mode"] == "HTML"
    # a bare "&" in the template's own text breaks HTML: Telegram refuses, nothing was sent, so
    # plain text is safe -- and the subscriber reads it without the tags
    result = sender.send(msg(body="<b>ООО Рога & Копыта</b> &lt;1&gt;"), cfg(api.url, parse_mode="HTML"))
    assert [c.payload.get("parse_mode") for c in api.calls[1:]] == ["HTML", None]
    assert api.sent() == ["<b>Баланс</b>", "ООО Рога & Копыта <1>"]
    assert "sent as plain text: Telegram could not parse the HTML markup" in result.detail
    with pytest.raises(PermanentError, match="parse_mode: 'BBCode' is not one of HTML, MarkdownV2, Markdown"):
        sender.send(msg(), cfg(api.url, parse_mode="BBCode"))


@pytest.mark.parametrize("timeout", [-5, 0, "-1", "soon", True])
def test_an_unusable_timeout_is_a_plain_settings_error(api: BotApi, sender: TelegramSender, timeout: Any) -> None:
    # requests would raise ValueError for a negative timeout ("sender crashed"): refused up front
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(api.url, timeout=timeout))
    assert err.value.reason.startswith("the Telegram settings cannot be used: timeout: must be ")
    assert api.calls == []


def test_settings_are_worked_out_once_per_settings(api: BotApi, sender: TelegramSender) -> None:
    config = cfg(api.url, timeout=3)
    sender.send(msg(message_id="m-1"), config)
    target = config.memo["telegram:target"]
    sender.send(msg(message_id="m-2"), config)
    assert config.memo["telegram:target"] is target and target.timeout == 3.0
    with pytest.raises(PermanentError, match="Telegram settings cannot be used: token: is required"):
        sender.send(msg(), cfg(api.url, token=""))


def test_one_session_per_thread_keeps_the_connection(api: BotApi, sender: TelegramSender) -> None:
    for i in range(3):
        sender.send(msg(message_id=f"m-{i}"), cfg(api.url))
    assert api.connections == 1

    errors: list[BaseException] = []

    def run() -> None:
        try:
            for i in range(3):
                sender.send(msg(message_id=f"t-{i}"), cfg(api.url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and len(api.sent()) == 12
    assert api.connections <= 4


def test_https_with_ca_bundle_and_untrusted_certificate(
    tls_api: BotApi, sender: TelegramSender, cert: tuple[Path, Path]
) -> None:
    assert sender.send(msg(), cfg(tls_api.url, ca_bundle=str(cert[0]))).gateway_message_id == "101"
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(tls_api.url))
    assert err.value.reason.startswith(
        f"TLS certificate of the Telegram Bot API 127.0.0.1:{tls_api.port} could not be verified: "
    )
    assert "self-signed" in err.value.reason and err.value.reason.endswith("set ca_bundle")


def test_proxy_is_used_and_its_password_hidden(api: BotApi, sender: TelegramSender) -> None:
    # the API host does not resolve: only the proxy (our server) can deliver
    proxy = f"http://tg:Proxy-Pass-77@127.0.0.1:{api.port}"
    result = sender.send(msg(), cfg("http://api.telegram.invalid", proxy=proxy))
    (call,) = api.calls
    assert call.absolute and call.token == TOKEN
    assert call.headers["Proxy-Authorization"].startswith("Basic ")
    assert result.gateway_message_id == "101"

    port = free_port()
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg("http://api.telegram.invalid", proxy=f"http://tg:Proxy-Pass-77@127.0.0.1:{port}"))
    assert err.value.reason == f"proxy 127.0.0.1:{port} refused the connection — check the proxy setting"
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg("https://api.telegram.org", proxy=f"socks5h://tg:Proxy-Pass-77@127.0.0.1:{port}"))
    assert err.value.reason == (
        "cannot reach the Telegram Bot API api.telegram.org:443 through the SOCKS proxy"
        f" 127.0.0.1:{port} (Connection refused) — check the proxy setting"
    )
    assert "Proxy-Pass-77" not in err.value.reason
    with pytest.raises(PermanentError, match="is not a proxy URL"):
        sender.send(msg(), cfg(api.url, proxy="ftp://127.0.0.1:21"))


# -- long messages -------------------------------------------------------------------------------


def test_split_prefers_paragraphs_then_lines_then_spaces() -> None:
    para = "А" * 3000
    assert split_message(f"{para}\n\n{para}") == [para, para]
    lines = "\n".join(["строка " * 20] * 60)  # no blank lines
    parts = split_message(lines)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts) and len(parts) == 3
    line = ("строка " * 20).rstrip()
    assert all(x.rstrip() == line for p in parts for x in p.split("\n"))  # whole lines in every part
    words = "слово " * 1500
    parts = split_message(words)
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(parts).split() == words.split()  # no word cut in two
    assert split_message("x" * 5000) == ["x" * 4096, "x" * 904]  # no boundary: hard cut
    assert split_message("короткое") == ["короткое"] and split_message("  \n ") == []


def test_split_counts_utf16_code_units_and_never_cuts_a_surrogate_pair() -> None:
    text = "😀" * 2100  # 2 UTF-16 units each: 4200
    parts = split_message(text)
    assert parts == ["😀" * 2048, "😀" * 52]
    assert utf16_len(parts[0]) == 4096


def test_long_message_is_sent_in_order_in_parts(api: BotApi, sender: TelegramSender) -> None:
    paragraphs = [f"Абзац {i}: " + "текст " * 400 for i in range(5)]  # ~2400 characters each
    result = sender.send(msg(body="\n\n".join(paragraphs)), cfg(api.url))
    texts = api.sent()
    assert len(texts) == 5 and [t.split(":")[0] for t in texts] == [f"Абзац {i}" for i in range(5)]
    assert all(utf16_len(t) <= MESSAGE_LIMIT for t in texts)
    assert result.gateway_message_id == "101,102,103,104,105"
    assert result.detail.startswith("sent in 5 parts")
    assert result.extra["telegram_message_ids"] == ["101", "102", "103", "104", "105"]


def test_a_later_part_waits_for_retry_after_then_continues(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = ["ok", too_many(0)]
    result = sender.send(msg(body="а" * 5000), cfg(api.url))
    assert len(api.calls) == 3 and [len(t) for t in api.sent()] == [4096, 904]
    assert result.gateway_message_id == "101,102"


def test_a_later_part_that_fails_is_not_sent_again_with_the_first(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = ["ok", chat_not_found()]
    with pytest.raises(PermanentError) as err:
        sender.send(msg(body="б" * 5000), cfg(api.url))
    assert err.value.reason.startswith("only 1 of 2 parts were delivered (Telegram message ids 101); part 2 failed:")
    assert "not retried so the subscriber does not get the first parts twice" in err.value.reason
    assert err.value.fault == "recipient", "the fault of the part that failed"


def test_a_later_part_that_may_have_been_delivered_is_not_sent_again(api: BotApi, sender: TelegramSender) -> None:
    """Part 2 timed out after its request was sent: retrying it here could show it twice."""
    api.script[CHAT] = ["ok", "sleep"]
    with pytest.raises(PermanentError) as err:
        sender.send(msg(body="в" * 5000), cfg(api.url, timeout=SEND_TIMEOUT_S))
    assert len(api.calls) == 2, "the part that may have been delivered was requested again"
    assert err.value.reason.startswith("only 1 of 2 parts were delivered (Telegram message ids 101); part 2 failed:"
                                       f" Telegram Bot API 127.0.0.1:{api.port} did not answer within {SEND_TIMEOUT_S:g} s after")
    assert err.value.fault == "unknown"


def test_a_text_needing_more_than_max_parts_fails_before_any_request(api: BotApi, sender: TelegramSender) -> None:
    with pytest.raises(ContentError) as err:
        sender.send(msg(body="Я" * 500_000), cfg(api.url))
    assert err.value.reason.startswith("the text needs 123 Telegram messages (500,000 characters; Telegram takes 4096"
                                       " per message), more than max_parts 5")
    assert err.value.fault == "content"
    with pytest.raises(ContentError, match="needs 3 Telegram messages .* more than max_parts 2"):
        sender.send(msg(body="Я" * 9000), cfg(api.url, max_parts=2))
    assert api.calls == []
    sender.send(msg(body="Я" * 9000), cfg(api.url, max_parts=3))
    assert len(api.calls) == 3
    with pytest.raises(PermanentError, match="Telegram settings cannot be used: max_parts: must be at least 1, got 0"):
        sender.send(msg(), cfg(api.url, max_parts=0))


# -- failures ---------------------------------------------------------------------------------------


def test_chat_not_found_means_not_registered_with_the_bot(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = [chat_not_found()]
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(api.url))
    assert err.value.reason == (
        "subscriber #2731 is not registered with the bot (Telegram: Bad Request: chat not found)"
        " — check the subscriber's TELEGRAM ID"
    )
    assert err.value.fault == "recipient"


@pytest.mark.parametrize("description", ["Forbidden: bot was blocked by the user", "Forbidden: user is deactivated"])
def test_blocked_or_deactivated_is_permanent(api: BotApi, sender: TelegramSender, description: str) -> None:
    api.script[CHAT] = [(403, {"ok": False, "error_code": 403, "description": description})]
    with pytest.raises(PermanentError) as err:
        sender.send(msg(abonent_id=""), cfg(api.url))
    assert err.value.reason.startswith(f"subscriber is not registered with the bot (Telegram: {description}) — ")
    assert err.value.fault == "recipient"


def test_429_is_transient_with_telegrams_retry_after(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = [too_many(7)]
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(api.url))
    assert err.value.retry_after == 7
    assert err.value.reason == (
        "Telegram is rate limiting the bot (HTTP 429, asks to retry in 7 s; Telegram: Too Many Requests: retry after 7)"
    )


def test_wrong_token_is_permanent(api: BotApi, sender: TelegramSender) -> None:
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(api.url, token="111:wrong-token-wrong-token-xx"))
    assert err.value.reason == "bot token rejected by Telegram (HTTP 401; Telegram: Unauthorized) — check the token"
    assert err.value.fault == "gateway"
    with pytest.raises(PermanentError, match="token: is required: the bot token from @BotFather") as err:
        sender.send(msg(), cfg(api.url, token=""))
    assert err.value.fault == "gateway"


def test_server_errors_are_transient(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = [(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})]
    with pytest.raises(TransientError, match=r"Telegram Bot API answered HTTP 502 \(Telegram: Bad Gateway\)"):
        sender.send(msg(), cfg(api.url))


def test_other_refusals_are_permanent_with_telegrams_words(api: BotApi, sender: TelegramSender) -> None:
    api.script[CHAT] = [(400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})]
    with pytest.raises(PermanentError, match=r"Telegram refused the message \(HTTP 400; Telegram: Bad Request: message is too long\)") as err:
        sender.send(msg(), cfg(api.url))
    assert err.value.fault == "content"
    api.script[CHAT] = [(400, {"ok": False, "error_code": 400, "description": "Bad Request: something new"})]
    with pytest.raises(PermanentError, match="something new") as err:
        sender.send(msg(), cfg(api.url))
    assert err.value.fault == "unknown"
    api.script["-100"] = [(400, {"ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded"
                                 " to a supergroup chat", "parameters": {"migrate_to_chat_id": -1001234}})]
    with pytest.raises(PermanentError, match="the chat moved to id -1001234") as err:
        sender.send(msg(recipient="-100"), cfg(api.url))
    assert err.value.fault == "recipient"


def test_bad_chat_id_and_empty_text_are_permanent(api: BotApi, sender: TelegramSender) -> None:
    with pytest.raises(PermanentError, match="'Иван' is not a Telegram chat id — check the subscriber's TELEGRAM ID") as err:
        sender.send(msg(recipient="Иван"), cfg(api.url))
    assert err.value.fault == "recipient"
    with pytest.raises(PermanentError, match="the message is empty") as err:
        sender.send(msg(body=" \n "), cfg(api.url))
    assert err.value.fault == "content"
    assert api.calls == []


def test_network_failures_are_transient_in_plain_words(api: BotApi, sender: TelegramSender) -> None:
    port = free_port()
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(f"http://127.0.0.1:{port}"))
    assert err.value.reason == f"Telegram Bot API 127.0.0.1:{port} refused the connection (is it running? firewall?)"

    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg("https://api.telegram.invalid"))
    assert err.value.reason.startswith("cannot resolve the Telegram Bot API host 'api.telegram.invalid' (DNS: ")
    assert err.value.reason.endswith(") — check the DNS settings")

    api.script[CHAT] = ["sleep"]
    with pytest.raises(MaybeSent) as err:
        sender.send(msg(), cfg(api.url, timeout=SEND_TIMEOUT_S))
    assert err.value.reason == (f"Telegram Bot API 127.0.0.1:{api.port} did not answer within {SEND_TIMEOUT_S:g} s after the"
                                " request was sent — it may have been delivered")


def test_token_never_in_reasons_or_logs(api: BotApi, sender: TelegramSender, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    reasons: list[str] = []
    api.script[CHAT] = [chat_not_found(), (500, {"ok": False, "description": "Internal Server Error"}), "sleep"]
    configs = [cfg(api.url), cfg(api.url), cfg(api.url, timeout=SEND_TIMEOUT_S), cfg(f"http://127.0.0.1:{free_port()}"),
               cfg("https://api.telegram.invalid"), cfg(api.url, token=TOKEN + "x"),
               cfg("http://api.telegram.invalid", proxy=f"http://127.0.0.1:{free_port()}")]
    with structlog.testing.capture_logs() as logs:
        for config in configs:
            try:
                sender.send(msg(), config)
            except (PermanentError, TransientError) as exc:
                reasons.append(exc.reason)
        sender.send(msg(), cfg(api.url))  # and one that is delivered
    assert len(reasons) == len(configs)
    assert "/sendMessage" in caplog.text, "urllib3 DEBUG lines were captured"
    text = "\n".join([*reasons, caplog.text, repr(logs)])
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


def test_the_bot_api_default_address() -> None:
    from services.senders.telegram.sender import bot_target
    from services.senders.telegram.settings import TelegramSettings

    t = bot_target(TelegramSettings.parse({"token": TOKEN}), Settings(http_timeout=9))
    assert (t.api_url, t.timeout, t.verify, t.proxies, t.parse_mode) == ("https://api.telegram.org", 9.0, True, None, "")
