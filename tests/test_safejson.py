"""The untrusted-JSON decoder: every way a body can break json.loads becomes one clear error."""

from __future__ import annotations

import json

import pytest

from msgd.safejson import InvalidJSON, loads


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 10000 + b"]" * 10000, "deeper than"),
        (b"[" * 40 + b"]" * 40, "deeper than"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "deeper than"),
        (b"1" * 5001, "not valid JSON"),
        (b'{"event_id": "\\ud800"}', "lone surrogate"),
        (b'{"\\udfff": 1}', "lone surrogate"),
        (b"", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"x" * 2000, "more than the limit"),
        (b'{"balance": NaN}', "NaN, which JSON has no number for"),
        (b'[Infinity]', "Infinity, which JSON has no number for"),
        (b'{"a": -Infinity}', "-Infinity, which JSON"),
        (b'{"a": [1e999]}', "number too large for a float"),
    ],
)
def test_bad_bodies_raise_invalid_json_with_a_reason(body: bytes, words: str) -> None:
    with pytest.raises(InvalidJSON) as info:
        loads(body, max_bytes=1500 if len(body) == 2000 else 10**6)
    assert words in info.value.reason


def test_good_bodies_decode_including_valid_surrogate_pairs_and_cyrillic() -> None:
    assert loads(b'{"a": ["\\ud83d\\ude00", "\xd0\xaf"], "n": 1.5}') == {"a": ["\U0001f600", "Я"], "n": 1.5}
    assert loads("[" * 32 + "]" * 32) is not None
    assert loads('"plain"') == "plain"


# -- the orjson fast path gives what the original path gives -----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from msgd import safejson  # noqa: E402

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=30)
# Text that may break JSON: tokens that are not JSON, escapes, deep brackets, surrogates.
_PIECES = st.sampled_from(['"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"', "NaN", "-Infinity", "1e999", "-0",
                           "12345678901234567890", "18446744073709551616", "[" * 33, "]" * 33, '"\\u0000"', "\u00e9",
                           '"[{"', "\\", "\x00", "\ufeff", " ", ",", ":", "{", "}", '"', "1.5e-7"])


def _outcome(body: bytes, max_depth: int) -> tuple[str, object]:
    try:
        return "value", json.dumps(safejson.loads(body, max_depth=max_depth), sort_keys=True)
    except InvalidJSON as exc:
        return "invalid", exc.reason


def _stdlib(body: bytes, max_depth: int) -> tuple[str, object]:
    try:
        return "value", json.dumps(safejson._loads_stdlib(body, max_depth), sort_keys=True)
    except InvalidJSON as exc:
        return "invalid", exc.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES, st.integers(min_value=0, max_value=6))
def test_fast_path_equals_the_original_on_json(value: object, max_depth: int) -> None:
    body = json.dumps(value, ensure_ascii=bool(max_depth % 2)).encode("utf-8", "surrogatepass")
    assert _outcome(body, max_depth) == _stdlib(body, max_depth)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=8), _VALUES)
def test_fast_path_equals_the_original_on_broken_json(pieces: list[str], value: object) -> None:
    text = json.dumps(value)
    cut = len(text) // 2
    body = (text[:cut] + "".join(pieces) + text[cut:]).encode("utf-8", "surrogatepass")
    assert _outcome(body, 32) == _stdlib(body, 32)
