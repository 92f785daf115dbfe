"""The operations kit: alert rules and scrape config pass promtool, the dashboard and the
alerts only use metrics msgd exports, RabbitMQ definitions match what ``msgd setup`` declares."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.support import ROOT, promtool_rules_pass

DEPLOY = ROOT / "deploy"
METRIC_RE = re.compile(r"\b(msgd_[a-z0-9_]+)")


def exported_metrics() -> set[str]:
    """Every sample name msgd can export (counters with _total, histograms with their series)."""
    from prometheus_client import REGISTRY

    from msgd import metrics  # noqa: F401 - registers the metrics
    from services.senders.sms.accounts import METRIC_NAMES

    names = {"msgd_queue_messages", "msgd_broker_up", *METRIC_NAMES}  # QueueDepthCollector, AccountCollector
    for family in REGISTRY.collect():
        if family.name.startswith("msgd_"):
            names.add(family.name)
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [])
            names.update(family.name + s for s in suffixes)
    return names


def test_alert_rules_and_scrape_config_pass_promtool(promtool: str) -> None:
    for args in (["check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                 ["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")]):
        r = subprocess.run([promtool, *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_parked_alert_fires(promtool: str, tmp_path: Path) -> None:
    """promtool's rule unit test: a parked message raises MsgdMessagesParked after 5 minutes."""
    promtool_rules_pass(promtool, tmp_path, DEPLOY / "prometheus" / "alerts.yml", [
        {"series": 'msgd_messages_parked_total{stage="router",type="low_balance"}', "values": "0 1 1 1 1 1 1 1"},
        {"series": 'msgd_queue_messages{queue="msgd.parking"}', "values": "0 1 1 1 1 1 1 1"},
    ], [
        {"eval_time": "2m", "alertname": "MsgdMessagesParked", "exp_alerts": []},
        {"eval_time": "7m", "alertname": "MsgdMessagesParked", "exp_alerts": [{
            "exp_labels": {"severity": "warning"},
            "exp_annotations": {
                "summary": "msgd parked messages",
                "description": "Messages are in the parking queue. Read the reason (msgd parking"
                               " list), fix it, then msgd parking replay.",
            }}]},
    ])


def test_backlog_alert_counts_packs_on_render_and_send_queues(promtool: str, tmp_path: Path) -> None:
    """A growing backlog raises MsgdBacklogGrowing after 10 minutes: over 1,000 events in a
    router queue, or over 20 packs in a send queue or status batches in the recorder's queue
    (each holds up to 100 messages); a steady or small one does not."""
    def ramp(start: int, step: int) -> str:
        return " ".join(str(start + step * i) for i in range(30))

    promtool_rules_pass(promtool, tmp_path, DEPLOY / "prometheus" / "alerts.yml", [
        {"series": 'msgd_queue_messages{queue="msgd.router.bulk"}', "values": ramp(1000, 10)},
        {"series": 'msgd_queue_messages{queue="msgd.send.sms.bulk"}', "values": ramp(15, 1)},
        {"series": 'msgd_queue_messages{queue="msgd.render.bulk"}', "values": ramp(5000, 0)},
        {"series": 'msgd_queue_messages{queue="msgd.send.email.bulk"}', "values": " ".join(str(i % 3) for i in range(30))},
        {"series": 'msgd_queue_messages{queue="msgd.status"}', "values": ramp(15, 1)},
    ], [
        {"eval_time": "25m", "alertname": "MsgdBacklogGrowing", "exp_alerts": [
            {"exp_labels": {"severity": "warning", "queue": q},
             "exp_annotations": {
                 "summary": f"msgd queue {q} backlog keeps growing ({rate})",
                 "description": f"Scale the stage that consumes {q} (docs/operations.md, Scaling senders)"
                                " or check its log and msgd doctor."}}
            for q, rate in (("msgd.router.bulk", "166.7m/s"), ("msgd.send.sms.bulk", "16.67m/s"),
                            ("msgd.status", "16.67m/s"))]},
    ])


def test_dashboard_loads_and_uses_only_exported_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "msgd.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    known = exported_metrics()
    used = {m for e in exprs for m in METRIC_RE.findall(e)}
    assert used and used <= known, f"unknown metrics in the dashboard: {used - known}"
    # every metric family msgd exports is on the dashboard
    families = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
    assert {"msgd_messages_total", "msgd_queue_messages", "msgd_send_duration_seconds",
            "msgd_retries_total", "msgd_messages_parked_total"} <= families


def test_alerts_use_only_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in METRIC_RE.findall(e)}
    assert used and used <= exported_metrics(), used - exported_metrics()


def test_rabbitmq_definitions_match_msgd_setup() -> None:
    from msgd import topology as topo
    from msgd.broker.amqp import AmqpBroker
    from msgd.settings import Settings
    from services.senders.registry import live_channels

    defs = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    args = AmqpBroker(Settings(broker_url="amqp://localhost//"))._queue_args()
    queues = {q["name"]: q["arguments"] for q in defs["queues"]}
    expected = [*topo.router_queues("msgd"), *(topo.queue_for_route("msgd", r)
                                               for r in topo.internal_routes(live_channels()))]
    for name in expected:  # same arguments, or RabbitMQ refuses msgd setup (PRECONDITION_FAILED)
        assert queues.get(name) == args, name
    assert queues["msgd.parking"] == {"x-queue-type": "quorum"}
    assert {v["name"] for v in defs["vhosts"]} == {"msgd"}
    # "queues", not "quorum_queues": RabbitMQ before 3.12 refuses the whole import for that
    # (tests/test_cluster_failover.py loads the file into the installed RabbitMQ).
    assert {p["apply-to"] for p in defs["policies"]} == {"queues"}
    tx = {b["routing_key"] for b in defs["bindings"] if b["destination"] == "msgd.router.tx"}
    assert tx == set(Settings().transactional_types)


def test_compose_and_systemd_run_every_stage() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("rabbitmq", "postgres", "prometheus", "grafana", "router", "renderer", "recorder", "dlr",
                 "sender-sms", "sender-email", "sender-telegram", "sender-push", "web"):
        assert name in services, name
    assert services["sender-sms"]["deploy"]["replicas"] >= 2
    units = {p.name for p in (DEPLOY / "systemd").glob("msgd-*.service")}
    assert units == {"msgd-router.service", "msgd-renderer.service", "msgd-recorder.service", "msgd-dlr.service",
                     "msgd-sender@.service", "msgd-web.service"}
    target = (DEPLOY / "systemd" / "msgd.target").read_text()
    assert all(u in target for u in units - {"msgd-sender@.service"}), "msgd.target starts every stage"
    for unit in units:
        assert "ExecStart=" in (DEPLOY / "systemd" / unit).read_text()


def test_sender_unit_takes_the_channel_from_the_instance_name() -> None:
    unit = (DEPLOY / "systemd" / "msgd-sender@.service").read_text()
    line = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    # what systemd runs for msgd-sender@sms-2: %% -> %, $$ -> $, %i -> the instance
    command = line.removeprefix("ExecStart=").replace("%i", "sms-2").replace("%%", "%").replace("$$", "$")
    shell = command.replace("exec /opt/msgd/.venv/bin/msgd run sender --channel", "echo")
    out = subprocess.run(["/bin/sh", "-c", shell.split("-c ", 1)[1].split("'")[1], "sms-2"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "sms"
