"""Metrics and logs of a real delivery: stages as separate processes on RabbitMQ.

* every delivery log line carries event_id, message_id, operator and channel,
  and no configured secret (SMS password in params, SMTP password, bot token)
  appears anywhere in the logs;
* every stage serves metrics that ``promtool check metrics`` accepts;
* Prometheus (Debian's package) scrapes the stages and PromQL sees the counts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests import seed
from tests.conftest import need
from tests.support import Gateway, Pipeline, event, free_port, publish_with_pika, wait_for
from tests.test_channels_e2e import api  # noqa: F401 - fixture
from tests.test_sender_email import LOGIN, PASSWORD, smtp  # noqa: F401 - fixture
from tests.test_sender_telegram import TOKEN, BotApi

pytestmark = [pytest.mark.slow]

SMS_PASSWORD = "Sms-Pa55-w0rd-XYZ"
STAGES = ("router", "renderer", "recorder", "sender:sms", "sender:email", "sender:telegram")



def start_with_metrics(pipeline: Pipeline, names: tuple[str, ...], **env: str) -> dict[str, int]:
    ports = {}
    for name in names:
        ports[name] = free_port()
        pipeline.start(name, MSGD_METRICS_PORT=str(ports[name]), **env)
    return ports


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def scrape_when_up(port: int) -> str:
    def attempt() -> str | None:
        try:
            return scrape(port)
        except OSError:
            return None

    return str(wait_for(attempt, what=f"metrics on port {port}"))


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def finals(n: int) -> Any:
    from msgd.envelope import FINAL_STATES
    from msgd.store.models import Message

    return lambda: Message.objects.filter(state__in=FINAL_STATES).count() >= n


def configure(gateway: Gateway, smtp_port: int, bot: BotApi) -> None:
    from msgd.store.models import ChannelSettings

    op = seed.operator()
    seed.sms_gateway(op, gateway.url, params=f"login=best&psw={SMS_PASSWORD}&phones=%sms%&mes=%text%")
    ChannelSettings.objects.create(operator=op, channel="email", params={
        "host": "127.0.0.1", "port": smtp_port, "security": "none", "login": LOGIN,
        "extended_logging": True}, secrets={"password": PASSWORD})
    ChannelSettings.objects.create(operator=op, channel="telegram", params={"api_url": bot.url},
                                   secrets={"token": TOKEN})
    seed.template(channel="sms")
    seed.template(channel="email", subject="Баланс")
    seed.template(channel="telegram")


def test_delivery_logs_carry_the_message_context_and_no_secret(
    pipeline: Pipeline, gateway: Gateway, smtp: Any, api: BotApi, rabbit_url: str, namespace: str  # noqa: F811
) -> None:
    configure(gateway, smtp.port, api)
    pipeline.start(*STAGES, MSGD_LOG_LEVEL="DEBUG")
    events = [event(i, email=f"user{i}@example.net") for i in range(2)]
    for e in events:
        e["abonent"]["contacts"]["telegram_id"] = str(5000 + int(e["abonent"]["id"]))
    publish_with_pika(rabbit_url, namespace, events)
    wait_for(finals(6), what="6 messages final")
    from msgd.store.models import Message

    assert sorted(Message.objects.values_list("state", flat=True)) == ["sent"] * 6

    text = pipeline.logs_text()
    for secret in (SMS_PASSWORD, PASSWORD, TOKEN, TOKEN.split(":")[1]):
        assert secret not in text, f"a secret leaked into the logs: {secret[:4]}…"
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    about_messages = [ln for ln in lines if ln.get("message_id")]
    assert about_messages, "no log line names a message"
    for ln in about_messages:
        missing = [k for k in ("event_id", "message_id", "operator", "channel") if not ln.get(k)]
        assert not missing, f"log line {ln.get('event')!r} lacks {missing}"
    sent = [ln for ln in lines if ln.get("event") == "message sent"]
    assert sorted(ln["channel"] for ln in sent) == ["email", "email", "sms", "sms", "telegram", "telegram"]
    assert {ln["event_id"] for ln in sent} == {e["event_id"] for e in events}
    assert all(ln["operator"] == "best" for ln in sent)


@pytest.fixture
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    need(path is not None, "prometheus (Debian package prometheus: make system-deps)")
    assert path is not None
    return path


class Prometheus:
    def __init__(self, binary: str, targets: list[int], folder: Path) -> None:
        self.port = free_port()
        config = folder / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "msgd",
                                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in targets]}]}],
        }))
        self.log = (folder / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                data = json.loads(r.read())
        except OSError:
            return []
        return list(data["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def test_every_stage_serves_valid_metrics_and_prometheus_scrapes_them(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str, promtool: str,
    prometheus_bin: str, tmp_path: Path,
) -> None:
    op = seed.operator()
    seed.sms_gateway(op, gateway.url)
    seed.template(channel="sms")
    names = ("router", "renderer", "recorder", "sender:sms")
    ports = start_with_metrics(pipeline, names)
    prom = Prometheus(prometheus_bin, list(ports.values()), tmp_path)
    try:
        events = [event(i) for i in range(3)]
        publish_with_pika(rabbit_url, namespace, events, raw=[b"not json at all"])
        gateway.wait_count(3)
        wait_for(finals(3), what="3 messages final")

        texts = {name: scrape_when_up(port) for name, port in ports.items()}
        for name, text in texts.items():
            check = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True)
            assert check.returncode == 0, f"{name}: promtool check metrics:\n{check.stdout}{check.stderr}"
        assert sample(texts["router"], "msgd_events_received_total", type="low_balance") == 3
        assert sample(texts["router"], "msgd_events_routed_total", type="low_balance") == 3
        assert sample(texts["router"], "msgd_messages_parked_total", stage="router") == 1
        sms = texts["sender:sms"]
        assert sample(sms, "msgd_messages_total", channel="sms", state="sent") == 3
        assert sample(sms, "msgd_send_duration_seconds_count", channel="sms", gateway="127.0.0.1") == 3
        assert sample(sms, "msgd_send_attempts_total", channel="sms", gateway="127.0.0.1", outcome="ok") == 3
        assert sample(sms, "msgd_messages_in_flight", channel="sms") == 0
        # Queue depths are read from the broker and cached QUEUE_DEPTH_SECONDS per process: a
        # scrape made before the garbage was parked may still be served, so wait for a fresh one.
        parked_line = f'msgd_queue_messages{{queue="{namespace}.parking"}} 1.0'
        wait_for(lambda: parked_line in scrape(ports["sender:sms"]), timeout=30,
                 what="the sender's queue-depth gauge to show the parked message")
        assert f'msgd_queue_messages{{queue="{namespace}.send.sms.bulk"}}' in sms
        assert "msgd_broker_up 1.0" in sms

        expected = {'sum(msgd_messages_total{state="sent"})': 3,
                    'sum(msgd_events_received_total{type="low_balance"})': 3,
                    "sum(msgd_messages_parked_total)": 1,
                    'max(msgd_queue_messages{queue=~".*parking"})': 1,
                    'count(up{job="msgd"} == 1)': len(names)}
        wait_for(lambda: all(prom.value(q) == v for q, v in expected.items()), timeout=30,
                 what=f"Prometheus to scrape {expected}")
    finally:
        prom.stop()


def test_running_stages_count_render_failures_retries_quiet_delays_and_duplicates(
    pipeline: Pipeline, gateway: Gateway, rabbit_url: str, namespace: str, promtool: str,
) -> None:
    """Each counter goes up when its thing happens in a running stage: a template that
    cannot render (renderer), a 503 that is retried, a message held by quiet hours and
    an event billing published twice (SMS sender)."""
    from msgd.store.models import Message

    op = seed.operator()
    seed.sms_gateway(op, gateway.url)
    seed.template(channel="sms", body="msg %(contract_number)s")
    seed.template(event_type="blocked", channel="sms", body="Договор %(contract_numbr)s")  # misspelt
    night = seed.operator(code="night", timezone="Asia/Vladivostok")
    seed.sms_gateway(night, gateway.url)
    seed.template(owner=night, channel="sms", body="quiet %(contract_number)s")
    gateway.script = [(503, "busy, try later")]
    ports = start_with_metrics(pipeline, ("renderer", "sender:sms"), MSGD_RETRY_BASE_SECONDS="1")
    pipeline.start("router", "recorder")
    pipeline.wait_started()  # a slow start must not eat the quiet window
    seed.quiet_now(night, seconds_left=6)

    retried = event(1)
    publish_with_pika(rabbit_url, namespace, [retried])
    gateway.wait_count(1)  # the 503 went to this event's message
    twice, broken, quiet = event(2), event(3, etype="blocked"), event(4, operator="night")
    publish_with_pika(rabbit_url, namespace, [twice, twice, broken, quiet])
    from msgd.envelope import FINAL_STATES

    log = Message.objects.exclude(state="filtered")  # the night event's global template: "replaced by ..."
    for e in (retried, twice, broken, quiet):
        final = log.filter(event_id=e["event_id"], state__in=FINAL_STATES)
        wait_for(final.exists, timeout=40, what=f"event {e['event_id']} final")

    renderer = scrape_when_up(ports["renderer"])
    assert sample(renderer, "msgd_render_failures_total", channel="sms") == 1
    assert sample(renderer, "msgd_messages_total", channel="sms", state="failed") == 1

    def sender_counts() -> str | None:
        text = scrape(ports["sender:sms"])
        return text if sample(text, "msgd_duplicate_sends_prevented_total", channel="sms") >= 1 else None

    sms = str(wait_for(sender_counts, what="the duplicate publish counted"))
    assert sample(sms, "msgd_duplicate_sends_prevented_total", channel="sms") == 1
    assert sample(sms, "msgd_retries_total", channel="sms") == 1
    assert sample(sms, "msgd_retries_total", channel="sms", reason="server_error") == 1
    assert sample(sms, "msgd_quiet_hour_delays_total", channel="sms") >= 1
    assert sample(sms, "msgd_messages_total", channel="sms", state="sent") == 3
    for name, text in (("renderer", renderer), ("sender:sms", sms)):
        check = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, f"{name}: promtool check metrics:\n{check.stdout}{check.stderr}"

    # what the counters say happened, happened
    assert sorted(gateway.received()) == ["msg C1", "msg C1", "msg C2", "quiet C4"]
    states = {m.event_id: (m.state, m.attempts) for m in log.all()}
    assert len(states) == log.count() == 4, "one message per event, the one published twice included"
    assert states[retried["event_id"]] == ("sent", 2)
    assert states[twice["event_id"]] == ("sent", 1)
    assert states[quiet["event_id"]] == ("sent", 1)
    assert states[broken["event_id"]][0] == "failed"
