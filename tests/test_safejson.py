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


# -- the depth and long-number checks of the fast path give the original's decisions -----------

import re  # noqa: E402

import orjson  # noqa: E402

# JSON text written piece by piece, so it may repeat keys (orjson and json keep the last value,
# a container lost that way is still in the bytes), put brackets and escaped brackets in strings
# and keys, long digit runs in numbers and strings, and whitespace between tokens.
_STRING_TEXTS = st.one_of(
    st.sampled_from(['"a"', '"["', '"{}"', '"]]]"', '"}{"', '"\\u005b\\u007B"', '"\\u005D"', '"\\""',
                     '"\\\\"', '"\\\\\\"[{"', '"12345678901234567890"', '"\\u0000"', '"\\ud83d\\ude00"']),
    st.text(alphabet="ab[]{}\\\"0123456789\u00e9", max_size=6).map(json.dumps))
_NUMBER_TEXTS = st.one_of(st.sampled_from(["0", "-0", "1.5e-7", "1234567890123456789", "123456789012345678",
                                           "18446744073709551615", "1.2345678901234567890123", "1e300"]),
                          st.integers().map(str))
_SCALAR_TEXTS = st.one_of(_STRING_TEXTS, _NUMBER_TEXTS, st.sampled_from(["true", "false", "null"]))
_SPACE = st.sampled_from(["", "", " ", "\n "])


def _containers(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    keys = st.one_of(st.sampled_from(['"a"', '"a"', '"b"', '"["', '"\\u007b"']), _STRING_TEXTS)
    arrays = st.tuples(st.lists(inner, max_size=4), _SPACE).map(lambda p: "[" + (p[1] + ",").join(p[0]) + "]")
    objects = st.tuples(st.lists(st.tuples(keys, inner), max_size=4), _SPACE).map(
        lambda p: "{" + ",".join(f"{k}{p[1]}:{v}" for k, v in p[0]) + "}")
    return st.one_of(arrays, objects)


def _wrap(value: str, levels: int, dict_levels: bool) -> str:
    return ('{"a":' * levels + value + "}" * levels) if dict_levels else ("[" * levels + value + "]" * levels)


_TEXTS = st.builds(_wrap, st.recursive(_SCALAR_TEXTS, _containers, max_leaves=25),
                   st.sampled_from([0, 0, 1, 5, 28, 31, 32, 33, 40]), st.booleans())
# A deep container lost to a repeated key: only the bytes show how deep the body is.
_LOST_DEEP = st.builds(lambda n, last: '{"a":' + "[" * n + "]" * n + ',"a":' + last + "}",
                       st.sampled_from([31, 32, 33, 200, 254, 255, 256, 990, 1000, 1023]),
                       st.sampled_from(["1", "[]", '"[[["', '"\\u005b"', "[[[]]]"]))
_ORIGINAL_LONG_NUMBER = re.compile(rb"[0-9]{19}")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_TEXTS, _LOST_DEEP), st.sampled_from([0, 1, 2, 3, 5, 32, 300]))
def test_depth_and_long_number_checks_equal_the_byte_measures(text: str, max_depth: int) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert (safejson._LONG_NUMBER_RUN in raw.translate(safejson._DIGITS_AS_ZERO)) == bool(
        _ORIGINAL_LONG_NUMBER.search(raw))
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if isinstance(value, dict | list):
        assert safejson._depth_over(raw, value, max_depth) == safejson._depth_over_bytes(raw, max_depth)
    assert _outcome(raw, max_depth) == _stdlib(raw, max_depth)


def test_msgd_status_batch_takes_the_fast_path_and_is_measured_exactly() -> None:
    report = {"v": 1, "kind": "status", "reason": "gateway said [ERR {42}]", "details": {"a": [1, {"b": []}]},
              "message": {"body": "}]", "html": "<style>p {color: red}</style>"}}
    raw = orjson.dumps({"v": 1, "kind": "status-batch", "reports": [report] * 50})
    value = orjson.loads(raw)
    for max_depth in (3, 4, 5, 32):
        assert safejson._depth_over(raw, value, max_depth) == safejson._depth_over_bytes(raw, max_depth)
    assert safejson._fast(raw, 32) == value
