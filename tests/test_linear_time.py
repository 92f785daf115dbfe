"""No input makes a stage's cost grow faster than the input: every pattern and parser that sees
event data, gateway answers or log fields, fed inputs of a megabyte built to make backtracking
blow up, must finish within a generous bound (far above its real cost; a quadratic or
exponential one takes minutes to ages).  The bound is a guard against blow-ups, not a speed test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from msgd.redact import redact_text, register_secrets
from tests.support import ROOT

MB = 1_000_000


@contextmanager
def time_bound(seconds: float, what: str) -> Iterator[None]:
    """Fail when the block runs longer than ``seconds`` (SIGALRM: Python's regular expression
    engine checks for signals, so a runaway match is interrupted too).  Main thread only."""
    def expired(_signum: int, _frame: Any) -> None:
        raise AssertionError(f"{what} took more than {seconds} s: its cost grows faster than its input")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Texts of about a megabyte shaped after each pattern of msgd.redact (and the issue's examples).
ADVERSARIAL = {
    "letters": "a" * MB,
    "cyrillic": "Я" * (MB // 2),
    "secret words without =": "pass" * (MB // 4),
    "secret words with =": "psw=" * (MB // 4),
    "key=value chains": "a=" * (MB // 2),
    "dots and dashes": "a.-" * (MB // 3),
    "scheme-like run": "abc+.-" * (MB // 6),
    "scheme then no credentials": "://" + "u" * MB,
    "credentials without @": ("x://u:" + "p" * 1000) * (MB // 1006),
    "bot digits without token": "bot" + "1" * MB,
    "bot tokens": ("bot12345:" + "A" * 30) * (MB // 39),
    "spaces": " " * MB,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_secret_masking_takes_linear_time(name: str) -> None:
    register_secrets(["Known-Secret-77"])
    text = ADVERSARIAL[name] + " psw=hunter22 Known-Secret-77"
    with time_bound(5, f"redact_text on {name}"):
        out = redact_text(text)
    assert "hunter22" not in out and "Known-Secret-77" not in out


def test_the_issues_examples_are_masked_at_once() -> None:
    for text in ("a" * 5000, "Я" * 20_000, "Я" * 500_000):
        with time_bound(2, f"redact_text on {len(text)} letters"):
            assert redact_text(text) == text


def test_a_cut_text_never_shows_part_of_a_secret() -> None:
    register_secrets(["Cut-Here-Secret-123456", "1abc", "6xyz", "-Secret"])  # ends that start other secrets
    for at in range(1980, 2001):
        text = "x" * at + "Cut-Here-Secret-123456" + "y" * 5000
        shown = redact_text(text, limit=2000)
        assert "Cut-Here" not in shown and len(shown) <= 2030, at
        assert shown.endswith(f"… ({len(text)} characters)")


LOG_CHILD = r"""
import structlog
from msgd import logs
logs.configure("json", "INFO")
structlog.contextvars.bind_contextvars(event_id="Я" * 500000)
structlog.get_logger("msgd.test").warning("message parked", reason="psw=" + "x" * 600000)
"""


def test_a_log_line_with_a_huge_field_is_cut_and_written_at_once() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", LOG_CHILD], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=True)
    took = time.monotonic() - started
    (line,) = result.stderr.splitlines()
    entry = json.loads(line)
    assert len(entry["event_id"]) < 16_100 and entry["event_id"].endswith("(500000 characters)")
    assert entry["reason"].startswith("psw=***")
    assert took < 60, f"one log line took {took:.0f} s"


# -- gateway answers ----------------------------------------------------------------------


def _sms_answer(reply: str, **params: Any) -> Any:
    """What the SMS sender makes of a gateway's answer (HTTP 200), through a real local server."""
    from http.server import BaseHTTPRequestHandler

    from msgd.settings import Settings
    from services.senders.base import ChannelConfig, Outbound, SendError
    from services.senders.sms.sender import SmsSender
    from tests.support import serve_http, stop_http

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = reply.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = serve_http(Handler)
    sender = SmsSender(Settings(http_timeout=10.0))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/send"
        config = ChannelConfig(channel="sms", params={"url": url, "request_type": "post",
                                                      "params": "phones=%sms%&mes=%text%", **params}, secrets={})
        message = Outbound(message_id="m-1", event_id="e-1", event_type="low_balance", operator_code="best",
                           channel="sms", recipient="+79121234567", body="Тест")
        try:
            return sender.send(message, config)
        except SendError as exc:
            return exc
    finally:
        sender.close()
        stop_http(server)


def test_an_operators_success_pattern_cannot_freeze_the_sender() -> None:
    """(a+)+$ backtracks exponentially under Python's re on 40 letters; RE2 answers at once."""
    from services.senders.base import PermanentError

    with time_bound(10, "success_pattern (a+)+$ on the gateway's answer"):
        outcome = _sms_answer("a" * 40 + "!", success_pattern=r"(a+)+$")
    assert isinstance(outcome, PermanentError) and "did not accept the message" in outcome.reason
    with time_bound(10, "success_pattern on a megabyte answer"):
        assert _sms_answer("x" * MB + " OK", success_pattern=r"\bOK$").gateway_message_id == ""


def test_a_success_pattern_re2_cannot_run_is_refused_when_loaded() -> None:
    from msgd import userpattern

    with pytest.raises(userpattern.PatternError, match="RE2 syntax"):
        userpattern.compile_pattern(r"(OK)\1")
    assert userpattern.search(r"статус:\s*принято", "Статус: принято".lower())


@pytest.mark.parametrize("reply", [
    "[" * 10000 + "]" * 10000,  # the issue's body, as a gateway answer
    '{"id": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"result": {"message_id": "' + "Я" * MB + '"}}',
    "id=" + "1" * MB,
    "ERROR = 1 " + "превышен" * (MB // 8),
])
def test_gateway_answers_of_any_shape_are_read_in_bounded_time(reply: str) -> None:
    with time_bound(10, "reading a gateway answer"):
        outcome = _sms_answer(reply)
    assert not isinstance(outcome, Exception) or "sender failed" not in str(outcome)


def test_push_subscription_given_as_deeply_nested_text_is_no_subscription() -> None:
    from msgd.settings import Settings
    from services.senders.push.sender import PushSender

    contacts = {"push": ["[" * 10000 + "]" * 10000, json.dumps({"endpoint": "https://push.example/x",
                                                                 "keys": {"p256dh": "k", "auth": "a"}})]}
    with time_bound(5, "reading push subscriptions"):
        found = PushSender(Settings()).recipients(contacts)
    assert len(found) == 1


def test_the_atheris_fuzzer_finds_no_crash_or_slow_input_in_decoding_and_display(tmp_path: Path) -> None:
    """Coverage-guided fuzzing (libFuzzer through atheris) of what every body meets first:
    safejson, a stage's decode-and-park step, the parking display and secret masking; each input
    must finish within libFuzzer's per-input timeout."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate([b"[" * 10000 + b"]" * 10000, b"", b"\xff\xfe", b'{"event_id": "\\ud800"}',
                              b'{"a": NaN}', b'{"type": "low_balance", "psw": "x"}', b"psw=a&token=b",
                              b"amqp://u:p@h/", b"bot12345:" + b"A" * 30]):
        (corpus / f"seed{i}").write_bytes(seed)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz_bodies.py"), "-runs=20000", "-max_len=200000",
         "-timeout=10", "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
