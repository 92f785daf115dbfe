"""SMS part counts: GSM-7 (extension characters count double) and UCS-2."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.senders.base import ChannelConfig
from services.senders.sms.segments import GSM7, UCS2, count_segments, encoding_of
from services.senders.sms.sender import SmsSender
from tests.test_sms_gateways import FakeGateway, make_gateway, msg, sender  # noqa: F401 - fixtures


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "units"),
    [
        ("", GSM7, 0, 0),
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 161),
        ("a" * 306, GSM7, 2, 306),
        ("a" * 307, GSM7, 3, 307),
        ("я" * 70, UCS2, 1, 70),
        ("я" * 71, UCS2, 2, 71),
        ("я" * 134, UCS2, 2, 134),
        ("я" * 135, UCS2, 3, 135),
        ("a" * 159 + "я", UCS2, 3, 160),  # one Cyrillic letter makes the whole text UCS-2
        ("€" * 80, GSM7, 1, 160),  # extension characters count double
        ("€" * 81, GSM7, 2, 162),
        ("[" * 80, GSM7, 1, 160),
        ("a" * 159 + "[", GSM7, 2, 161),
        ("{}|~^\\]", GSM7, 1, 14),
        ("a" * 152 + "€" + "a" * 152, GSM7, 3, 306),  # the escape pair is not split between parts
        ("😀" * 35, UCS2, 1, 70),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, UCS2, 2, 72),
        ("Ваш баланс 12.50 руб.", UCS2, 1, 21),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", GSM7, 1, 62),
    ],
)
def test_count_segments(text: str, encoding: str, parts: int, units: int) -> None:
    found = count_segments(text)
    assert (found.encoding, found.parts, found.units) == (encoding, parts, units)


def test_encoding_of() -> None:
    assert encoding_of("Balance 100 RUB, pay by 05.05") == GSM7
    assert encoding_of("Balance: 100 ₽") == UCS2


def test_segments_in_the_send_result(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    config = ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%&t=%text%"}, {})
    assert sender.send(msg(body="Z" * 161), config).extra["segments"] == 2
    result = sender.send(msg(body="Я" * 71), config)
    assert (result.extra["segments"], result.extra["encoding"]) == (2, UCS2)
    result = sender.send(msg(body="€" * 81), config)
    assert (result.extra["segments"], result.extra["encoding"]) == (2, GSM7)


# -- the C-speed counts equal a count character by character ----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from services.senders.sms import segments as seg  # noqa: E402


def _by_char(text: str) -> seg.Segments:
    """The count before it was sped up: every character looked at in Python."""
    encoding = GSM7 if all(ch in seg.GSM_BASIC or ch in seg.GSM_EXTENSION for ch in text) else UCS2
    single, multi = seg.LIMITS[encoding]
    costs = [seg._cost(ch, encoding) for ch in text]
    units = sum(costs)
    if units == 0:
        return seg.Segments(encoding, 0, 0)
    if units <= single:
        return seg.Segments(encoding, 1, units)
    parts, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            parts += 1
            used = 0
        used += cost
    return seg.Segments(encoding, parts, units)


_CHARS = st.sampled_from(["a", "Я", "€", "[", "\f", "\\", "😀", "\ud83d", "\ude00", "\x00", "@", "\n", "é", "ç", "₽"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=400), st.text(alphabet=_CHARS, max_size=400),
                 st.builds(lambda a, b, n: a * n + b, st.text(max_size=3), st.text(alphabet=_CHARS, max_size=3),
                           st.integers(min_value=0, max_value=170))))
def test_count_segments_equals_the_count_by_character(text: str) -> None:
    assert count_segments(text) == _by_char(text)
    assert encoding_of(text) == _by_char(text).encoding
