"""The untrusted-JSON decoder: every way a body can break json.loads becomes one clear error."""

from __future__ import annotations

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
