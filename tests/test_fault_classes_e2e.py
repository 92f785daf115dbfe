"""SMS gateways' error answers and fault classes through the whole pipeline (issue 11, point 1):
RabbitMQ + PostgreSQL with every stage in its own process, and the embedded `msgd run all`.

One local HTTP server speaks SMSPilot, Digital Direct and SemySMS, answering each subscriber's
number from a script: the issue's three answers (busy, a 5xx inside the items, device offline)
twice and then success, an unexplained error every time, known errors, an answer that is
neither. A template that cannot render gives the content fault.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests import seed
from tests.support import (
    Pipeline,
    StageProcess,
    event,
    msgd,
    publish_with_pika,
    serve_http,
    stage_env,
    stop_http,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.store]

ACCEPTED = {
    "smspilot": '{"send":[{"server_id":"10000","status":"0"}],"balance":"100"}',
    "digital_direct": '{"errors":false,"items":[{"messageUuid":"063474ec-a34f","code":201}]}',
    "semysms": '{"code":"0","id":12345}',
}
PRESETS = {  # operator -> (preset, settings, secrets)
    "pilot": ("smspilot", {}, {"api_key": "Pilot-Key-7f3a9c2b"}),
    "dd": ("digital_direct", {"sender_name": "BEST"}, {"password": "MzE5NTp3UXd3NHE2VmFPbHpj"}),
    "semy": ("semysms", {"device": "active"}, {"token": "Semy-Token-4d1e8a"}),
}


@dataclass
class Case:
    operator: str
    phone: str
    answers: list[str]  # then the preset's success, for ever ([] and `always`: the first for ever)
    state: str
    fault: str
    words: str
    requests: int
    always: bool = False


CASES = [
    Case("pilot", "+79120000001", ['{"error":{"code":"122","description":"server busy"}}'] * 2, "sent", "", "", 3),
    Case("dd", "+79120000002", ['{"errors":true,"items":[{"code":503}]}'] * 2, "sent", "", "", 3),
    Case("semy", "+79120000003", ['{"code":"5","error":"device offline"}'] * 2, "sent", "", "", 3),
    Case("pilot", "+79120000004", ['{"error":{"code":"999","description":"Ошибка 999"}}'], "failed",
         "transient-exhausted", "answer was not understood (an error without a known code or words) — it answered:"
         " Ошибка 999 (code 999) (gave up after 3 attempt(s))", 3, always=True),
    Case("pilot", "+79120000005", ['{"error":{"code":"211","description":"Invalid phone"}}'], "failed",
         "recipient", "refused the phone number", 1, always=True),
    Case("dd", "+79120000006", ['{"error":{"code":4012,"msg":"Bad credentials"}}'], "failed", "gateway",
         "bad credentials", 1, always=True),
    Case("semy", "+79120000007", ['{"status":"queued?"}'], "failed", "unknown", "outcome unknown", 1, always=True),
    Case("pilot", "12345", [], "failed", "recipient", "invalid phone number", 0),
]


@dataclass
class PhoneGateway:
    """A local SMS gateway for the three presets, answering by the number in the request."""

    scripts: dict[str, list[str]]
    always: set[str]
    requests: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def url(self, operator: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/{operator}"

    def start(self) -> PhoneGateway:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                preset = PRESETS[self.path.strip("/")][0]
                if preset == "digital_direct":
                    phone = "+" + json.loads(raw)[0]["destination"]
                else:
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    phone = form.get("to") or form.get("phone") or ""
                    phone = phone if phone.startswith("+") else "+" + phone
                with gw.lock:
                    gw.requests[phone] = gw.requests.get(phone, 0) + 1
                    script = gw.scripts.get(phone, [])
                    if phone in gw.always:
                        body = script[0]
                    else:
                        body = script.pop(0) if script else ACCEPTED[preset]
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = serve_http(Handler)
        return self


def events() -> list[dict[str, Any]]:
    out = [event(i, operator=c.operator, sms=c.phone) for i, c in enumerate(CASES)]
    out.append(event(len(CASES), etype="blocked", operator="pilot", sms="+79120000009"))  # cannot render
    return out


def check(rows: dict[str, dict[str, Any]], sent: list[dict[str, Any]], gw: PhoneGateway) -> None:
    """``rows``: the final log row of each event by event id (state, fault, reason)."""
    for e, case in zip(sent, CASES, strict=False):
        row = rows[e["event_id"]]
        assert (row["state"], row["fault"]) == (case.state, case.fault), (case, row)
        assert case.words in row["reason"], (case, row["reason"])
        assert gw.requests.get(case.phone, 0) == case.requests, (case, gw.requests)
    render = rows[sent[-1]["event_id"]]
    assert (render["state"], render["fault"]) == ("failed", "content")
    assert "contract_numbr" in render["reason"] and "+79120000009" not in gw.requests
    for row in rows.values():
        assert all(secret not in row["reason"] for _, _, s in PRESETS.values() for secret in s.values())


def test_error_answers_and_fault_classes_on_rabbitmq_and_postgresql(
    pipeline: Pipeline, rabbit_url: str, namespace: str
) -> None:
    from msgd.envelope import FINAL_STATES
    from msgd.store.models import ChannelSettings, Message

    gw = PhoneGateway({c.phone: list(c.answers) for c in CASES}, {c.phone for c in CASES if c.always}).start()
    try:
        for code, (preset, params, secrets) in PRESETS.items():
            op = seed.operator(code=code, attempts=3)
            ChannelSettings.objects.create(operator=op, channel="sms", secrets=secrets,
                                           params={"preset": preset, "url": gw.url(code), **params})
        seed.template(body="msg %(contract_number)s")
        seed.template(event_type="blocked", body="Договор %(contract_numbr)s заблокирован")
        pipeline.start("router", "renderer", "recorder", "sender:sms", MSGD_RETRY_BASE_SECONDS="1",
                       MSGD_RETRY_MAX_SECONDS="2")
        sent = events()
        publish_with_pika(rabbit_url, namespace, sent)

        def final() -> dict[str, dict[str, Any]]:
            rows = {m.event_id: {"state": m.state, "fault": m.fault, "reason": m.reason}
                    for m in Message.objects.filter(state__in=FINAL_STATES)}
            return rows if len(rows) == len(sent) else {}

        rows = wait_for(final, timeout=90, what="every message final")
        check(rows, sent, gw)
    finally:
        stop_http(gw.server)


def test_error_answers_and_fault_classes_in_embedded_mode(tmp_path: Path) -> None:
    gw = PhoneGateway({c.phone: list(c.answers) for c in CASES}, {c.phone for c in CASES if c.always}).start()
    env = stage_env(MSGD_VAR_DIR=str(tmp_path / "var"), MSGD_RETRY_BASE_SECONDS="1", MSGD_RETRY_MAX_SECONDS="2")
    config = {
        "operators": [
            {"code": code, "name": code, "attempts": 3, "timezone": "Europe/Moscow",
             "channels": {"sms": {"preset": preset, "url": gw.url(code), **params, **secrets}}}
            for code, (preset, params, secrets) in PRESETS.items()
        ],
        "templates": [{"event": "low_balance", "channel": "sms", "body": "msg %(contract_number)s"},
                      {"event": "blocked", "channel": "sms", "body": "Договор %(contract_numbr)s заблокирован"}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    sent = events()
    (tmp_path / "events.json").write_text(json.dumps(sent, ensure_ascii=False), encoding="utf-8")
    proc: StageProcess | None = None
    try:
        msgd("migrate", env=env)
        msgd("config", "load", str(tmp_path / "config.json"), env=env)
        proc = StageProcess(["all", "--no-web"], env, tmp_path / "all.log").start()
        msgd("publish", str(tmp_path / "events.json"), env=env)

        def final() -> dict[str, dict[str, Any]]:
            rows = json.loads(msgd("log", "--json", env=env).stdout)
            done = {r["event_id"]: r for r in rows if r["state"] in ("sent", "failed")}
            return done if len(done) == len(sent) else {}

        rows = wait_for(final, timeout=90, what="every message final in the embedded log")
        check(rows, sent, gw)
    finally:
        if proc is not None:
            proc.stop()
        stop_http(gw.server)
