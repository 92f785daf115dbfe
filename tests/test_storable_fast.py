"""The orjson pre-check of ``unstorable_paths`` never hides what the walk reports."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgd import storable

# Text that may hold NUL, lone surrogates (both halves), pairs, and the six characters of an
# escaped NUL written out ("\\u0000" as text, which orjson writes as \\\\u0000).
_TEXT = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\U0001f600", "\\", "u", "0", "\u00e9"]),
            max_size=8),
    st.sampled_from(["\\u0000", "\\\\u0000", "a\x00", "\ud83d\ude00", "\ud83d", "", "\x00" * 3]),
)
_SCALARS = st.one_of(_TEXT, st.none(), st.booleans(), st.integers(),
                     st.integers(min_value=2**63, max_value=2**80), st.floats(), st.just(dt.date(2026, 1, 2)))
_KEYS = st.one_of(_TEXT, st.integers(min_value=-3, max_value=3))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4), st.tuples(inner, inner)),
    max_leaves=30)


def _walk(value: Any) -> list[tuple[list[str | int], str]]:
    """The walk alone, as before the pre-check."""
    real = storable.surely_storable
    storable.surely_storable = lambda _value: False  # type: ignore[assignment]
    try:
        return storable.unstorable_paths(value)
    finally:
        storable.surely_storable = real  # type: ignore[assignment]


def _deep(value: Any, levels: int) -> Any:
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, st.sampled_from([0, 0, 0, 1, 254, 256, 300]))
def test_unstorable_paths_with_the_precheck_equal_the_walk(value: Any, levels: int) -> None:
    value = _deep(value, levels)
    found = storable.unstorable_paths(value)
    assert found == _walk(value)
    if storable.surely_storable(value):
        assert found == []


def test_precheck_passes_a_plain_event_and_stops_at_each_kind_of_bad_text() -> None:
    event = {"event_id": "e-1", "abonent": {"name": "Иван", "contacts": {"sms": ["+79120000000"]}}, "n": 1.5}
    assert storable.surely_storable(event)
    for bad in ({"a": "x\x00"}, {"a\x00": 1}, ["\ud800"], {"a": {"\udfff": 1}}, {1: "a"}, [2**64]):
        assert not storable.surely_storable(bad)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, st.integers(min_value=0, max_value=40))
def test_text_of_a_surely_storable_report_needs_no_replacement(value: Any, cut: int) -> None:
    """The recorder keeps a report's text as it is when ``surely_storable(report)``: each field
    it stores is ``str()`` of a part of the report, cut, and the details dumped by json."""
    report = {"message": {"body": value}, "details": value}
    if not storable.surely_storable(report):
        return
    text = str(value)[:cut]
    assert storable.storable(text) == text
    try:
        expected: str | type[Exception] = json.dumps(storable.storable_json(value))
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: str | type[Exception] = json.dumps(value)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected
