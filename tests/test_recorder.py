"""The recorder merges status reports idempotently, in any order."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from msgd.broker.base import Delivery
from msgd.stage import Received

pytestmark = pytest.mark.store


def report(mid: str, state: str, attempt: int = 0, reason: str = "", **msg: Any) -> dict[str, Any]:
    base = {"event_id": "ev1", "event_type": "low_balance", "operator_code": "best", "channel": "sms",
            "recipient": "+79121234567", "body": "Баланс -12.50"}
    base.update(msg)
    return {"v": 1, "kind": "status", "message_id": mid, "state": state, "reason": reason,
            "attempt": attempt, "at": "2026-11-27T10:00:00+00:00", "gateway_message_id": "",
            "seconds": None, "message": base}


def received(payload: Any) -> Received:
    return Received(Delivery(body=json.dumps(payload).encode(), queue="q", routing_key="status", headers={}),
                    payload)


def test_states_merge_in_any_order_and_final_state_sticks(db: str) -> None:
    from msgd.store.models import Attempt, Message
    from services.recorder.stage import RecorderStage

    mid = str(uuid.uuid4())
    stage = RecorderStage()
    stage.record([report(mid, "sent", 2, "OK id=5"), report(mid, "queued")])
    stage.record([report(mid, "retrying", 1, "HTTP 503")])
    stage.record([report(mid, "sent", 2, "OK id=5")])  # duplicate report
    m = Message.objects.get(id=mid)
    assert (m.state, m.reason, m.attempts, m.body) == ("sent", "OK id=5", 2, "Баланс -12.50")
    assert m.finished_at is not None
    history = list(Attempt.objects.filter(message=m).values_list("number", "state"))
    assert sorted(history) == [(1, "retrying"), (2, "sent")]


def test_invalid_reports_are_parked_not_recorded(db: str) -> None:
    from msgd.store.models import Message
    from services.recorder.stage import RecorderStage

    out = RecorderStage().handle([
        received({"kind": "status", "state": "sent", "message_id": "nope"}),
        received({"kind": "other"}),
        received(report(str(uuid.uuid4()), "teleported")),
    ])
    assert [o.exchange for o in out] == ["parking"] * 3
    assert "not a UUID" in out[0].headers["x-msgd-reason"]
    assert Message.objects.count() == 0


def test_report_for_a_deleted_template_is_recorded_without_it(db: str) -> None:
    from msgd.store.models import Message
    from services.recorder.stage import RecorderStage
    from tests import seed

    gone = seed.template()
    gone_id = gone.id
    gone.delete()
    mid = str(uuid.uuid4())
    RecorderStage().record([report(mid, "sent", 1, template_id=gone_id)])
    m = Message.objects.get(id=mid)
    assert (m.state, m.template_id) == ("sent", None)


def test_status_batch_records_good_reports_and_parks_only_the_bad_one(db: str) -> None:
    from msgd.store.models import Message
    from services.recorder.stage import RecorderStage

    good, queued_first = str(uuid.uuid4()), str(uuid.uuid4())
    batch = {"v": 1, "kind": "status-batch", "reports": [
        report(good, "queued"), report(good, "sent", 1, "OK"),
        {"kind": "status", "state": "sent", "message_id": "broken"},
        report(queued_first, "retrying", 1, "503"), report(queued_first, "queued"),
    ]}
    out = RecorderStage().handle([received(batch)])
    assert len(out) == 1 and out[0].exchange == "parking"
    assert json.loads(out[0].body)["message_id"] == "broken"
    states = dict(Message.objects.values_list("id", "state"))
    assert states == {uuid.UUID(good): "sent", uuid.UUID(queued_first): "retrying"}


def test_stage_middleware_sends_a_batch_of_reports_as_one_message() -> None:
    from msgd.broker.base import Outgoing
    from msgd.stage import batch_statuses

    out = batch_statuses([Outgoing(route="status", body=b'{"a":1}'), Outgoing(route="send.sms.bulk", body=b"{}"),
                          Outgoing(route="status", body=b'{"b":2}')])
    assert [o.route for o in out] == ["send.sms.bulk", "status"]
    assert json.loads(out[1].body) == {"v": 1, "kind": "status-batch", "reports": [{"a": 1}, {"b": 2}]}


def test_channel_details_are_kept_on_the_message(db: str) -> None:
    from msgd.store.models import Message
    from services.recorder.stage import RecorderStage

    mid = str(uuid.uuid4())
    sent = report(mid, "sent", 1, "OK")
    sent["details"] = {"segments": 2, "gateway": 2}
    RecorderStage().record([report(mid, "queued"), sent])
    RecorderStage().record([report(mid, "sent", 1, "OK")])  # a repeated report without details
    assert Message.objects.get(id=mid).details == {"segments": 2, "gateway": 2}


def test_an_unknown_event_id_is_filled_in_within_a_batch_as_across_batches(db: str) -> None:
    """'?' (the event id was not known when the report was made) counts as empty, in a batch
    merged in memory exactly as in the stored row."""
    from msgd.store.models import Message
    from services.recorder.stage import RecorderStage

    in_one, in_two = str(uuid.uuid4()), str(uuid.uuid4())
    RecorderStage().record([report(in_one, "sent", 1, "OK", event_id="?"), report(in_one, "sent", 1, "OK")])
    RecorderStage().record([report(in_two, "sent", 1, "OK", event_id="?")])
    RecorderStage().record([report(in_two, "sent", 1, "OK")])
    stored = dict(Message.objects.values_list("id", "event_id"))
    assert stored == {uuid.UUID(in_one): "ev1", uuid.UUID(in_two): "ev1"}


def test_the_recorder_ranks_states_as_the_envelope_does() -> None:
    from msgd.envelope import FINAL_STATES, PASSING_STATES, STATE_RANK
    from services.recorder import stage

    assert set(STATE_RANK) == set(FINAL_STATES) | set(PASSING_STATES)
    for state, rank in STATE_RANK.items():
        if rank < max(STATE_RANK.values()):
            assert f"WHEN '{state}' THEN {rank}" in stage._rank("m.state")
