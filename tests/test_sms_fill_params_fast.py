"""``fill_params`` with the parameter string's pairs worked out once equals the per-message filter."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from services.senders.sms import request
from services.senders.sms.request import OPTIONAL_PLACEHOLDERS, PLACEHOLDERS, fill_params


def _before(template: str, phone: str, text: str, values: dict[str, str], encoded: dict[str, str]) -> str:
    """fill_params as it was: every pair checked against every optional placeholder per call."""
    ready = dict(encoded)
    filled = {"sms": phone, "text": text, **values, **ready}
    kept = [pair for pair in template.split("&")
            if not any(pair.partition("=")[2] == f"%{name}%" and not filled.get(name) for name in OPTIONAL_PLACEHOLDERS)]
    return request._PLACEHOLDER_RE.sub(
        lambda m: (ready[m[1]] if m[1] in ready else quote(filled[m[1]], safe="")) if m[1] in filled else m[0],
        "&".join(kept))


_TOKENS = st.sampled_from([*(f"%{p}%" for p in PLACEHOLDERS), "%nope%", "a", "=", "&", "%", "key", "я", " "])
_TEMPLATES = st.lists(_TOKENS, max_size=12).map("".join)
_VALUES = st.dictionaries(st.sampled_from(PLACEHOLDERS), st.sampled_from(["", "x", "A B", "я&="]), max_size=5)


@settings(max_examples=500, deadline=None)
@given(_TEMPLATES, st.text(max_size=5), st.text(max_size=10), _VALUES, _VALUES)
def test_fill_params_equals_the_filter_per_call(template: str, phone: str, text: str,
                                                values: dict[str, str], encoded: dict[str, str]) -> None:
    assert fill_params(template, phone, text, values, encoded) == _before(template, phone, text, values, encoded)
