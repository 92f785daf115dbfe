"""Real local counterparts and helpers for the tests (no mocks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
RABBIT_URL = os.environ.get("MSGD_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_DSN = os.environ.get("MSGD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")
# "A server slower than the timeout": the timeout must still leave time to connect (and, for SMTP,
# to greet) while two test passes share two cores — 0.3 s lost that race in CI once — and the
# server's slowness is well past it, so the test never depends on which of the two is late.
SEND_TIMEOUT_S = 1.0
SLOWER_THAN_TIMEOUT_S = 3.0


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def rabbit_reachable() -> bool:
    """Whether the RabbitMQ of ``MSGD_TEST_RABBIT_URL`` accepts connections."""
    from urllib.parse import urlsplit

    url = urlsplit(RABBIT_URL)
    return _port_open(url.hostname or "127.0.0.1", url.port or 5672)


def pg_reachable() -> bool:
    if not _port_open("127.0.0.1", 5432):
        return False
    try:
        import psycopg

        with psycopg.connect(PG_DSN + "/postgres", connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Wait until ``predicate()`` is truthy (polls a condition; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        pause.wait(0.05)


def pika_params(url: str) -> Any:
    """kombu writes the default vhost as a trailing "//"; pika wants "/%2F"."""
    import pika

    return pika.URLParameters(url[:-2] + "/%2F" if url.endswith("//") else url)


def delete_namespace(url: str, ns: str) -> None:
    import pika

    from msgd import topology as topo

    conn = pika.BlockingConnection(pika_params(url))
    try:
        ch = conn.channel()
        queues = [*topo.router_queues(ns), *topo.render_queues(ns), topo.status_queue(ns), topo.parking_queue(ns)]
        for channel in ("sms", "email", "telegram", "push"):
            queues += topo.sender_queues(ns, channel)
        for q in queues:
            ch.queue_delete(q)
        for x in (topo.events_exchange(ns), topo.events_fallback_exchange(ns), topo.internal_exchange(ns),
                  topo.parking_exchange(ns), topo.feedback_exchange(ns)):
            ch.exchange_delete(x)
    finally:
        conn.close()


# -- real local HTTP servers -------------------------------------------------------------
def serve_http(handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None) -> ThreadingHTTPServer:
    """A threaded HTTP (or, with a (cert, key) pair, HTTPS) server on 127.0.0.1 and a free
    port, serving from a daemon thread until ``stop_http``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


# -- sender stages a test builds -------------------------------------------------------
OPENED_STAGES: list[Any] = []


def opened(stage: Any) -> Any:
    """Remember a sender stage so that tests/conftest.py closes it after the test: its aiohttp
    session and event loop thread are released, not left for the garbage collector (which
    logs "Unclosed client session")."""
    OPENED_STAGES.append(stage)
    return stage


def close_opened_stages() -> None:
    while OPENED_STAGES:
        OPENED_STAGES.pop().close()


# -- a real HTTP server that plays an SMS gateway ------------------------------------
@dataclass
class GatewayRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class Gateway:
    """Records requests; answers from ``script`` (status, body) then ``default``.

    With ``hold`` set, every request after the first ``hold_after`` is recorded
    and then kept waiting until ``hold`` is set (to kill a sender mid-send).
    ``delay`` makes a slow gateway: each answer is written that many seconds
    after its request came. ``cut`` makes a broken one: its answer stops in the
    middle and the connection closes. ``answered`` lists the requests whose
    answer was written, in order.
    """

    default: tuple[int, str] = (200, "OK")
    script: list[tuple[int, str]] = field(default_factory=list)
    hold: threading.Event | None = None
    hold_after: int = 0
    delay: float = 0.0
    cut: bool = False
    requests: list[GatewayRequest] = field(default_factory=list)
    answered: list[GatewayRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def received(self, key: str = "mes") -> list[str]:
        with self.lock:
            return [r.params.get(key, "") for r in self.requests]

    def wait_count(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"gateway got {len(self.requests)} requests, expected {n}")
                self.changed.wait(left)

    def start(self) -> Gateway:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, params: dict[str, str]) -> None:
                req = GatewayRequest(self.command, self.path, params, dict(self.headers), time.time())
                with gw.lock:
                    gw.requests.append(req)
                    held = gw.hold is not None and len(gw.requests) > gw.hold_after
                    status, body = gw.script.pop(0) if gw.script else gw.default
                with gw.changed:
                    gw.changed.notify_all()
                if held and gw.hold is not None:
                    gw.hold.wait()
                elif gw.delay:
                    threading.Event().wait(gw.delay)  # the gateway's own slowness, not a test's sync
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data) + (40 if gw.cut else 0)))
                self.close_connection = gw.cut
                try:
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up waiting: not answered
                with gw.lock:
                    gw.answered.append(req)

            def do_GET(self) -> None:  # noqa: N802
                q = parse_qs(urlsplit(self.path).query)
                self._answer({k: v[0] for k, v in q.items()})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                self._answer({k: v[0] for k, v in parse_qs(raw).items()})

        self.server = serve_http(Handler)
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        stop_http(self.server)


