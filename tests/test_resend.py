"""Resend of failed messages from msgd/resend.py, the admin, the API and `msgd resend`: the same
rendered message as a new one, linked, sent once (issue 13 point 4). On the embedded broker:
the outbound messages are read from the sender's queue."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgd import topology as topo
from msgd.settings import Settings
from tests import seed
from tests import test_web_api as api_tests
from tests.test_staff_access import client_for, message, user

embedded = api_tests.embedded


def outbound(settings: Settings, channel: str = "sms") -> list[dict[str, Any]]:
    from msgd.broker.embedded import EmbeddedBroker

    b = EmbeddedBroker(settings)
    try:
        return [json.loads(d.body) for q in topo.sender_queues(settings.namespace, channel) for d in b.messages(q)]
    finally:
        b.close()


@pytest.fixture
def best(db: str, embedded: Settings) -> Any:
    return seed.operator("best")


def test_a_resend_is_the_same_message_anew_linked_and_once(best: Any, embedded: Settings) -> None:
    from msgd.resend import resend, resend_id
    from msgd.store.models import Message

    orig = message(channel="email", recipient="abonent@example.net", subject="Баланс", body="Текст",
                   html="<p>Текст</p>", sender="noc@best.example", lane="tx", reason="SMTP 535: bad login")
    chosen, ids = resend(embedded, [orig], by="boss")
    assert ids == [resend_id(orig.id, 1)] and not chosen.skipped
    new = Message.objects.get(pk=ids[0])
    assert (new.resend_of_id, new.state, new.recipient, new.body, new.html) == (
        orig.id, "queued", orig.recipient, "Текст", "<p>Текст</p>")
    (first,) = new.history.all()
    assert first.reason == f"sent again by boss: resend 1 of message {orig.id}"
    (wire,) = outbound(embedded, "email")
    assert {k: wire[k] for k in ("message_id", "recipient", "subject", "body", "html", "sender", "lane", "attempt")} == {
        "message_id": ids[0], "recipient": "abonent@example.net", "subject": "Баланс", "body": "Текст",
        "html": "<p>Текст</p>", "sender": "noc@best.example", "lane": "tx", "attempt": 1}
    # asked again (a second click, the original still failed): nothing new
    again, more = resend(embedded, [orig], by="boss")
    assert more == [] and "sent again already" in again.skipped[0][1]
    assert len(outbound(embedded, "email")) == 1
    # the resend failed too: the next one is number 2, still linked to the original
    Message.objects.filter(pk=ids[0]).update(state="failed")
    _plan, third = resend(embedded, [Message.objects.get(pk=ids[0])], by="boss")
    assert third == [resend_id(orig.id, 2)]
    assert Message.objects.get(pk=third[0]).resend_of_id == orig.id


def test_what_is_not_sent_again_says_why(best: Any, embedded: Settings) -> None:
    from msgd.resend import plan

    sent, unrendered = message(state="sent"), message(body="", html="")
    legacy = message(channel="whatsapp")
    failed = message()
    chosen = plan([sent, unrendered, legacy, failed, failed])
    assert chosen.ready == [failed]
    reasons = [why for _m, why in chosen.skipped]
    assert reasons == ["it is sent: only failed or suppressed messages are sent again",
                       "it was never rendered: fix the template, then have billing send the event again",
                       "msgd cannot send on channel 'whatsapp'",
                       "another message of the same chain is sent again"]
    assert chosen.summary().startswith("1 to send again; 4 skipped: ")


def test_a_corrected_contact(best: Any, embedded: Settings) -> None:
    from msgd.resend import ResendError, resend

    a, b = message(), message()
    with pytest.raises(ResendError, match="one message at a time"):
        resend(embedded, [a, b], by="boss", recipient="+79120000000")
    with pytest.raises(ResendError, match="not an e-mail address"):
        resend(embedded, [message(channel="email", recipient="x@y.example")], by="boss", recipient="nope")
    with pytest.raises(ResendError, match="cannot be typed in"):
        resend(embedded, [message(channel="push", recipient='{"endpoint": "https://fcm.example/x"}')], by="boss",
               recipient="x")
    _plan, (new_id,) = resend(embedded, [a], by="boss", recipient=" +79120000000 ")
    (wire,) = outbound(embedded)
    assert (wire["message_id"], wire["recipient"]) == (new_id, "+79120000000")


def test_a_broker_that_does_not_confirm_records_nothing(best: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from msgd.resend import resend
    from msgd.store.models import Message

    monkeypatch.setenv("MSGD_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//")
    orig = message()
    with pytest.raises(Exception):  # noqa: B017 - whatever the transport raises: nothing recorded
        resend(Settings.from_env(), [orig], by="boss")
    assert not Message.objects.filter(resend_of=orig).exists()


# -- the admin ------------------------------------------------------------------------------------
def test_admin_action_on_a_filter_and_the_button_of_one(best: Any, embedded: Settings) -> None:
    from msgd.store.models import Message

    failed = [message(reason="balance is empty") for _ in range(3)]
    message(state="sent")
    c = client_for(user("clerk", "operator staff"))
    url = "/admin/msgd/message/?state__exact=failed"
    form = {"action": "resend_selected", "_selected_action": [str(failed[0].id)], "select_across": "1", "index": "0"}
    page = c.post(url, form).content.decode()
    assert "3 messages will be sent again" in page and 'id="resend-confirm"' in page
    assert outbound(embedded) == []  # the page only says what would happen
    done = c.post(url, {**form, "confirm": "yes"}, follow=True).content.decode()
    assert "3 message(s) sent again." in done
    assert len(outbound(embedded)) == 3
    assert Message.objects.filter(resend_of__in=failed).count() == 3
    detail = c.get(f"/admin/msgd/message/{failed[0].id}/change/").content.decode()
    assert "Sent again as" in detail and 'id="resend-link"' in detail
    # one message, to a corrected number, from its own page
    other = message()
    resp = c.post(f"/admin/tools/messages/{other.id}/resend/", {"confirm": "yes", "recipient": "+79125550000"})
    new = Message.objects.get(resend_of=other)
    assert resp["Location"] == f"/admin/msgd/message/{new.id}/change/" and new.recipient == "+79125550000"
    helpdesk = client_for(user("desk", "helpdesk"))
    assert "resend_selected" not in helpdesk.get("/admin/msgd/message/").content.decode()


# -- the API ---------------------------------------------------------------------------------------
def test_api_resend_one_and_by_filter(best: Any, embedded: Settings) -> None:
    from tests.test_api_scopes import post, token_client

    c = token_client(("resend",))
    one = message()
    resp = post(c, f"/api/v1/messages/{one.id}/resend", {"recipient": "+79125550000"})
    assert resp.status_code == 202, resp.content
    (row,) = resp.json()["resent"]
    assert row["original"] == str(one.id)
    again = post(c, f"/api/v1/messages/{one.id}/resend", {})
    assert again.status_code == 200 and "sent again already" in again.json()["skipped"][0]["reason"]
    more = [message(channel="sms") for _ in range(2)]
    refused = post(c, "/api/v1/resend", {"state": "failed"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "(body)"
    dry = post(c, "/api/v1/resend", {"operator": "best", "dry_run": True}).json()
    assert dry["dry_run"] and {r["original"] for r in dry["resent"]} == {str(m.id) for m in more}
    done = post(c, "/api/v1/resend", {"operator": "best", "since": "2000-01-01"})
    assert done.status_code == 202 and len(done.json()["resent"]) == 2
    assert len(outbound(embedded)) == 3


# -- the command line --------------------------------------------------------------------------------
def test_msgd_resend_by_filter(best: Any, embedded: Settings, db: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from msgd.cli import main

    monkeypatch.setenv("MSGD_DATABASE_URL", db)
    gateway_dry = [message(operator="best", fault="gateway") for _ in range(2)]
    message(state="sent")
    wrong_number = message(operator="best", fault="recipient")
    assert main(["resend", "--state", "failed"]) == 2  # never every failed message by accident
    assert "choose the messages" in capsys.readouterr().err
    assert main(["resend", "--since", "1h", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("3 to send again")
    assert outbound(embedded) == []
    assert main(["resend", "--state", "failed", "--fault", "gateway", "--since", "00:00"]) == 0  # the issue's
    out = capsys.readouterr().out
    assert all(f"sent again: {m.id} -> " in out for m in gateway_dry) and out.strip().endswith("2 sent again")
    assert str(wrong_number.id) not in out
    assert main(["resend", "--fault", "gateway", "--operator", "best", "--since", "00:00"]) == 0
    assert "0 sent again; 2 skipped: 2 × it was sent again already (that one is queued)" in capsys.readouterr().out
    assert len(outbound(embedded)) == 2
