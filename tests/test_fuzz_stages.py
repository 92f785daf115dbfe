"""Property tests (hypothesis): every stage, through the batch handler the broker calls, takes
random, huge and deeply nested input without raising, stalling or growing its cost faster
than the input.  Each message gets a generous time bound (a blow-up takes minutes); every
router input ends as output or as a parked copy with its reason."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgd.broker.base import Delivery, Outgoing
from msgd.settings import Settings
from msgd.stage import batch_handler
from tests import seed
from tests.support import event
from tests.test_linear_time import time_bound

pytestmark = pytest.mark.store

PER_MESSAGE_SECONDS = 10  # a megabyte takes well under a second; a quadratic stage takes minutes
FUZZ = settings(max_examples=30, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


# Values chosen to hurt: long runs that backtracking patterns choke on, secrets to mask,
# nesting at and past the limit, thousands of items, numbers JSON cannot hold in a float.
HUGE = [
    "Я" * 500_000, "a" * 900_000, "psw=" * 200_000, "://u:" + "p" * 500_000, " " * 500_000,
    "%(name)s" * 50_000, "{{ abonent.name }}" * 20_000, "{%" * 100_000, "<b>" * 100_000,
    nested(30), nested(40), [1] * 6000, ["+79121234567"] * 4000, {f"k{i}": i for i in range(6000)},
    [{"endpoint": "https://push.example/" + "x" * 1000, "keys": {"p256dh": "k", "auth": "a"}}] * 300,
    10 ** 300, -(2 ** 80), 1e308, "2026-11-27T10:00:00." + "1" * 400_000 + "+03:00",
]

leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
          | st.text(max_size=30) | st.sampled_from(["", "+79121234567", "a@b.c", "best", "sms", "email",
                                                    "low_balance", "manual", "2026-11-27T10:00:00+03:00"]))
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
any_value = values | st.sampled_from(HUGE)

EVENT_PLACES = [
    ("event_id",), ("type",), ("occurred_at",), ("operator",), ("operator", "code"), ("abonent",),
    ("abonent", "id"), ("abonent", "name"), ("abonent", "balance"), ("abonent", "status"),
    ("abonent", "contacts"), ("abonent", "contacts", "sms"), ("abonent", "contacts", "email"),
    ("abonent", "contacts", "telegram_id"), ("abonent", "contacts", "push"), ("abonent", "abonent_id_users"),
    ("data",), ("data", "text"), ("data", "days_left"), ("data", "psw_token"), ("manual",), ("extra",),
]


def put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def mutated(base: dict[str, Any], changes: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for path, value in changes:
        put(doc, path, value)
    return doc


def events() -> st.SearchStrategy[dict[str, Any]]:
    base = event(1, email="a@b.c", data={"text": "Текст", "psw_token": "123"})
    return st.lists(st.tuples(st.sampled_from(EVENT_PLACES), any_value), min_size=1, max_size=3).map(
        lambda changes: mutated({**base, "event_id": f"fz-{uuid.uuid4().hex}"}, changes))


def as_body(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def run(handler: Callable[[list[Delivery]], Any], body: bytes, queue: str) -> list[Outgoing]:
    """The handler on one message, and msgd's log processing (redaction, field limits) on every
    line it logged, as ``msgd run`` does, within the time bound."""
    import structlog

    from msgd.logs import _redact_processor, merge_bound

    with time_bound(PER_MESSAGE_SECONDS, f"one message of {len(body)} bytes"):
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars,
                                                        merge_bound]) as lines:
            out = list(handler([Delivery(body=body, queue=queue, routing_key="low_balance", headers={})]))
        for line in lines:
            _redact_processor(None, "", line)
    return out


@pytest.fixture
def tenant(db: str) -> dict[str, int]:
    op = seed.operator()
    seed.sms_gateway(op, outbox=True)
    seed.smtp(op, outbox=True)
    return {
        "sms": seed.template(channel="sms", body="%(name)s: %(balance).2f %(currecy)s %(text)s").id,
        "email": seed.template(channel="email", use_django=True, subject="{{ abonent.name }}",
                               body="{% for u in abonent.abonent_id_users.all %}{{ u.login }} {% endfor %}"
                                    "{{ text|slice:':-9' }} {{ abonent.contract_number }}").id,
        "telegram": seed.template(channel="telegram", body="%(text)s").id,
        "push": seed.template(channel="push", body="%(name)s").id,
    }


def stage_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"MSGD_VAR_DIR": str(tmp_path), "MSGD_CONFIG_REFRESH_SECONDS": "60"})


def router_handler(tmp_path: Path) -> Any:
    from msgd import safejson
    from services.router.stage import RouterStage

    s = stage_settings(tmp_path)
    return batch_handler(RouterStage(s), max_body_bytes=s.max_body_bytes, max_depth=safejson.DEFAULT_MAX_DEPTH)


def accounted_for(out: list[Outgoing]) -> bool:
    """The message went on (render jobs, status reports) or was parked with a reason."""
    return bool(out) and all(o.exchange != "parking" or o.headers.get("x-msgd-reason") for o in out)


@FUZZ
@given(doc=events())
def test_router_takes_any_event(doc: dict[str, Any], tenant: dict[str, int], tmp_path: Path) -> None:
    assert accounted_for(run(router_handler(tmp_path), as_body(doc), "msgd.router.bulk"))


@FUZZ
@given(body=st.binary(max_size=2000) | st.sampled_from([b"[" * 10000 + b"]" * 10000, b"", b"\xff" * 100_000]))
def test_router_takes_any_bytes(body: bytes, tenant: dict[str, int], tmp_path: Path) -> None:
    assert accounted_for(run(router_handler(tmp_path), body, "msgd.router.bulk"))


@pytest.mark.parametrize("place", EVENT_PLACES, ids=lambda p: ".".join(p))
def test_router_takes_every_huge_value_in_every_place(place: tuple[str, ...], tenant: dict[str, int],
                                                      tmp_path: Path) -> None:
    handler = router_handler(tmp_path)
    for value in HUGE:
        doc = mutated(event(1, email="a@b.c"), [(place, value)])
        out = run(handler, as_body(doc), "msgd.router.bulk")
        assert accounted_for(out)
        for o in out:
            assert len(o.headers.get("x-msgd-reason", "")) <= 2100, "a parking reason quoted a huge value"


@FUZZ
@given(doc=events(), channel=st.sampled_from(["sms", "email", "telegram", "push", "whatsapp", "nope"]),
       template=st.sampled_from(["sms", "email", "telegram", "push", "missing"]))
def test_renderer_takes_any_render_job(doc: dict[str, Any], channel: str, template: str,
                                       tenant: dict[str, int], tmp_path: Path) -> None:
    from services.renderer.stage import RendererStage

    job = {"v": 1, "kind": "render", "event": doc, "template_id": tenant.get(template, 10**9),
           "channel": channel, "lane": "bulk"}
    handler = batch_handler(RendererStage(stage_settings(tmp_path)))
    out = run(handler, as_body(job), "msgd.render.bulk")
    # A job whose event has no contact for its channel renders to no one (the router sends none such).
    assert all(o.exchange != "parking" or o.headers.get("x-msgd-reason") for o in out)


def outbound_wire(**changes: Any) -> dict[str, Any]:
    from msgd.envelope import message_id
    from services.senders.base import Outbound

    msg = Outbound(message_id=message_id(f"ev-{uuid.uuid4().hex}", 1, "sms", "+79121234567"),
                   event_id="ev", event_type="low_balance", operator_code="best", channel="sms",
                   recipient="+79121234567", body="Текст", attempt=1, template_id=None)
    return {**dataclasses.replace(msg).to_wire(), **changes}


OUTBOUND_FIELDS = ["message_id", "event_id", "operator_code", "recipient", "body", "subject", "html",
                   "attempt", "lane", "sender", "created_at", "template_id", "extra"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(OUTBOUND_FIELDS), any_value, max_size=3))
def test_sender_takes_any_outbound_message(changes: dict[str, Any], tenant: dict[str, int],
                                           tmp_path: Path) -> None:
    from services.senders.stage import SenderStage

    stage = SenderStage(stage_settings(tmp_path), "sms")
    try:
        run(batch_handler(stage), as_body(outbound_wire(**changes)), "msgd.send.sms.bulk")
    finally:
        stage.close()


STATUS_FIELDS = ["message_id", "state", "reason", "attempt", "at", "gateway_message_id", "seconds",
                 "details", "message", "kind"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(STATUS_FIELDS), any_value, max_size=3),
       batched=st.booleans())
def test_recorder_takes_any_status_report(changes: dict[str, Any], batched: bool, tenant: dict[str, int]) -> None:
    from services.recorder.stage import RecorderStage

    report = {"v": 1, "kind": "status", "message_id": str(uuid.uuid4()), "state": "sent", "reason": "ok",
              "attempt": 1, "at": "2026-11-27T10:00:00+00:00", "gateway_message_id": "", "seconds": 0.1,
              "details": {}, "message": {"event_id": "ev", "channel": "sms", "body": "Текст"}, **changes}
    body = {"v": 1, "kind": "status-batch", "reports": [report, {**report, "message_id": str(uuid.uuid4())}]} \
        if batched else report
    run(batch_handler(RecorderStage()), as_body(body), "msgd.status")


def test_router_parks_an_event_with_too_many_values_before_checking_its_schema(
        tenant: dict[str, int], tmp_path: Path) -> None:
    """60,000 phone numbers (under a megabyte) are valid one by one, and checking each against
    the schema takes seconds: the count is checked first."""
    doc = mutated(event(1), [(("abonent", "contacts", "sms"), ["+79121234567"] * 60_000)])
    (parked,) = run(router_handler(tmp_path), as_body(doc), "msgd.router.bulk")
    assert parked.exchange == "parking"
    assert "event holds more than 5000 values" in parked.headers["x-msgd-reason"]
