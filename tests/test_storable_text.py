"""Nothing is sent without a record: text the message log cannot hold (NUL, lone surrogates).

PostgreSQL refuses U+0000 in text and jsonb columns; no UTF-8 store holds a lone surrogate.
Such text in an event is refused where it enters (the router parks the event, the API
answers 400); a render that produces it fails the message; an outbound message carrying it
is never sent; text that arrives from outside after a send (a gateway's answer) is stored
with U+FFFD instead, so the record is never lost.  Store tests run on PostgreSQL and again
on SQLite (make test).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from msgd.schemas import validate_event
from msgd.storable import REPLACEMENT, problem, storable, storable_json, unstorable_paths
from tests import seed
from tests.support import Gateway, event

NUL = "\x00"


def _set(obj: dict[str, Any], path: list[str | int], value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]  # type: ignore[index]
    obj[path[-1]] = value  # type: ignore[index]


# Every kind of place event text can take: the data.text, event_id and names, and
# the siblings (contacts, nested records, operator fields, free data, a field name).
PLACES = [
    (["data", "text"], "a\x00b", "data.text"),
    (["event_id"], "ev-\x00-1", "event_id"),
    (["abonent", "name"], "Иван\x00ов", "abonent.name"),
    (["operator", "name"], "ООО\x00", "operator.name"),
    (["operator", "code"], "be\x00st", "operator.code"),
    (["abonent", "contacts", "sms"], "+7912\x001234567", "abonent.contacts.sms"),
    (["abonent", "contacts", "email"], ["a@b.example", "c\x00@d.example"], "abonent.contacts.email[1]"),
    (["abonent", "abonent_id_users"], [{"login": "lo\x00gin"}], "abonent.abonent_id_users[0].login"),
    (["abonent", "id"], "10\x0001", "abonent.id"),
    (["data", "extra"], {"deep": [{"x": "\x00"}]}, "data.extra.deep[0].x"),
    (["data", "text"], "a\ud800b", "data.text"),  # a lone surrogate (json.loads makes one of "\ud800")
]


@pytest.mark.parametrize(("path", "value", "place"), PLACES, ids=[p[2] for p in PLACES])
def test_event_text_the_log_cannot_store_is_refused(path: list[str | int], value: Any, place: str) -> None:
    e = event(1)
    _set(e, path, value)
    errors = validate_event(e)
    mine = [err for err in errors if err.startswith(f"{place}: ")]
    assert mine, errors
    assert "the message log cannot store" in mine[0]
    assert ("lone surrogate" if value == "a\ud800b" else "NUL character") in mine[0]
    assert NUL not in " ".join(errors)  # the reason itself can be stored and shown


def test_a_field_name_with_nul_is_refused_without_quoting_it_raw() -> None:
    e = event(1, data={"ba\x00d": 1})
    (err,) = validate_event(e)
    assert err.startswith("data: the field name 'ba\\x00d' contains a NUL") and NUL not in err


def test_storable_replaces_what_the_store_refuses_and_keeps_the_rest() -> None:
    assert storable("ok\x00 \ud800 ✓ ё") == f"ok{REPLACEMENT} {REPLACEMENT} ✓ ё"
    assert problem("ok") is None and problem("") is None
    assert storable_json({"a\x00": ["x\x00", 1, None, {"b": "\udfff"}]}) == {
        f"a{REPLACEMENT}": [f"x{REPLACEMENT}", 1, None, {"b": REPLACEMENT}]}
    deep: Any = "\x00"
    for _ in range(20_000):  # far deeper than the interpreter's recursion limit
        deep = [deep]
    assert unstorable_paths(deep)[0][0] == [0] * 20_000
    flat = storable_json(deep)
    for _ in range(20_000):
        flat = flat[0]
    assert flat == REPLACEMENT


# -- the stages in-process, on the store under test -------------------------------------------
def test_render_that_produces_nul_fails_the_message_and_sends_nothing(db: str, tmp_path: Path) -> None:
    """%c of 0 (or of a surrogate code) makes text no store holds out of a valid event."""
    from tests.test_router_renderer_stages import bodies, render

    seed.operator()
    nul = seed.template(body="Код: %(code)c")
    surrogate = seed.template(subject="%(high)c", channel="email", body="ok")
    jobs = []
    for tpl, channel, data in ((nul, "sms", {"code": 0}), (surrogate, "email", {"high": 0xD800})):
        e = event(1, email="a@b.example", data=data)
        assert validate_event(e) == []
        jobs.append({"v": 1, "kind": "render", "event": e, "template_id": tpl.id, "channel": channel,
                     "lane": "bulk"})
    out = render(tmp_path, jobs)
    assert bodies(out, "send.") == []
    reports = bodies(out, "status")
    assert [r["state"] for r in reports] == ["failed", "failed"]
    assert "rendered body contains a NUL character" in reports[0]["reason"]
    assert "rendered subject contains a lone surrogate (U+D800)" in reports[1]["reason"]


def test_sender_never_sends_a_message_its_log_cannot_record(db: str, gateway: Gateway, tmp_path: Path) -> None:
    """An outbound message with such text (published by an older version, or replayed) fails unsent."""
    from services.recorder.stage import RecorderStage
    from tests.test_sender_stage import item, make_stage, outbound

    seed.sms_gateway(seed.operator(), gateway.url)
    stage = make_stage(tmp_path)
    cases = [outbound(1, body="a\x00b"), outbound(2, recipient="+7912\x001234567"),
             outbound(3, subject="\x00"), outbound(4, sender="x\x00@y")]
    out = stage.handle([item(c) for c in cases])
    assert gateway.requests == []
    reports = [json.loads(o.body) for o in out if o.route == "status"]
    assert [r["state"] for r in reports] == ["failed"] * 4
    assert [r["reason"].split(" contains")[0] for r in reports] == [
        "not sent: the body", "not sent: the recipient", "not sent: the subject", "not sent: the sender"]
    RecorderStage().record(reports)  # and the failure is recorded
    from msgd.store.models import Message

    assert Message.objects.filter(state="failed").count() == 4


def test_recorder_stores_foreign_text_with_replacement_characters(db: str) -> None:
    """The issue's symptom: both status reports parked and no log row. A gateway's answer (or a
    report from before this check) may carry NUL: the row is written, NUL shown as U+FFFD."""
    from msgd.store.models import Attempt, Message
    from services.recorder.stage import RecorderStage
    from tests.test_recorder import received, report

    mid = str(uuid.uuid4())
    retry = report(mid, "retrying", 1, "HTTP 503: busy\x00", abonent_name="Ив\x00ан", subject="s\x00")
    sent = report(mid, "sent", 2, "accepted\x00id=77")
    sent["gateway_message_id"] = "77\x00"
    sent["details"] = {"answer": "ok\x00", "k\x00": ["\x00"]}
    out = RecorderStage().handle([received(retry), received(sent)])
    assert out == []
    m = Message.objects.get(id=mid)
    r = REPLACEMENT
    assert (m.state, m.reason, m.gateway_message_id) == ("sent", f"accepted{r}id=77", f"77{r}")
    assert (m.abonent_name, m.subject) == (f"Ив{r}ан", f"s{r}")
    assert m.details == {"answer": f"ok{r}", f"k{r}": [r]}
    assert sorted(Attempt.objects.filter(message=m).values_list("state", "reason")) == [
        ("retrying", f"HTTP 503: busy{r}"), ("sent", f"accepted{r}id=77")]


def test_claims_keep_a_gateway_answer_with_nul(db: str) -> None:
    from msgd.envelope import SENT
    from msgd.store.models import Claim
    from services.senders import claims

    mid = str(uuid.uuid4())
    claims.claim([(mid, 1)])
    claims.finish([claims.Finish(mid, claims.DONE, SENT, "accepted\x00", "id\x00")])
    row = Claim.objects.get(message_id=mid)
    assert (row.state, row.reason, row.gateway_message_id) == ("done", f"accepted{REPLACEMENT}",
                                                               f"id{REPLACEMENT}")


def test_config_with_nul_is_refused_before_anything_is_stored(db: str) -> None:
    from msgd.config import ConfigError, load_config
    from msgd.store.models import Operator, Template

    yaml_text = """
operators:
  - code: best
    name: ООО Лучший провайдер
templates:
  - event: low_balance
    channel: sms
    body: "Баланс\\0 %(balance)s"
"""
    with pytest.raises(ConfigError) as refused:
        load_config(yaml_text)
    assert "templates[0].body: contains a NUL character" in str(refused.value)
    assert not Operator.objects.exists() and not Template.objects.exists()
