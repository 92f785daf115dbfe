"""Legacy channel names (Agent, Winpop, WhatsApp) in manual sends: accepted, and the
message ends as "unsupported channel" in the message log with no attempt and no retry.

The router and the recorder run in-process on the store under test; the end-to-end
version (stages as processes on RabbitMQ) is in tests/test_channels_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from msgd.broker.base import Delivery, Outgoing
from msgd.settings import Settings
from msgd.stage import Received
from tests import seed
from tests.support import event

pytestmark = pytest.mark.store

ADMIN = "admin@best.example"


def received(payload: dict[str, Any]) -> Received:
    return Received(Delivery(body=json.dumps(payload).encode(), queue="msgd.router.tx",
                             routing_key=str(payload.get("type")), headers={}), payload)


def route_and_record(tmp_path: Path, e: dict[str, Any]) -> list[Outgoing]:
    """The router's output for ``e``; its status reports are recorded in the message log."""
    from services.recorder.stage import RecorderStage
    from services.router.stage import RouterStage

    out = list(RouterStage(Settings.from_env({"MSGD_VAR_DIR": str(tmp_path)})).handle([received(e)]))
    RecorderStage().handle([received(json.loads(o.body)) for o in out if o.route == "status"])
    return out


def assert_unsupported_without_attempts(out: list[Outgoing], e: dict[str, Any], channel: str) -> None:
    from msgd.store.models import Attempt, Message

    assert [o.route for o in out] == ["status"], "nothing is rendered or sent for a legacy channel"
    (m,) = Message.objects.filter(event_id=e["event_id"])
    assert (m.channel, m.state, m.attempts) == (channel, "unsupported", 0)
    assert m.reason.startswith(f"unsupported channel {channel!r}: a legacy channel"), m.reason
    assert not Attempt.objects.filter(message=m).exists(), "never tried, never retried"


@pytest.mark.parametrize(("method", "channel"), [("winpop", "winpop"), ("WhatsApp", "whatsapp"), ("Agent", "agent")])
def test_manual_send_event_naming_a_legacy_method_ends_unsupported(
    db: str, tmp_path: Path, method: str, channel: str,
) -> None:
    seed.operator()
    t = seed.template(event_type="manual", channel="sms", body="%(text)s")
    manual = event(1, etype="manual", data={"text": "Плановые работы"},
                   manual={"template_id": t.id, "channel": method, "admin_email": ADMIN})
    assert_unsupported_without_attempts(route_and_record(tmp_path, manual), manual, channel)


@pytest.mark.parametrize("method", ["winpop", "whatsapp"])
def test_manual_send_from_the_api_accepts_a_legacy_method(db: str, tmp_path: Path, method: str) -> None:
    """The manual send of the HTTP API and the admin form (both build the event with
    ``build_manual_event``) with a legacy method: accepted, and it ends unsupported."""
    from msgd.web.api import build_manual_event
    from msgd.web.api_http import Invalid

    seed.operator()
    t = seed.template(event_type="manual", channel="sms", body="%(text)s")
    try:
        manual = build_manual_event({
            "operator": "best", "abonent": {"id": 1319, "contacts": {"sms": "+79121234567"}},
            "template_id": t.id, "channel": method, "text": "Плановые работы", "admin_email": ADMIN})
    except Invalid as exc:
        pytest.fail(f"the manual send with channel {method!r} was refused: {exc.errors}")
    assert manual["manual"]["channel"] == method
    assert_unsupported_without_attempts(route_and_record(tmp_path, manual), manual, method)
