"""Delivery reports, feedback to billing and gateway balances through the whole pipeline (issue 15).

msgd's stages run as processes on RabbitMQ and PostgreSQL (router, renderer, sender:sms, recorder,
dlr and web) with three local gateways (tests/dlr_gateways.py), one operator each:

* ``cb``: smsc.ru calling back its status handler, the URL ``msgd dlr url`` made (pasted in the
  account): by POST and by GET, twice for a dead number, and once before answering the send;
* ``dd``: Digital Direct calling back the ``callbackUrl`` msgd sends with each message (JSON);
  its operator asks for every final state on the feedback exchange;
* ``poll``: smsc.ru that only answers ``status.php``, asked by the dlr stage, whose account query
  says the balance is below the slot's ``balance_alert_below``.

One set-up publishes every event and waits until the log shows every outcome; the tests then read
what each part shows: the log, the feedback exchange, the recorder's and the dlr stage's metrics,
the admin over HTTP and the alert rules (promtool).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from msgd import topology as topo
from tests import seed
from tests.conftest import TEST_DB, empty_store
from tests.dlr_counterparts import (
    BillingQueue,
    DigitalDirect,
    SmscRu,
    admin_page,
    answers,
    digital_direct_callback,
    smsc_callback,
)
from tests.support import (
    ROOT,
    Pipeline,
    StageProcess,
    delete_namespace,
    event,
    free_port,
    msgd,
    publish_with_pika,
    stage_env,
    wait_for,
)
from tests.test_gateway_balances import expected_annotations, rule_test
from tests.test_observability_e2e import sample, scrape, scrape_when_up

# make test's second pass (SQLite) runs the store's part of this in tests/test_dlr.py.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(TEST_DB == "sqlite", reason="the DLR round trip runs on PostgreSQL (make test's"
                                 " first pass); tests/test_dlr.py covers the store's part on both")]

DEADLINE_SECONDS = 5.0  # MSGD_DLR_POLL_HOURS, as seconds: how long the dlr stage asks
ADMIN, ADMIN_PASSWORD = "boss", "Dlr-e2e-Pa55"
# smsc.ru with callbacks
CB_DELIVERED, CB_DEAD, CB_EARLY = "79160000001", "79160000002", "79160000003"
# Digital Direct
DD_DELIVERED, DD_UNDELIVERED = "79170000001", "79170000002"
# smsc.ru asked by the dlr stage: status 1 delivered, 20/1 no such subscriber, 0 on the way (for ever)
POLL_DELIVERED, POLL_DEAD, POLL_SILENT = "79180000001", "79180000002", "79180000003"
LOW_BALANCE, ALERT_BELOW = 120.5, 500


@dataclass
class World:
    """What the set-up made and saw."""

    env: dict[str, str]
    ns: str
    billing: BillingQueue  # billing's queue on the feedback exchange
    slots: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    gateways: dict[str, Any] = field(default_factory=dict)
    early_reports: list[str] = field(default_factory=list)  # the answers to the callback before the send
    answers: list[str] = field(default_factory=list)  # the answers to the other callbacks


def _state(phone: str) -> str:
    from msgd.store.models import Message

    return ",".join(sorted(Message.objects.filter(recipient=f"+{phone}").values_list("state", flat=True)))


def _wait_states(pipeline: Pipeline, expected: dict[str, str], what: str, timeout: float = 45) -> None:
    try:
        wait_for(lambda: all(_state(p) == s for p, s in expected.items()), timeout=timeout, what=what)
    except AssertionError as exc:
        seen = {p: _state(p) for p in expected}
        raise AssertionError(f"{exc}: {seen}\n{pipeline.logs_text()[-4000:]}") from None


@pytest.fixture(scope="module")
def world(_configured_store: str, rabbit_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from django.db import connection

    from msgd.store.models import ChannelSettings, PendingReport

    tmp = tmp_path_factory.mktemp("dlr-e2e")
    ns = f"t{uuid.uuid4().hex[:10]}"
    env = stage_env(MSGD_BROKER_URL=rabbit_url, MSGD_NAMESPACE=ns, MSGD_DATABASE_URL=_configured_store,
                    MSGD_VAR_DIR=str(tmp / "var"), MSGD_DLR_POLL_FIRST_SECONDS="1", MSGD_DLR_POLL_MAX_SECONDS="2",
                    MSGD_DLR_POLL_HOURS=f"{DEADLINE_SECONDS / 3600:.6f}")
    w = World(env, ns, BillingQueue(rabbit_url, topo.feedback_exchange(ns), f"{ns}.billing-test"))
    empty_store()
    pipeline = Pipeline(env, tmp)
    with contextlib.ExitStack() as stack:
        cb_gw = SmscRu("best", "Cb-Pa55word", 9000.0, first_id=5001)
        poll_gw = SmscRu("north", "Poll-Pa55word", LOW_BALANCE, first_id=7001,
                         statuses={POLL_DELIVERED: (1, 0), POLL_DEAD: (20, 1)})
        dd_gw = DigitalDirect("ZGQ6a2V5LWZvci10ZXN0cw==", "BEST")
        w.gateways = {"cb": cb_gw, "dd": dd_gw, "poll": poll_gw}
        for gw in w.gateways.values():
            gw.start()
            stack.callback(gw.stop)
        stack.callback(delete_namespace, rabbit_url, ns)
        stack.callback(w.billing.delete)
        msgd("setup", env=env)  # at deployment: the exchanges exist before billing binds its queue
        w.billing.declare()

        seed.template(body="Баланс %(balance).2f руб.")
        sms = {"channel": "sms", "outbox": False}
        w.slots["cb"] = ChannelSettings.objects.create(
            operator=seed.operator("cb"), **sms, params={"preset": "smsc", "url": f"{cb_gw.root}/sys/send.php"},
            secrets={"login": cb_gw.login, "password": cb_gw.password})
        w.slots["dd"] = ChannelSettings.objects.create(
            operator=seed.operator("dd", feedback_messages=True), **sms,
            params={"preset": "digital_direct", "url": dd_gw.url, "sender_name": dd_gw.sender},
            secrets={"password": dd_gw.key})
        w.slots["poll"] = ChannelSettings.objects.create(
            operator=seed.operator("poll"), **sms,
            params={"preset": "smsc", "url": f"{poll_gw.root}/sys/send.php", "dlr_poll": True,
                    "status_url": f"{poll_gw.root}/sys/status.php", "balance_alert_below": ALERT_BELOW},
            secrets={"login": poll_gw.login, "password": poll_gw.password})
        w.ports = {"web": free_port(), "recorder": free_port(), "dlr": free_port()}
        base = f"http://127.0.0.1:{w.ports['web']}"
        web = StageProcess(["web"], {**env, "MSGD_WEB_BIND": f"127.0.0.1:{w.ports['web']}", "MSGD_WEB_WORKERS": "1",
                                     "MSGD_ADMIN_USER": ADMIN, "MSGD_ADMIN_PASSWORD": ADMIN_PASSWORD},
                           tmp / "web.log").start()
        stack.callback(web.stop)
        stack.callback(pipeline.stop)
        stack.callback(web.terminate)  # first: web and stages stop side by side
        pipeline.start("recorder", MSGD_METRICS_PORT=str(w.ports["recorder"]))
        pipeline.start("dlr", MSGD_METRICS_PORT=str(w.ports["dlr"]))  # the slots exist: its first look finds them
        pipeline.start("router", "renderer", "sender:sms")
        # While they start: the operator makes the delivery-report URLs (the sender reads DD's in its
        # settings a moment later; smsc.ru's is pasted into the gateway's account).
        with ThreadPoolExecutor(2) as pool:
            made = dict(zip(("cb", "dd"), pool.map(
                lambda name: msgd("dlr", "url", str(w.slots[name].id), "--base", base, env=env).stdout.splitlines(),
                ("cb", "dd")), strict=True))
        assert made["cb"][1].startswith("shown once") and made["dd"][1].startswith("kept as the slot's dlr_url")
        w.urls = {name: lines[0] for name, lines in made.items()}

        def report_first(gid: str, phone: str) -> None:
            """The gateway calls back before it answers the send, and answers once msgd holds the report."""
            if phone != CB_EARLY:
                return
            w.early_reports.append(smsc_callback(w.urls["cb"], gid, phone, 1))
            try:
                wait_for(lambda: PendingReport.objects.filter(gateway_message_id=gid).exists(), timeout=20,
                         what="the recorder to keep the report that came before the sent record")
            finally:
                connection.close()  # this server thread's own connection

        cb_gw.before_answer = report_first
        pipeline.wait_started()
        wait_for(lambda: answers(f"{base}/healthz"), timeout=60, what="msgd web answering")

        numbers = {"cb": [CB_DELIVERED, CB_DEAD, CB_DEAD, CB_EARLY], "dd": [DD_DELIVERED, DD_UNDELIVERED],
                   "poll": [POLL_DELIVERED, POLL_DEAD, POLL_SILENT]}
        events = [event(i, sms=f"+{phone}", operator=op) for i, (op, phone) in
                  enumerate((op, p) for op, phones in numbers.items() for p in phones)]
        publish_with_pika(rabbit_url, ns, events)
        _wait_states(pipeline, {CB_DELIVERED: "sent", CB_DEAD: "sent,sent", CB_EARLY: "delivered",
                                DD_DELIVERED: "sent", DD_UNDELIVERED: "sent"}, "the messages sent")

        # The network delivered: the gateways call back (smsc.ru twice for the dead number).
        (delivered,) = cb_gw.sent_to(CB_DELIVERED)
        w.answers.append(smsc_callback(w.urls["cb"], delivered.gid, delivered.phone, 1, method="POST"))
        for dead in cb_gw.sent_to(CB_DEAD):
            for method in ("POST", "GET"):
                w.answers.append(smsc_callback(w.urls["cb"], dead.gid, dead.phone, 22, method=method))
        (dd_ok,), (dd_not,) = dd_gw.sent_to(DD_DELIVERED), dd_gw.sent_to(DD_UNDELIVERED)
        w.answers.append(digital_direct_callback(dd_ok, "delivered"))
        w.answers.append(digital_direct_callback(dd_not, "undelivered", 7060))
        _wait_states(pipeline, {CB_DELIVERED: "delivered", CB_DEAD: "undelivered,undelivered",
                                DD_DELIVERED: "delivered", DD_UNDELIVERED: "undelivered",
                                POLL_DELIVERED: "delivered", POLL_DEAD: "undelivered"}, "the reports applied")
        wait_for(lambda: _polls_done(), timeout=DEADLINE_SECONDS + 20, what="the dlr stage to stop asking")
        yield w


def _polls_done() -> bool:
    from msgd.store.models import DlrPoll, Message

    silent = Message.objects.filter(recipient=f"+{POLL_SILENT}").first()
    return silent is not None and silent.reason.startswith("no delivery report") \
        and not DlrPoll.objects.filter(done=False).exists()


def _log(phone: str) -> list[Any]:
    from msgd.store.models import Message

    return list(Message.objects.filter(recipient=f"+{phone}").order_by("abonent_id"))


def _history(message: Any) -> list[str]:
    from msgd.store.models import Attempt

    return sorted(Attempt.objects.filter(message=message).values_list("state", flat=True))


# -- 1. callbacks --------------------------------------------------------------------------------------


def test_callbacks_end_messages_delivered_or_undelivered_once_whatever_the_order(world: World) -> None:
    cb, dd = world.gateways["cb"], world.gateways["dd"]
    assert world.answers == ["OK"] * len(world.answers) and world.early_reports == ["OK"]
    # One log row per message, and the gateway got each message once.
    (delivered,), dead, (early,) = _log(CB_DELIVERED), _log(CB_DEAD), _log(CB_EARLY)
    assert len(dead) == 2 and len(cb.accepted) == 4
    for m in (delivered, *dead, early):
        (accepted,) = [a for a in cb.accepted if a.gid == m.gateway_message_id]
        assert (accepted.phone, m.settings_id) == (m.recipient.lstrip("+"), world.slots["cb"].id)
        assert m.dlr_at is not None and m.dlr_at >= m.created_at.replace(microsecond=0)
    assert (delivered.state, delivered.fault, delivered.reason) == (
        "delivered", "", "delivery report: delivered — delivered (smsc.ru status 1)")
    for m in dead:  # reported twice (POST, then GET): applied once
        assert (m.state, m.fault) == ("undelivered", "recipient")
        assert m.reason == "delivery report: undelivered — invalid number (smsc.ru status 22)"
        assert _history(m) == ["sent", "undelivered"]
    # The report that came before the gateway answered the send waited for the sent record.
    assert (early.state, _history(early)) == ("delivered", ["delivered", "sent"])
    from msgd.store.models import PendingReport

    assert not PendingReport.objects.exists()

    # Digital Direct got the URL msgd dlr url kept with each message and called it back.
    (ok,), (not_ok,) = _log(DD_DELIVERED), _log(DD_UNDELIVERED)
    assert {a.body["callbackUrl"] for a in dd.accepted} == {world.urls["dd"]}
    assert (ok.state, ok.gateway_message_id, _history(ok)) == ("delivered", dd.sent_to(DD_DELIVERED)[0].gid,
                                                              ["delivered", "sent"])
    assert (not_ok.state, not_ok.fault) == ("undelivered", "transient-exhausted")
    assert "Digital Direct status undelivered, errorCode 7060" in not_ok.reason


# -- 2. polling ----------------------------------------------------------------------------------------


def test_the_dlr_stage_asks_until_a_final_answer_or_the_deadline(world: World) -> None:
    from msgd.store.models import DlrPoll

    poll = world.gateways["poll"]
    (ok,), (dead,), (silent,) = _log(POLL_DELIVERED), _log(POLL_DEAD), _log(POLL_SILENT)
    assert (ok.state, ok.reason) == ("delivered", "delivery report: delivered — delivered (smsc.ru status 1)")
    assert (dead.state, dead.fault) == ("undelivered", "recipient")
    assert dead.reason == ("delivery report: undelivered — cannot be delivered: the subscriber does not exist"
                           " (smsc.ru status 20/1)")
    # Past the deadline the message stays sent and says why; nobody asks again.
    assert silent.state == "sent" and silent.dlr_at is None
    assert re.fullmatch(r"no delivery report: the gateway had none [\d.]+ h after sending \(asked \d+ times\)",
                        silent.reason), silent.reason
    assert _history(silent) == ["none", "sent"]
    rows = {r.gateway_message_id: r for r in DlrPoll.objects.all()}
    assert set(rows) == {m.gateway_message_id for m in (ok, dead, silent)} and all(r.done for r in rows.values())
    # Asked once for what was final at the first look; the silent one again, 1 s after sending, then
    # every 2 s (MSGD_DLR_POLL_MAX_SECONDS), and a last time at the deadline.
    asked = [set(batch) for batch in poll.status_asked]
    assert 2 <= sum(silent.gateway_message_id in b for b in asked) <= 2 + DEADLINE_SECONDS / 2
    assert sum(ok.gateway_message_id in b for b in asked) == 1


# -- 3. feedback to billing ----------------------------------------------------------------------------


def test_the_feedback_exchange_carries_one_event_per_dead_contact(world: World) -> None:
    from jsonschema import Draft202012Validator

    from msgd.store.models import Finding

    schema = json.loads((ROOT / "schemas" / "feedback.v1.json").read_text())
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    got: list[tuple[str, dict[str, Any]]] = []
    billing = world.billing

    def four() -> bool:
        got.extend(billing.drain())
        return len(got) >= 4

    wait_for(four, what="the feedback events")
    for _, body in got:
        validator.validate(body)
    routes = sorted(route for route, _ in got)
    # two dead numbers: one reported twice for each of two messages, one found by polling; and the final
    # states of the operator that asked for them
    assert routes == ["contact.invalid.sms", "contact.invalid.sms", "message.delivered", "message.undelivered"]
    dead = {b["contact"]: b for r, b in got if r == "contact.invalid.sms"}
    assert set(dead) == {f"+{CB_DEAD}", f"+{POLL_DEAD}"}
    for contact, body in dead.items():
        (message,) = [m for m in _log(contact.lstrip("+")) if str(m.id) == body["message_id"]]
        assert {k: body[k] for k in ("type", "operator", "subscriber_id", "channel", "fault", "cause",
                                     "event_id")} == {
            "type": "contact.invalid", "operator": message.operator_code, "subscriber_id": message.abonent_id,
            "channel": "sms", "fault": "recipient", "cause": "number-invalid", "event_id": message.event_id}
        assert "smsc.ru status" in body["reason"]
    finals = {b["type"]: b for r, b in got if r.startswith("message.")}
    assert {b["operator"] for b in finals.values()} == {"dd"}
    assert finals["message.delivered"]["message_id"] == str(_log(DD_DELIVERED)[0].id)
    assert Finding.objects.count() == 2
    assert billing.drain() == []  # nothing came after


# -- 4. metrics ----------------------------------------------------------------------------------------


def test_the_recorder_counts_reports_by_state_and_the_delivery_latency(world: World) -> None:
    # delivered: smsc.ru's callback, the one before the sent record (kept, then applied), Digital
    # Direct's, the polled one; undelivered: the dead number twice and its two repeats, DD's, the
    # polled one; none: the silent one past the deadline. (outcome, state) -> count
    expected = {("applied", "delivered"): 4, ("pending", "delivered"): 1, ("applied", "undelivered"): 4,
                ("duplicate", "undelivered"): 2, ("applied", "none"): 1}

    def counted() -> dict[tuple[str, str], float]:
        from prometheus_client.parser import text_string_to_metric_families

        found: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(scrape_when_up(world.ports["recorder"])):
            for s in family.samples:
                if s.name == "msgd_dlr_reports_total" and s.value:
                    assert s.labels["gateway"] == "127.0.0.1"
                    key = (s.labels["outcome"], s.labels["state"])
                    found[key] = found.get(key, 0) + s.value
        return found

    try:  # the repeated callbacks are counted a moment after the state they repeat
        wait_for(lambda: counted() == expected, timeout=10, what="the delivery reports counted")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {counted()}") from None
    text = scrape(world.ports["recorder"])
    assert sample(text, "msgd_delivery_latency_seconds_count") == 4  # every delivered report
    assert sample(text, "msgd_delivery_latency_seconds_bucket", le="+Inf") == 4
    assert sample(text, "msgd_feedback_events_total", route="contact.invalid.sms") == 2


# -- 5. gateway balances -------------------------------------------------------------------------------


def test_a_balance_below_the_threshold_shows_in_the_metrics_the_admin_and_an_alert(
    world: World, promtool: str, tmp_path: Path,
) -> None:
    slot = world.slots["poll"]
    labels = {"channel_settings_id": str(slot.id), "operator": "poll", "gateway": "127.0.0.1"}

    def exported() -> str | None:
        text = scrape(world.ports["dlr"])
        return text if sample(text, "msgd_gateway_balance", **labels) else None

    text = wait_for(exported, what="the dlr stage to export the polled balance")
    assert sample(text, "msgd_gateway_balance", **labels) == LOW_BALANCE
    assert sample(text, "msgd_gateway_balance_alert_below", **labels) == ALERT_BELOW
    assert sample(text, "msgd_gateway_account_empty", **labels) == 0
    others = {"channel_settings_id": str(world.slots["cb"].id)}
    assert sample(text, "msgd_gateway_balance", **others) == 9000  # asked too; no threshold, no alert
    assert not sample(text, "msgd_gateway_balance_alert_below", **others)

    page = admin_page(f"http://127.0.0.1:{world.ports['web']}", ADMIN, ADMIN_PASSWORD, "/admin/msgd/channelsettings/")
    assert re.search(rf'class="msgd-balance-low"[^>]*>{LOW_BALANCE:g} RUB &lt; {ALERT_BELOW}<', page), page[-3000:]
    assert page.count("msgd-balance-low") == 1

    # deploy/prometheus/alerts.yml on exactly what the dlr stage exported: the low-balance alert fires
    # for the slot below its threshold, and only for it.
    from prometheus_client.parser import text_string_to_metric_families

    series = [{"series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}",
               "values": f"{s.value:g}x3"}
              for family in text_string_to_metric_families(text) for s in family.samples
              if s.name.startswith("msgd_gateway_")]
    rule_test(promtool, tmp_path, series, [
        {"eval_time": "1m", "alertname": "MsgdGatewayBalanceLow", "exp_alerts": [{
            "exp_labels": {**labels, "severity": "warning"},
            "exp_annotations": expected_annotations("MsgdGatewayBalanceLow", labels, f"{LOW_BALANCE:g}")}]},
        {"eval_time": "1m", "alertname": "MsgdGatewayAccountEmpty", "exp_alerts": []},
    ])
