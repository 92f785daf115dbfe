"""The sender stage in-process against a real local HTTP gateway: claims, retries, quiet hours."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from msgd.broker.base import Delivery, Outgoing
from msgd.settings import Settings
from msgd.stage import Received
from tests import seed
from tests.support import SEND_TIMEOUT_S, SLOWER_THAN_TIMEOUT_S, Gateway, opened

pytestmark = pytest.mark.store


def outbound(n: int = 1, attempt: int = 1, **kw: Any) -> dict[str, Any]:
    from msgd.envelope import message_id
    from services.senders.base import Outbound

    msg = Outbound(message_id=message_id(f"ev{n}", 1, "sms", "+79121234567"), event_id=f"ev{n}",
                   event_type="low_balance", operator_code="best", channel="sms", recipient="+79121234567",
                   body=f"Сообщение №{n} & <ok>", attempt=attempt, template_id=None)
    return dataclasses.replace(msg, **kw).to_wire()


def item(payload: dict[str, Any]) -> Received:
    return Received(Delivery(body=json.dumps(payload).encode(), queue="q", routing_key="send.sms.bulk",
                             headers={}), payload)


def states(out: list[Outgoing]) -> list[str]:
    return [json.loads(o.body)["state"] for o in out if o.route == "status"]


def resends(out: list[Outgoing]) -> list[tuple[int, float]]:
    return [(json.loads(o.body)["attempt"], o.delay) for o in out if o.route.startswith("send.")]


def make_stage(tmp_path: Path, **env: str) -> Any:
    from services.senders.stage import SenderStage

    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_RETRY_BASE_SECONDS": "10", **env})
    return opened(SenderStage(settings, "sms"))


def test_sends_and_reports_sent_with_gateway_text(db: str, gateway: Gateway, tmp_path: Path) -> None:
    gateway.default = (200, "OK - 1 SMS, ID - 777")
    seed.sms_gateway(seed.operator(), gateway.url)
    out = make_stage(tmp_path).handle([item(outbound(1)), item(outbound(2))])
    assert states(out) == ["sent", "sent"]
    assert sorted(gateway.received()) == ["Сообщение №1 & <ok>", "Сообщение №2 & <ok>"]
    report = json.loads(out[0].body)
    assert report["gateway_message_id"] == "777"


def test_redelivered_message_is_not_sent_twice(db: str, gateway: Gateway, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), gateway.url)
    stage = make_stage(tmp_path)
    stage.handle([item(outbound(1))])
    again = stage.handle([item(outbound(1)), item(outbound(1))])
    assert len(gateway.requests) == 1
    assert states(again) == ["sent"], "the recorded outcome is reported again, nothing is resent"


def test_transient_failure_is_retried_later_then_gives_up(db: str, gateway: Gateway, tmp_path: Path) -> None:
    gateway.default = (503, "busy")
    seed.sms_gateway(seed.operator(attempts=2), gateway.url)
    stage = make_stage(tmp_path)
    first = stage.handle([item(outbound(1))])
    assert states(first) == ["retrying"]
    [(attempt, delay)] = resends(first)
    assert attempt == 2 and 8 <= delay <= 12
    last = stage.handle([item(outbound(1, attempt=2))])
    assert states(last) == ["failed"] and resends(last) == []
    assert "gave up after 2 attempt(s)" in json.loads(last[0].body)["reason"]
    assert len(gateway.requests) == 2


def test_permanent_failure_is_not_retried(db: str, gateway: Gateway, tmp_path: Path) -> None:
    gateway.default = (401, "bad login")
    seed.sms_gateway(seed.operator(attempts=5), gateway.url)
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["failed"] and resends(out) == []
    assert "permanent" in json.loads(out[0].body)["reason"]


def test_quiet_hours_delay_to_the_end_of_the_window(db: str, gateway: Gateway, tmp_path: Path) -> None:
    op = seed.operator()
    seed.sms_gateway(op, gateway.url)
    seed.quiet_now(op, seconds_left=600)
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["delayed"]
    [(attempt, delay)] = resends(out)
    assert attempt == 1 and 590 <= delay <= 601
    assert gateway.requests == []


def test_global_switch_records_suppressed(db: str, gateway: Gateway, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), gateway.url)
    out = make_stage(tmp_path, MSGD_ENABLED="0").handle([item(outbound(1))])
    assert states(out) == ["suppressed"]
    assert gateway.requests == []


def test_outbox_writes_a_readable_file(db: str, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), "https://gateway.invalid/", outbox=True)
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["sent"]
    [path] = list((tmp_path / "outbox").iterdir())
    assert "Сообщение №1 & <ok>" in path.read_text(encoding="utf-8")


def test_claim_left_by_a_dead_sender_ends_as_unknown_outcome(db: str, gateway: Gateway, tmp_path: Path) -> None:
    from msgd.store.models import Claim
    from services.senders import claims

    seed.sms_gateway(seed.operator(), gateway.url)
    msg = outbound(1)
    owner, _ = claims.claim([(msg["message_id"], 1)])
    assert claims.progress(owner, [], [msg["message_id"]]) == {msg["message_id"]}  # started, then died
    stage = make_stage(tmp_path, MSGD_CLAIM_LEASE_SECONDS="60")
    recheck = stage.handle([item(msg)])
    assert states(recheck) == [] and resends(recheck)[0][1] > 50, "within the lease: look again later"
    Claim.objects.filter(message_id=msg["message_id"]).update(
        updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120))
    out = stage.handle([item(msg)])
    assert states(out) == ["failed"]
    assert "outcome unknown" in json.loads(out[0].body)["reason"]
    assert gateway.requests == []


def test_message_reserved_by_a_dead_sender_and_never_started_is_sent_once(
    db: str, gateway: Gateway, tmp_path: Path
) -> None:
    from services.senders import claims

    seed.sms_gateway(seed.operator(), gateway.url)
    msg = outbound(1)
    claims.claim([(msg["message_id"], 1)])  # a sender reserved it in its batch and died before the request
    stage = make_stage(tmp_path, MSGD_CLAIM_LEASE_SECONDS="60")
    assert states(stage.handle([item(msg)])) == ["sent"], "a never started message waits for no lease"
    assert states(stage.handle([item(msg)])) == ["sent"]
    assert len(gateway.requests) == 1


def test_a_recorded_retry_whose_next_attempt_was_lost_is_published_again(
    db: str, gateway: Gateway, tmp_path: Path
) -> None:
    """The sender wrote "retry" and died before publishing attempt 2: the redelivered attempt 1
    publishes attempt 2 (and does not send attempt 1 again)."""
    from services.senders import claims

    seed.sms_gateway(seed.operator(), gateway.url)
    msg = outbound(1)
    owner, _ = claims.claim([(msg["message_id"], 1)])
    claims.progress(owner, [], [msg["message_id"]])
    claims.finish([claims.Finish(msg["message_id"], claims.RETRY, "retrying", "HTTP 503")])
    out = make_stage(tmp_path).handle([item(msg)])
    assert [attempt for attempt, _ in resends(out)] == [2] and gateway.requests == []
    sent = make_stage(tmp_path).handle([item(outbound(1, attempt=2))] * 2)
    assert states(sent) == ["sent"] and len(gateway.requests) == 1


def test_unconfigured_channel_fails_with_a_plain_reason(db: str, tmp_path: Path) -> None:
    seed.operator()
    out = make_stage(tmp_path).handle([item(outbound(1, message_id=str(uuid.uuid4())))])
    assert states(out) == ["failed"]
    assert "has no sms settings" in json.loads(out[0].body)["reason"]


def test_transient_failure_fails_over_to_the_second_gateway(db: str, gateway: Gateway, tmp_path: Path) -> None:
    from msgd.store.models import ChannelSettings

    backup = Gateway().start()
    try:
        gateway.default = (503, "down")
        op = seed.operator()
        seed.sms_gateway(op, gateway.url)
        ChannelSettings.objects.create(operator=op, channel="sms", position=2,
                                       params={"url": backup.url, "request_type": "post",
                                               "params": "phones=%sms%&mes=%text%"})
        out = make_stage(tmp_path).handle([item(outbound(1))])
        assert states(out) == ["sent"]
        report = json.loads(out[0].body)
        assert "via fallback gateway #2" in report["reason"] and report["details"]["gateway"] == 2
        assert len(gateway.requests) == 1 and backup.received() == ["Сообщение №1 & <ok>"]
    finally:
        backup.stop()


def test_permanent_failure_does_not_try_the_second_gateway(db: str, gateway: Gateway, tmp_path: Path) -> None:
    from msgd.store.models import ChannelSettings

    gateway.default = (400, "invalid number")
    op = seed.operator()
    seed.sms_gateway(op, gateway.url)
    ChannelSettings.objects.create(operator=op, channel="sms", position=2, params={"url": "http://127.0.0.1:9/"})
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["failed"]


def test_finishing_nothing_opens_no_transaction(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.senders import claims

    def no_transaction() -> None:
        raise AssertionError("finish([]) opened a transaction")

    monkeypatch.setattr(claims.transaction, "atomic", no_transaction)
    claims.finish([])


# -- a request that may have been delivered (issue 10, point 5) ------------------------------------


def test_a_gateway_slower_than_the_timeout_gets_the_message_once_by_default(
    db: str, gateway: Gateway, tmp_path: Path
) -> None:
    gateway.delay = SLOWER_THAN_TIMEOUT_S
    seed.sms_gateway(seed.operator(attempts=3), gateway.url, timeout=SEND_TIMEOUT_S)
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["failed"] and resends(out) == []
    reason = json.loads(out[0].body)["reason"]
    assert reason.startswith("outcome unknown: SMS gateway 127.0.0.1:")
    assert f"did not answer within {SEND_TIMEOUT_S:g} s after the request was sent — it may have been delivered" in reason
    assert "not sent again so the subscriber does not get it twice (on_timeout: unknown)" in reason
    assert len(gateway.requests) == 1


def test_on_timeout_retry_sends_again_and_says_the_risk(db: str, gateway: Gateway, tmp_path: Path) -> None:
    gateway.delay = SLOWER_THAN_TIMEOUT_S
    seed.sms_gateway(seed.operator(attempts=3), gateway.url, timeout=SEND_TIMEOUT_S, on_timeout="retry")
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["retrying"] and [a for a, _ in resends(out)] == [2]
    assert "(on_timeout: retry — the subscriber may get it twice)" in json.loads(out[-1].body)["reason"]


def test_a_gateway_that_drops_repeats_of_the_message_id_is_retried_safely(
    db: str, gateway: Gateway, tmp_path: Path
) -> None:
    gateway.delay = SLOWER_THAN_TIMEOUT_S
    seed.sms_gateway(seed.operator(attempts=3), gateway.url, timeout=SEND_TIMEOUT_S, dedupes_message_id=True,
                     params="id=%message_id%&phones=%sms%&mes=%text%")
    msg = outbound(1)
    out = make_stage(tmp_path).handle([item(msg)])
    assert states(out) == ["retrying"], "on_timeout is unknown, but the gateway drops a repeat"
    assert "retried safely: the gateway drops a repeat of this message id" in json.loads(out[-1].body)["reason"]
    assert gateway.received("id") == [msg["message_id"]]


def test_a_connection_never_made_is_retried(db: str, tmp_path: Path) -> None:
    from tests.support import free_port

    seed.sms_gateway(seed.operator(attempts=3), f"http://127.0.0.1:{free_port()}/send")
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["retrying"], "nothing reached the gateway: a retry cannot duplicate"


def test_an_unusable_on_timeout_fails_before_any_request(db: str, gateway: Gateway, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), gateway.url, on_timeout="sometimes")
    out = make_stage(tmp_path).handle([item(outbound(1))])
    assert states(out) == ["failed"] and gateway.requests == []
    assert "on_timeout: 'sometimes' is not one of unknown or retry" in json.loads(out[0].body)["reason"]


# -- limits that protect the operator's money (issue 10, point 6) ----------------------------------


def test_a_runaway_text_fails_as_content_before_any_request(db: str, gateway: Gateway, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), gateway.url)
    out = make_stage(tmp_path).handle([item(outbound(1, body="Я" * 500_000))])
    assert states(out) == ["failed"] and gateway.requests == [] and resends(out) == []
    reason = json.loads(out[0].body)["reason"]
    assert reason.startswith("the text takes 7,463 SMS parts (500,000 characters, UCS-2), more than max_segments 10")


def test_max_segments_is_the_operators_choice(db: str, gateway: Gateway, tmp_path: Path) -> None:
    seed.sms_gateway(seed.operator(), gateway.url, max_segments=2)
    out = make_stage(tmp_path).handle([item(outbound(1, body="Я" * 134)), item(outbound(2, body="Я" * 135))])
    by_id = {json.loads(o.body)["message_id"]: json.loads(o.body) for o in out}
    assert by_id[outbound(1)["message_id"]]["state"] == "sent"
    assert "takes 3 SMS parts" in by_id[outbound(2)["message_id"]]["reason"]
    assert len(gateway.requests) == 1


def test_a_store_outage_mid_batch_keeps_what_was_sent_and_the_retry_sends_the_rest_once(
    db: str, gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from services.senders import claims

    seed.sms_gateway(seed.operator(), gateway.url)
    stage = make_stage(tmp_path, MSGD_SENDER_CONCURRENCY="1")
    real, calls = claims.progress, []

    def flaky(*args: Any) -> set[str]:
        calls.append(args)
        if len(calls) == 2:  # writing the first outcome with the second start: the store is gone
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(claims, "progress", flaky)
    batch = [item(outbound(n)) for n in (1, 2, 3)]
    with pytest.raises(OperationalError):
        stage.handle(batch)  # an outage: the broker retries the whole batch
    assert len(gateway.requests) == 1
    monkeypatch.setattr(claims, "progress", real)
    again = stage.handle(batch)
    assert states(again) == ["sent", "sent", "sent"]
    assert sorted(gateway.received()) == sorted(outbound(n)["body"] for n in (1, 2, 3)), "each sent exactly once"


@pytest.mark.parametrize(("channel", "params", "recipient", "body", "words"), [
    ("sms", {}, "+79121234567", "x" * 2000, "more than max_segments 10"),  # 14 parts of 153
    ("sms", {"max_segments": 2}, "+79121234567", "x" * 400, "more than max_segments 2"),
    ("sms", {"encoding": "gsm7"}, "+79121234567", "Баланс 12,50 руб.", "cannot write"),
    ("telegram", {}, "12345", "слово " * 4000, "more than max_parts 5"),
    ("telegram", {}, "12345", " \n ", "the message is empty"),
    ("email", {"max_bytes": 2000}, "a@example.net", "Текст письма. " * 200, "more than max_bytes 2,000"),
])
def test_the_outbox_fails_what_a_real_send_fails_for_its_content(db: str, tmp_path: Path, channel: str,
                                                                 params: dict[str, Any], recipient: str,
                                                                 body: str, words: str) -> None:
    """`make run` wrote a 200,000-character SMS to the outbox as sent; a gateway slot fails it as
    content before any request (max_segments, max_parts, max_bytes, the text's encoding)."""
    from msgd.envelope import message_id
    from msgd.store.models import ChannelSettings
    from services.senders.stage import SenderStage

    ChannelSettings.objects.create(operator=seed.operator(), channel=channel, outbox=True, params=params)
    msg = outbound(1, channel=channel, recipient=recipient, body=body,
                   message_id=message_id("ev1", 1, channel, recipient))
    settings = Settings.from_env({"MSGD_VAR_DIR": str(tmp_path)})
    out = SenderStage(settings, channel).handle([item(msg)])
    [report] = [json.loads(o.body) for o in out if o.route == "status"]
    assert (report["state"], report["fault"]) == ("failed", "content"), report
    assert words in report["reason"], report["reason"]
    assert not (tmp_path / "outbox").exists() or list((tmp_path / "outbox").iterdir()) == []
    within = outbound(2, channel=channel, recipient=recipient, body="Balance 12.50 RUB",
                      message_id=message_id("ev2", 1, channel, recipient))
    assert states(SenderStage(settings, channel).handle([item(within)])) == ["sent"]  # a text within it goes
