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
