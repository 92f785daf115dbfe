"""The compiled validator (jsonschema-rs) in front of jsonschema never lets through what jsonschema
refuses, and the reasons are jsonschema's word for word (msgd/schemas.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgd import schemas

EVENTS = Path(__file__).resolve().parent.parent / "examples" / "events"
EXAMPLES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVENTS.glob("*.json"))]


def slow_errors(kind: str, obj: Any) -> list[str]:
    """What validate() said before the compiled validator: jsonschema alone."""
    root = schemas.load_schema(kind)
    found = sorted(schemas.validator(kind).iter_errors(obj), key=schemas._order)
    return list(dict.fromkeys(schemas.describe(e, root) for e in found))


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def put(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = obj
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return obj


# Values that sit on the edges of the event schema: formats, patterns, lengths, numbers, types.
EDGES = st.sampled_from([
    "", " ", "low_balance\n", "Low_Balance", "a" * 64, "a" * 65, "2026-11-27T10:00:00+03:00",
    "2026-11-27T10:00:00", "2026-11-27 10:00:00+03:00", "2026-02-30T10:00:00Z", "2026-11-27T10:00:00.1234567Z",
    "2026-11-27", "2026-13-01", "-150.50", "150.", "+150", "1e3", "١٢٣", "12\n", "---", "b@", "user@example.org",
    "not a uri", "https://x.example/p", "6f1d8a52-3c4e-4d7e-9a51-5b0c2f1e7a10", "6f1d8a523c4e4d7e9a515b0c2f1e7a10",
    "😀" * 40, "\u0000", 0, -1, 1, 1.0, 1.5, -0.0, 2**31, 2**63, 2**64 + 1, -(2**70), 10**30, 1e308, True, False,
    None, [], [1], ["+79121234567"], {}, {"code": "best"}, {"sms": 123},
])


def _check(kind: str, obj: Any) -> None:
    expected = slow_errors(kind, obj)
    if schemas._surely_valid(kind, obj):
        assert expected == [], f"the compiled validator let through: {expected}"
    assert schemas.validate(kind, obj) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_changed_value_anywhere_in_an_example_event(data: st.DataObject) -> None:
    event = copy.deepcopy(data.draw(st.sampled_from(EXAMPLES)))
    where = data.draw(st.sampled_from(paths(event)))
    value = data.draw(st.one_of(EDGES, st.text(max_size=80), st.integers(), st.floats(allow_nan=False,
                                                                                       allow_infinity=False)))
    _check("event", put(event, where, value))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_added_or_removed_field(data: st.DataObject) -> None:
    event = copy.deepcopy(data.draw(st.sampled_from(EXAMPLES)))
    where = data.draw(st.sampled_from([p for p in paths(event) if p and isinstance(p[-1], str)]))
    node = event
    for step in where[:-1]:
        node = node[step]
    if data.draw(st.booleans()):
        del node[where[-1]]
    else:
        node[data.draw(st.sampled_from(["extra", "psw_token", "type", "v"]))] = data.draw(EDGES)
    _check("event", event)


def test_every_example_passes_the_compiled_validator_and_the_internal_kinds_compile() -> None:
    assert all(schemas._surely_valid("event", e) for e in EXAMPLES)
    job = {"v": 1, "kind": "render", "event": EXAMPLES[0], "template_id": 1, "channel": "sms", "lane": "bulk"}
    _check("render", job)
    job["event"] = {**EXAMPLES[0], "occurred_at": "yesterday"}  # the $ref into the event schema holds
    assert not schemas._surely_valid("render", job)
    _check("render", job)


def test_a_value_the_compiled_validator_cannot_take_goes_to_jsonschema() -> None:
    event = copy.deepcopy(EXAMPLES[0])
    event["abonent"]["balance"] = 10**400  # no 64-bit or float form
    _check("event", event)
    event["abonent"]["balance"] = {1: "non-string key"}
    _check("event", event)
