"""Every failure carries a fault class (issue 11, point 1): recipient, gateway, content,
transient-exhausted or unknown, from the sender stage and the renderer through the recorder to
the message log, `msgd log`, the admin, the HTTP API and Prometheus.

The stages run in-process against a real local HTTP gateway and the store under test; the CLI
runs as a process; the alert rule runs in promtool.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from msgd.settings import Settings
from tests import seed
from tests.support import (
    ROOT,
    SEND_TIMEOUT_S,
    SLOWER_THAN_TIMEOUT_S,
    Gateway,
    event,
    msgd,
    opened,
    stage_env,
)
from tests.test_sender_stage import item, outbound

pytestmark = pytest.mark.store


def sender_stage(tmp_path: Path, **env: str) -> Any:
    from services.senders.stage import SenderStage

    return opened(SenderStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_RETRY_BASE_SECONDS": "10",
                                                 "MSGD_CLAIM_LEASE_SECONDS": "60", **env}), "sms"))


def reports(out: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(o.body) for o in out if o.route == "status"]


def record(found: list[dict[str, Any]]) -> None:
    from services.recorder.stage import RecorderStage

    RecorderStage().record(found)


def logged(message_id: str) -> Any:
    from msgd.store.models import Message

    return Message.objects.get(id=message_id)


@pytest.mark.parametrize(
    ("case", "fault", "words"),
    [
        ("operator gone", "gateway", "is no longer configured"),
        ("no settings", "gateway", "has no sms settings"),
        ("unusable setting", "gateway", "on_timeout: 'sometimes' is not one of"),
        ("access refused", "gateway", "refused access (HTTP 401"),
        ("invalid number", "recipient", "invalid phone number '12345'"),
        ("runaway text", "content", "more than max_segments 10"),
        ("gateway down", "transient-exhausted", "gave up after 2 attempt(s)"),
        ("gateway silent", "unknown", "outcome unknown"),
    ],
)
def test_each_failure_reaches_the_log_with_its_fault_class(
    case: str, fault: str, words: str, db: str, gateway: Gateway, tmp_path: Path
) -> None:
    op = seed.operator(attempts=2)
    msg = outbound(1)
    if case == "operator gone":
        msg = outbound(1, operator_code="gone")
    elif case == "unusable setting":
        seed.sms_gateway(op, gateway.url, on_timeout="sometimes")
    elif case == "access refused":
        gateway.default = (401, "bad login")
        seed.sms_gateway(op, gateway.url)
    elif case == "invalid number":
        seed.sms_gateway(op, gateway.url)
        msg = outbound(1, recipient="12345")
    elif case == "runaway text":
        seed.sms_gateway(op, gateway.url)
        msg = outbound(1, body="Я" * 5000)
    elif case == "gateway down":
        gateway.default = (503, "Service Unavailable")
        seed.sms_gateway(op, gateway.url)
        first = reports(sender_stage(tmp_path).handle([item(msg)]))
        assert [(r["state"], r["fault"]) for r in first] == [("retrying", "")]
        msg = outbound(1, attempt=2)  # the last of the operator's two attempts
    elif case == "gateway silent":
        gateway.delay = SLOWER_THAN_TIMEOUT_S
        seed.sms_gateway(op, gateway.url, timeout=SEND_TIMEOUT_S)
    found = reports(sender_stage(tmp_path).handle([item(msg)]))
    assert [r["state"] for r in found] == ["failed"]
    assert found[0]["fault"] == fault
    record(found)
    row = logged(msg["message_id"])
    assert (row.state, row.fault) == ("failed", fault) and words in row.reason


def test_a_redelivered_message_reports_the_recorded_fault_again(db: str, gateway: Gateway, tmp_path: Path) -> None:
    gateway.default = (401, "bad login")
    seed.sms_gateway(seed.operator(), gateway.url)
    stage = sender_stage(tmp_path)
    first = reports(stage.handle([item(outbound(1))]))
    again = reports(stage.handle([item(outbound(1))]))
    assert [(r["state"], r["fault"]) for r in first + again] == [("failed", "gateway")] * 2
    assert len(gateway.requests) == 1


def test_a_message_in_flight_when_its_sender_died_is_unknown(db: str, gateway: Gateway, tmp_path: Path) -> None:
    import datetime as dt

    from msgd.store.models import Claim
    from services.senders import claims

    seed.sms_gateway(seed.operator(), gateway.url)
    msg = outbound(1)
    owner, _ = claims.claim([(msg["message_id"], 1)])
    claims.progress(owner, [], [msg["message_id"]])
    Claim.objects.filter(message_id=msg["message_id"]).update(
        updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120))
    stage = sender_stage(tmp_path)
    found = reports(stage.handle([item(msg)])) + reports(stage.handle([item(msg)]))
    assert [(r["state"], r["fault"]) for r in found] == [("failed", "unknown")] * 2
    assert gateway.requests == []


def test_an_outbox_that_cannot_be_written_is_retried_then_the_operators_to_fix(db: str, tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the outbox directory should be")
    seed.sms_gateway(seed.operator(attempts=2), "https://gateway.invalid/", outbox=True)
    stage = sender_stage(tmp_path)
    first = stage.handle([item(outbound(1))])
    assert [r["state"] for r in reports(first)] == ["retrying"]
    last = reports(stage.handle([item(outbound(1, attempt=2))]))
    assert [(r["state"], r["fault"]) for r in last] == [("failed", "gateway")]
    assert "cannot write the message to the outbox" in last[0]["reason"]


def test_a_template_that_cannot_render_is_a_content_fault(db: str, tmp_path: Path) -> None:
    from services.renderer.stage import RendererStage

    seed.operator()
    template = seed.template(body="Договор %(contract_numbr)s")
    stage = RendererStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_CONFIG_REFRESH_SECONDS": "0"}))
    found = reports(stage.render_job({"event": event(1), "channel": "sms", "template_id": template.id,
                                      "lane": "bulk"}))
    assert [(r["state"], r["fault"]) for r in found] == [("failed", "content")]
    assert found[0]["reason"].startswith("render error:")
    gone = reports(stage.render_job({"event": event(2), "channel": "sms", "template_id": 999_999, "lane": "bulk"}))
    assert [(r["state"], r["fault"]) for r in gone] == [("failed", "content")]


def test_failures_are_counted_by_channel_gateway_and_fault(db: str, gateway: Gateway, tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    gateway.default = (200, '{"error":{"code":"211","description":"Invalid phone"}}')
    seed.sms_gateway(seed.operator(), gateway.url, reply_format="smspilot")

    def count(fault: str, host: str = "127.0.0.1") -> float:
        labels = {"channel": "sms", "gateway": host, "fault": fault}
        return REGISTRY.get_sample_value("msgd_message_failures_total", labels) or 0.0

    before = {f: count(f) for f in ("recipient", "gateway")}
    stage = sender_stage(tmp_path)
    stage.handle([item(outbound(1)), item(outbound(2))])
    assert count("recipient") - before["recipient"] == 2
    assert count("gateway") == before["gateway"], "every fault class of a gateway is exported from 0"
    none_before = count("gateway", "none")
    stage.handle([item(outbound(3, operator_code="gone"))])
    assert count("gateway", "none") - none_before == 1


# -- the recorder ------------------------------------------------------------------------------


def test_the_recorder_keeps_the_fault_of_the_final_state(db: str) -> None:
    from msgd.envelope import message_id
    from msgd.status import status

    mid = message_id("ev-r", 1, "sms", "+79121234567")
    msg = outbound(1, message_id=mid)

    def report(state: str, **kw: Any) -> dict[str, Any]:
        return dict(json.loads(status(mid, state, message=msg, attempt=1, **kw).body))

    failed = report("failed", reason="bad login", fault="gateway")
    record([failed, report("retrying", reason="late")])  # out of order in one batch
    assert logged(mid).fault == "gateway"
    record([report("queued")])  # and in a later one
    assert (logged(mid).state, logged(mid).fault) == ("failed", "gateway")
    later = message_id("ev-r1", 1, "sms", "+79121234567")
    record([{**report("retrying", reason="503"), "message_id": later}])
    assert logged(later).fault == ""
    record([{**report("failed", reason="gave up", fault="transient-exhausted"), "message_id": later}])
    assert (logged(later).state, logged(later).fault) == ("failed", "transient-exhausted")
    older = {k: v for k, v in failed.items() if k != "fault"}  # a sender from before fault classes
    mid2 = message_id("ev-r2", 1, "sms", "+79121234567")
    record([{**older, "message_id": mid2}, {**report("sent"), "message_id": message_id("ev-r3", 1, "sms", "x")}])
    assert logged(mid2).fault == "unknown"
    assert logged(message_id("ev-r3", 1, "sms", "x")).fault == ""


def test_failures_logged_before_fault_classes_become_unknown(db: str) -> None:
    import importlib

    from django.apps import apps

    from msgd.store.models import Message

    migration = importlib.import_module("msgd.store.migrations.0003_fault_class")
    rows = seeded_log()
    Message.objects.update(fault="")
    migration.failed_before_are_unknown(apps, None)
    assert {m.id: m.fault for m in Message.objects.all()} == {
        rows["gateway"]: "unknown", rows["recipient"]: "unknown", rows["sent"]: ""}


# -- where people read it ---------------------------------------------------------------------


def seeded_log() -> dict[str, Any]:
    """Two failed messages (gateway, recipient) and a sent one, written by the recorder."""
    from msgd.envelope import message_id
    from msgd.status import status

    ids = {}
    for n, (key, state, fault) in enumerate((("gateway", "failed", "gateway"), ("recipient", "failed", "recipient"),
                                             ("sent", "sent", ""))):
        mid = message_id(f"ev-log-{n}", 1, "sms", f"+7912123456{n}")
        msg = outbound(n, message_id=mid, event_id=f"ev-log-{n}", recipient=f"+7912123456{n}")
        record([json.loads(status(mid, state, message=msg, attempt=1, reason=f"{key} reason", fault=fault).body)])
        ids[key] = logged(mid).id
    return ids


def test_the_api_shows_and_filters_the_fault_class(db: str) -> None:
    from django.test import Client

    from msgd.web.models import ApiToken

    rows = seeded_log()
    _token, key = ApiToken.create("fault-test")
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    everything = client.get("/api/v1/messages").json()["results"]
    assert {r["id"]: r["fault"] for r in everything} == {
        str(rows["gateway"]): "gateway", str(rows["recipient"]): "recipient", str(rows["sent"]): ""}
    only = client.get("/api/v1/messages", {"fault": "gateway"}).json()
    assert [r["id"] for r in only["results"]] == [str(rows["gateway"])] and only["count"] == 1
    assert client.get(f"/api/v1/messages/{rows['recipient']}").json()["fault"] == "recipient"
    for bad in ("subscriber", ""):
        answer = client.get("/api/v1/messages", {"fault": bad})
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["field"] == "fault"


def test_the_openapi_document_names_the_fault_classes() -> None:
    from msgd.envelope import FAULTS

    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    assert spec["components"]["schemas"]["Fault"]["enum"] == list(FAULTS)
    params = {p["name"] for p in spec["paths"]["/api/v1/messages"]["get"]["parameters"]}
    assert "fault" in params and "fault" in spec["components"]["schemas"]["Message"]["properties"]


def test_msgd_log_shows_and_filters_the_fault_class(db: str, tmp_path: Path) -> None:
    seeded_log()
    env = stage_env(MSGD_DATABASE_URL=db, MSGD_VAR_DIR=str(tmp_path / "var"))
    lines = msgd("log", "--fault", "gateway", env=env).stdout.splitlines()
    assert len(lines) == 1 and " failed      gateway " in lines[0] and "gateway reason" in lines[0]
    every = msgd("log", env=env).stdout
    assert " failed      recipient " in every and " sent        - " in every
    rows = json.loads(msgd("log", "--json", "--fault", "recipient", env=env).stdout)
    assert [(r["state"], r["fault"]) for r in rows] == [("failed", "recipient")]
    refused = msgd("log", "--fault", "nobody", env=env, check=False)
    assert refused.returncode == 2 and "invalid choice: 'nobody'" in refused.stderr


def test_the_admin_message_log_shows_and_filters_the_fault_class(db: str) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    rows = seeded_log()
    get_user_model().objects.filter(username="fault-admin").delete()
    get_user_model().objects.create_superuser("fault-admin", "a@example.net", "pw-for-tests-2")
    staff = Client()
    assert staff.login(username="fault-admin", password="pw-for-tests-2")
    page = staff.get("/admin/msgd/message/").content.decode()
    assert "fault class" in page.lower() and "transient-exhausted" in page  # the column and the filter's choices
    gateway_only = staff.get("/admin/msgd/message/", {"fault__exact": "gateway"}).content.decode()
    assert "gateway reason" in gateway_only and "recipient reason" not in gateway_only
    assert str(rows["gateway"]) in gateway_only


# -- the alert ----------------------------------------------------------------------------------


def test_gateway_faults_fire_an_alert_and_other_faults_do_not(promtool: str, tmp_path: Path) -> None:
    """promtool's rule unit test: one gateway fault raises MsgdGatewayFaults for that channel and
    gateway; recipient faults, however many, do not."""
    import shutil

    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    series = 'msgd_message_failures_total{channel="sms",gateway="smsc.ru",fault="%s"}'
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": series % "gateway", "values": "0 0 0 1 1 1 1 1 1 1"},
                {"series": series % "recipient", "values": "0 5 10 15 20 25 30 35 40 45"},
                {"series": 'msgd_message_failures_total{channel="email",gateway="smtp.example",fault="gateway"}',
                 "values": "0 0 0 0 0 0 0 0 0 0"},
            ],
            "alert_rule_test": [
                {"eval_time": "2m", "alertname": "MsgdGatewayFaults", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "MsgdGatewayFaults", "exp_alerts": [{
                    "exp_labels": {"severity": "critical", "channel": "sms", "gateway": "smsc.ru"},
                    "exp_annotations": {
                        "summary": "sms messages via smsc.ru fail for a reason the operator must fix",
                        "description": "Credentials, the gateway account's balance, the sender name, an IP"
                                       " allow-list or the channel settings are wrong; subscribers are not getting"
                                       " their messages. Read the reasons with msgd log --state failed --fault"
                                       " gateway and fix the account or the settings.",
                    }}]},
            ],
        }],
    }))
    r = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
