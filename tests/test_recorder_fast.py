"""The recorder's once-made JSON encoder writes what json.dumps writes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.recorder.stage import _json_text

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**90),
                     st.floats(), st.text(max_size=8), st.just(dt.date(2026, 1, 2)))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner), st.dictionaries(
        st.one_of(st.text(max_size=4), st.integers(-2, 2), st.floats(), st.booleans(), st.none()), inner,
        max_size=4)), max_leaves=25)


def _result(write: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", write(value)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=600, deadline=None)
@given(_VALUES)
def test_json_text_equals_json_dumps(value: Any) -> None:
    assert _result(_json_text, value) == _result(json.dumps, value)


_HEX = "0123456789abcdefABCDEF"


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: f"{{{u}}}"),
                 st.uuids().map(lambda u: f"urn:uuid:{u}"), st.uuids().map(lambda u: u.hex),
                 st.uuids().map(lambda u: str(u) + "\n"), st.uuids().map(lambda u: " " + str(u)),
                 st.text(alphabet=_HEX + "-{}_+x: \n", min_size=30, max_size=40), st.text(max_size=40)))
def test_is_uuid_equals_what_uuid_accepts(text: str) -> None:
    import uuid

    from services.recorder.stage import _is_uuid
    try:
        uuid.UUID(text)
        accepted = True
    except ValueError:
        accepted = False
    assert _is_uuid(text) == accepted
