"""Delivery reports (issue 15, point 1) and feedback to billing (point 2) in the recorder, the DLR
endpoint and the dlr stage, on the store under test and the embedded broker; text encodings
(point 3) in the request an SMS gateway gets."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from msgd.envelope import loads
from msgd.settings import Settings
from tests.support import serve_http, stop_http
from tests.test_recorder import report

pytestmark = pytest.mark.store


def dlr(state: str, gid: str, sid: int | None = 7, **kw: Any) -> dict[str, Any]:
    from msgd.status import delivery_report

    return loads(delivery_report(state, settings_id=sid, operator_code="best", gateway="gw.test",
                                 gateway_message_id=gid, **kw).body)


def sent(mid: str, gid: str, sid: int = 7, **msg: Any) -> dict[str, Any]:
    from msgd.envelope import now_iso

    r = report(mid, "sent", 1, f"OK id={gid}", **msg)
    r.update(gateway_message_id=gid, settings_id=sid, at=now_iso())
    return r


@pytest.fixture
def stage(db: str) -> Any:
    from services.recorder.stage import RecorderStage

    return RecorderStage()


def delivered_count(gateway: str = "gw.test") -> float:
    """How many deliveries the latency histogram has seen for ``gateway`` in this process."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("msgd_delivery_latency_seconds_count", {"gateway": gateway}) or 0.0


def test_report_before_the_sent_record_is_kept_and_applied(stage: Any) -> None:
    from msgd.store.models import Attempt, Message, PendingReport

    mid = str(uuid.uuid4())
    counted = delivered_count()
    assert stage.record_dlr([dlr("delivered", "g-1", reason="DELIVRD")], []) == []
    assert PendingReport.objects.count() == 1 and not Message.objects.filter(id=mid).exists()
    stage.record([sent(mid, "g-1")])
    stage.record_dlr([], [sent(mid, "g-1")])
    m = Message.objects.get(id=mid)
    assert (m.state, m.settings_id) == ("delivered", 7) and m.dlr_at is not None
    assert "delivery report: delivered — DELIVRD" in m.reason
    assert PendingReport.objects.count() == 0
    assert sorted(Attempt.objects.filter(message=m).values_list("state", flat=True)) == ["delivered", "sent"]
    assert delivered_count() == counted + 1  # its time is before the sent record's: counted as 0 s


def test_delivery_latency_is_from_sent_and_never_below_zero() -> None:
    import datetime as dt

    from services.recorder.dlr import latency

    sent_at = dt.datetime(2026, 11, 27, 10, 0, 0, 700_000, tzinfo=dt.UTC)
    assert latency(sent_at, sent_at + dt.timedelta(seconds=42)) == 42.0
    # smsc.ru's `time` is whole seconds: a report of the same second reads as before the sent record
    assert latency(sent_at, sent_at.replace(microsecond=0)) == 0.0
    assert latency(None, sent_at) == 0.0


def test_report_twice_and_a_late_sent_change_nothing(stage: Any) -> None:
    from msgd.store.models import Attempt, Message

    mid = str(uuid.uuid4())
    stage.record([sent(mid, "g-2")])
    for _ in range(2):
        stage.record_dlr([dlr("undelivered", "g-2", reason="UNDELIV", fault="unknown", error="011")], [])
    stage.record([sent(mid, "g-2")])  # the sender's report again (a redelivered batch)
    stage.record_dlr([dlr("delivered", "g-2")], [])  # a later, different report: the first stays
    m = Message.objects.get(id=mid)
    assert (m.state, m.fault) == ("undelivered", "unknown")
    assert "UNDELIV (error 011)" in m.reason
    rows = list(Attempt.objects.filter(message=m).values_list("state", "reason"))
    assert [s for s, _ in rows].count("undelivered") == 1
    assert any(s == "delivered" and "not applied: the message is undelivered" in r for s, r in rows)


def test_report_for_another_slot_or_a_failed_message(stage: Any) -> None:
    from msgd.store.models import Message, PendingReport

    mid, failed = str(uuid.uuid4()), str(uuid.uuid4())
    stage.record([sent(mid, "g-3", sid=7)])
    stage.record_dlr([dlr("delivered", "g-3", sid=8)], [])  # the same id at another account
    assert Message.objects.get(id=mid).state == "sent"
    assert PendingReport.objects.filter(gateway_message_id="g-3", settings_id=8).count() == 1
    stage.record([{**report(failed, "failed", 1, "outcome unknown"), "gateway_message_id": "g-4", "settings_id": 7}])
    stage.record_dlr([dlr("delivered", "g-4")], [])
    assert Message.objects.get(id=failed).state == "failed"  # msgd's verdict stays; the report is history


def test_unknown_ids_expire(stage: Any) -> None:
    from django.utils import timezone

    from msgd.store.models import PendingReport
    from services.recorder import dlr as dlr_apply

    stage.record_dlr([dlr("delivered", "never-sent")], [])
    assert PendingReport.objects.count() == 1
    later = timezone.now() + __import__("datetime").timedelta(hours=49)
    dlr_apply.retry_pending([], later, expire_after=48 * 3600)
    assert PendingReport.objects.count() == 0


def test_dead_contacts_are_published_once_per_contact_and_cause(stage: Any) -> None:
    from msgd.store.models import Message

    first, second, other = (str(uuid.uuid4()) for _ in range(3))

    def failed(mid: str, to: str, cause: str = "") -> dict[str, Any]:
        r = report(mid, "failed", 1, "subscription is gone", channel="push", recipient=to, abonent_id="1319")
        r.update(fault="recipient", cause=cause)
        return r

    out = stage.record([failed(first, '{"endpoint":"https://push.test/a"}', "subscription-gone")])
    out += stage.record([failed(second, '{"endpoint":"https://push.test/a"}', "subscription-gone")])
    out += stage.record([failed(other, '{"endpoint":"https://push.test/b"}')])
    again = stage.record([failed(first, '{"endpoint":"https://push.test/a"}', "subscription-gone")])
    assert [o.exchange for o in out] == ["feedback", "feedback"]
    assert [o.route for o in out] == ["contact.invalid.push"] * 2
    body = json.loads(out[0].body)
    assert {k: body[k] for k in ("type", "operator", "subscriber_id", "channel", "fault", "cause", "message_id")} == {
        "type": "contact.invalid", "operator": "best", "subscriber_id": "1319", "channel": "push",
        "fault": "recipient", "cause": "subscription-gone", "message_id": first}
    assert json.loads(out[1].body)["cause"] == "subscription-invalid"  # the channel's default
    assert [json.loads(o.body)["id"] for o in again] == [body["id"]]  # the finder's report again: same id
    assert Message.objects.filter(state="failed").count() == 3


def test_undelivered_invalid_number_is_a_finding_and_final_states_go_to_opted_in_operators(stage: Any) -> None:
    from msgd.store.models import Operator

    Operator.objects.create(code="best", name="Best", feedback_messages=True)
    stage.cache.refresh(force=True)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    stage.record([sent(a, "g-5"), sent(b, "g-6", recipient="+79120000002")])
    out = stage.record_dlr([dlr("undelivered", "g-5", reason="invalid number", fault="recipient"),
                            dlr("delivered", "g-6")], [])
    routes = sorted(o.route for o in out)
    assert routes == ["contact.invalid.sms", "message.delivered", "message.undelivered"]
    failed = stage.record([report(str(uuid.uuid4()), "failed", 1, "HTTP 500", fault="transient-exhausted")])
    assert [o.route for o in failed] == ["message.failed"]


# -- the endpoint -------------------------------------------------------------------------------