# -- a real SMTP server -------------------------------------------------------------------
def port_zero_controller() -> type[Any]:
    from aiosmtpd.controller import Controller

    class PortZeroController(Controller):  # type: ignore[misc]
        """aiosmtpd Controller that can listen on port 0 (it triggers itself on the real port)."""

        def _trigger_server(self) -> None:
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()

    return PortZeroController


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.changed = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                import email
                from email import policy

                msg = email.message_from_bytes(envelope.content, policy=policy.default)
                with sink.changed:
                    sink.messages.append((envelope.rcpt_tos, msg))
                    sink.changed.notify_all()
                return "250 OK"

        self.controller = port_zero_controller()(Handler(), hostname="127.0.0.1", port=0)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    @property
    def port(self) -> int:
        return int(self.controller.server.sockets[0].getsockname()[1])

    def wait_count(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SMTP server got {len(self.messages)} messages, expected {n}")
                self.changed.wait(left)

    def stop(self) -> None:
        self.controller.stop()


def free_port() -> int:
    """A local port nothing listens on (bound by the kernel's choice, then released): a server
    to start there, or a connection to be refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- stages as real processes ----------------------------------------------------------------
def stage_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGD_")}
    env.update({"MSGD_LOG_FORMAT": "json", "MSGD_BATCH_WAIT_MS": "10", "MSGD_CONFIG_REFRESH_SECONDS": "0.2"})
    env.update(overrides)
    return env


def msgd(*args: str, env: dict[str, str], check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "msgd", *args], env=env, cwd=ROOT, text=True,
                          capture_output=True, check=check, input=stdin, timeout=120)


class StageProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args, self.env, self.log_path = args, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.terminated = False

    def start(self) -> StageProcess:
        log = self.log_path.open("ab")
        self.terminated = False
        self.proc = subprocess.Popen([sys.executable, "-m", "msgd", "run", *self.args], env=self.env,
                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM, once), without waiting for it."""
        if self.proc is not None and self.proc.poll() is None and not self.terminated:
            self.proc.terminate()
            self.terminated = True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def event(n: int = 1, *, etype: str = "low_balance", sms: str | None = "+79121234567",
          email: str | None = None, operator: str = "best", **extra: Any) -> dict[str, Any]:
    contacts: dict[str, Any] = {}
    if sms:
        contacts["sms"] = sms
    if email:
        contacts["email"] = email
    body: dict[str, Any] = {
        "event_id": f"ev-{n}-{time.time_ns()}",
        "type": etype,
        "occurred_at": "2026-11-27T10:00:00+03:00",
        "operator": {"code": operator},
        "abonent": {"id": 1000 + n, "name": f"Абонент {n}", "contract_number": f"C{n}", "balance": -12.5,
                    "currency": "руб.", "status": "active", "contract_type": "individual",
                    "contacts": contacts},
        "data": {},
    }
    body.update(extra)
    return body


def publish_with_pika(url: str, ns: str, events: list[dict[str, Any]], raw: list[bytes] | None = None) -> None:
    """Publish as billing would: a plain AMQP client, persistent, with confirms."""
    import pika

    conn = pika.BlockingConnection(pika_params(url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for body in raw or []:
            ch.basic_publish(f"{ns}.events", "low_balance", body, props)
        for e in events:
            ch.basic_publish(f"{ns}.events", e["type"], json.dumps(e, ensure_ascii=False).encode(), props)
    finally:
        conn.close()


class Pipeline:
    """Stage processes sharing one broker namespace and one store (the `pipeline` fixture)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, StageProcess] = {}

    def start(self, *names: str, **env: str) -> None:
        """Start stages by name: router, renderer, recorder, sender:<channel>."""
        for name in names:
            args = ["sender", "--channel", name.split(":")[1]] if name.startswith("sender:") else [name]
            proc = StageProcess(args, {**self.env, **env}, self.logs / f"{name.replace(':', '-')}.log")
            self.procs[name] = proc.start()

    def stop(self) -> None:
        for p in self.procs.values():  # all at once: each finishes its batch in parallel
            p.terminate()
        for p in self.procs.values():
            p.stop()

    def wait_started(self, timeout: float = 60.0) -> None:
        """Until every stage process says it is consuming."""
        wait_for(lambda: all("stage started" in p.log_text() for p in self.procs.values()),
                 timeout=timeout, what="every stage consuming")

    def logs_text(self) -> str:
        return "\n".join(p.log_text() for p in self.procs.values())


def promtool_rules_pass(promtool: str, folder: Path, alerts: Path, input_series: list[dict[str, str]],
                        alert_rule_test: list[dict[str, Any]]) -> None:
    """promtool's rule unit test of ``alerts`` (a Prometheus rules file) on one-minute samples:
    asserts that every expected alert, and no other, fires at each ``eval_time``."""
    import shutil

    import yaml

    shutil.copy(alerts, folder / "alerts.yml")
    (folder / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["alerts.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": alert_rule_test}],
    }))
    r = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=folder, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