@pytest.fixture
def slot(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from msgd.store.models import ChannelSettings, Operator

    monkeypatch.setenv("MSGD_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("MSGD_BROKER_URL", raising=False)
    op = Operator.objects.create(code="best", name="Best")
    yield lambda preset, **params: ChannelSettings.objects.create(
        operator=op, channel="sms", params={"preset": preset, **params},
        secrets={"login": "l", "password": "p"})


def queued(tmp_path: Path) -> list[dict[str, Any]]:
    if not (tmp_path / "broker.sqlite3").exists():
        return []
    db = sqlite3.connect(tmp_path / "broker.sqlite3")
    bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM messages WHERE queue = 'msgd.status'")]
    db.close()
    return bodies


CALLBACKS = [  # preset, method, content type, body or query, (id, state, fault), answer
    ("smsc", "POST", "form", {"id": "101", "phone": "79121234567", "status": "1", "time": "1764237600"},
     ("101", "delivered", ""), "OK"),
    ("smsc", "GET", "query", {"id": "102", "phone": "79121234567", "status": "20", "err": "1"},
     ("102", "undelivered", "recipient"), "OK"),
    ("smspilot", "POST", "form", {"id": "10000", "status": "2"}, ("10000", "delivered", ""), "OK"),
    ("digital_direct", "POST", "json", {"messageUuid": "063474ec", "status": "undelivered", "errorCode": 7060},
     ("063474ec", "undelivered", "transient-exhausted"), "OK"),
    ("jasmin", "POST", "form", {"id": "07033084", "message_status": "DELIVRD", "level": "2", "err": "000",
                                "donedate": "2611271000"}, ("07033084", "delivered", ""), "ACK/Jasmin"),
]


@pytest.mark.parametrize(("preset", "method", "kind", "fields", "expected", "answer"), CALLBACKS,
                         ids=[f"{c[0]}-{c[1]}" for c in CALLBACKS])
def test_each_gateway_callback_is_read_published_and_answered(
    slot: Any, tmp_path: Path, preset: str, method: str, kind: str, fields: dict[str, Any],
    expected: tuple[str, str, str], answer: str,
) -> None:
    from django.test import Client

    from msgd.web.dlr_keys import make_url

    s = slot(preset, sender_name="BEST")
    made = make_url(s.id, "http://msgd.test")
    path = made.url.removeprefix("http://msgd.test")
    client = Client()
    if kind == "json":
        resp = client.post(path, json.dumps(fields), content_type="application/json")
    elif method == "POST":
        resp = client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded")
    else:
        resp = client.get(path + "?" + urlencode(fields))
    assert (resp.status_code, resp.content.decode()) == (200, answer)
    (body,) = queued(tmp_path)
    assert (body["gateway_message_id"], body["state"], body["fault"]) == expected
    assert (body["settings_id"], body["operator_code"], body["via"]) == (s.id, "best", "callback")
    assert made.stored == (preset in ("jasmin", "digital_direct"))  # sent with each message


def test_wrong_or_rotated_secret_is_404_and_nothing_is_published(slot: Any, tmp_path: Path) -> None:
    from django.test import Client

    from msgd.web.dlr_keys import make_url

    s = slot("smsc")
    old = make_url(s.id, "http://t").url.removeprefix("http://t")
    new = make_url(s.id, "http://t").url.removeprefix("http://t")
    client = Client()
    form = urlencode({"id": "1", "status": "1"})
    ctype = "application/x-www-form-urlencoded"
    assert client.post(old, form, content_type=ctype).status_code == 404
    assert client.post(old.rsplit("/", 1)[0] + "/x" * 20, form, content_type=ctype).status_code == 404
    assert client.post(f"/api/v1/dlr/{s.id + 1}/{new.rsplit('/', 1)[1]}", form, content_type=ctype).status_code == 404
    assert client.post(new, "garbage", content_type=ctype).status_code == 400
    assert queued(tmp_path) == []
    assert client.post(new, form, content_type=ctype).status_code == 200


# -- the dlr stage ------------------------------------------------------------------------------


class SmscStatus(BaseHTTPRequestHandler):
    """smsc.ru's status.php: a comma list of ids and phones, fmt=3 JSON list."""

    statuses: dict[str, tuple[int, int]] = {}
    asked: list[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
        ids = [i for i in form["id"].split(",") if i]
        type(self).asked.append(ids)
        body = json.dumps([{"id": i, "phone": p, "status": self.statuses.get(i, (0, 0))[0],
                            "err": self.statuses.get(i, (0, 0))[1]}
                           for i, p in zip(ids, form["phone"].split(","), strict=False)]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_poller_asks_in_batches_applies_final_reports_and_gives_up_after_the_deadline(
    slot: Any, tmp_path: Path,
) -> None:
    import datetime as dt

    from django.utils import timezone

    from msgd.broker.embedded import EmbeddedBroker
    from msgd.store.models import DlrPoll, Message
    from services.dlr.stage import DlrPoller
    from services.recorder.stage import RecorderStage

    server = serve_http(SmscStatus)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/sys/status.php"
        s = slot("smsc", dlr_poll=True, status_url=url)
        settings = Settings(var_dir=tmp_path, dlr_poll_first_seconds=60, dlr_poll_hours=24)
        recorder = RecorderStage(settings)
        mids = [str(uuid.uuid4()) for _ in range(3)]
        recorder.record([sent(m, f"9{i}", sid=s.id) for i, m in enumerate(mids)])
        SmscStatus.statuses = {"90": (1, 0), "91": (22, 0)}  # 92: still on its way
        SmscStatus.asked = []
        broker = EmbeddedBroker(settings)
        poller = DlrPoller(settings, broker)
        now = timezone.now()
        assert poller.tick(now) == 0  # found, but not due before the first wait
        assert poller.tick(now + dt.timedelta(seconds=61)) == 3
        assert SmscStatus.asked == [["90", "91", "92"]]  # one request for the batch
        recorder.record_dlr(queued(tmp_path), [])
        states = dict(Message.objects.filter(id__in=mids).values_list("id", "state"))
        assert [states[uuid.UUID(m)] for m in mids] == ["delivered", "undelivered", "sent"]
        waiting = DlrPoll.objects.get(gateway_message_id="92")
        assert (waiting.polls, waiting.done) == (1, False)
        assert poller.tick(now + dt.timedelta(seconds=62)) == 0  # backoff: not yet
        assert poller.tick(now + dt.timedelta(hours=25)) == 1  # past the deadline: the last look
        broker.close()
        recorder.record_dlr([r for r in queued(tmp_path) if r["state"] == "none"], [])
        m = Message.objects.get(id=mids[2])
        assert (m.state, m.reason.startswith("no delivery report")) == ("sent", True)
        assert DlrPoll.objects.get(gateway_message_id="92").done
    finally:
        stop_http(server)


def test_the_poller_looks_at_least_as_often_as_its_first_wait(tmp_path: Path) -> None:
    from msgd.broker.embedded import EmbeddedBroker
    from services.dlr.stage import DlrPoller

    for first, idle in ((60.0, 5.0), (1.0, 1.0), (0.0, 0.2)):
        settings = Settings(var_dir=tmp_path, dlr_poll_first_seconds=first)
        broker = EmbeddedBroker(settings)
        poller = DlrPoller(settings, broker)
        assert poller.idle_seconds == idle
        poller.close()
        broker.close()


# -- text encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "expected"), [
    ("utf-8", "%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%20%E2%82%AC"),
    ("cp1251", "%CF%F0%E8%E2%E5%F2%20%88"),
    ("ucs2-hex", "041F04400438043204350442002020AC"),
])
def test_text_is_written_in_the_gateways_encoding(encoding: str, expected: str) -> None:
    from services.senders.sms.request import build_request

    req = build_request("post", "http://gw", "79121234567", "Привет €",
                        {"params": "to=%sms%&text=%text%", "encoding": encoding}, {})
    assert req.body == f"to=79121234567&text={expected}".encode()


def test_a_text_the_encoding_cannot_write_fails_before_any_request() -> None:
    from services.senders.base import ContentError
    from services.senders.sms.encoding import gsm7_bytes, gsm7_text
    from services.senders.sms.request import build_request

    with pytest.raises(ContentError, match="GSM 03.38"):
        build_request("post", "http://gw", "1", "Привет", {"params": "t=%text%", "encoding": "gsm7"}, {})
    with pytest.raises(ContentError, match="cp1251"):
        build_request("post", "http://gw", "1", "Hi 🙂", {"params": "t=%text_cp1251%"}, {})
    assert gsm7_bytes("A{€}") == bytes([0x41, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29])
    assert gsm7_text(gsm7_bytes("Hello @ 100% [ok]")) == "Hello @ 100% [ok]"


@pytest.mark.parametrize(("text", "coding", "hex_bytes"), [
    ("Balance 12.50", "0", b"Balance 12.50"),  # letters and digits: the same codes in GSM 03.38
    ("a@b_c$", "0", bytes([0x61, 0x00, 0x62, 0x11, 0x63, 0x02])),  # GSM codes, not ASCII's
    ("x{€}", "0", bytes([0x78, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29])),  # the extension table
    ("Ваш баланс", "8", "Ваш баланс".encode("utf-16-be")),
    ("Ok 🙂", "8", "Ok 🙂".encode("utf-16-be")),  # a surrogate pair, outside the BMP
    ("", "0", b""),
])
def test_smpp_placeholders_pick_gsm_or_ucs2_per_text(text: str, coding: str, hex_bytes: bytes) -> None:
    from services.senders.sms.encoding import gsm7_text, smpp_coding, text_placeholders

    got = text_placeholders(text, {"smpp_coding", "text_smpp"})
    assert got == {"smpp_coding": coding, "text_smpp": hex_bytes.hex().upper()}
    assert str(smpp_coding(text)) == coding
    data = bytes.fromhex(got["text_smpp"])
    assert (gsm7_text(data) if coding == "0" else data.decode("utf-16-be")) == text
    assert text_placeholders(text, {"text_utf8"}).keys() == {"text_utf8"}  # only what the string uses


@pytest.mark.parametrize(("text", "coding"), [("Ваш баланс", "8"), ("Your balance: 12.50", "0")])
def test_jasmin_preset_sends_hex_content_in_the_texts_coding_and_its_dlr_url(text: str, coding: str) -> None:
    from services.senders.sms.encoding import gsm7_text
    from services.senders.sms.presets import effective_settings
    from services.senders.sms.request import build_request

    params = effective_settings({"preset": "jasmin", "url": "http://jasmin:1401/send"})
    req = build_request("post", params["url"], "79121234567", text, params,
                        {"login": "u", "password": "p", "dlr_url": "http://msgd/api/v1/dlr/1/s"})
    form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}  # type: ignore[union-attr]
    data = bytes.fromhex(form["hex-content"])
    assert (data.decode("utf-16-be") if coding == "8" else gsm7_text(data)) == text
    assert (form["coding"], form["dlr"], form["dlr-url"], form["dlr-level"]) == (
        coding, "yes", "http://msgd/api/v1/dlr/1/s", "2")
    assert "content" not in form
    without = build_request("post", params["url"], "1", "x", params, {"login": "u", "password": "p"})
    assert "dlr=no" in without.body.decode() and "dlr-url" not in without.body.decode()  # type: ignore[union-attr]
