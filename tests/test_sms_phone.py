"""Phone numbers: normalised to E.164 with phonenumbers, invalid ones refused before any request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.senders.base import ChannelConfig, PermanentError
from services.senders.sms.phone import InvalidPhone, normalize_phone
from services.senders.sms.sender import SmsSender
from tests.test_sms_gateways import FakeGateway, make_gateway, msg, sender  # noqa: F401 - fixtures


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+79121234567", None, "+79121234567"),
        ("89121234567", None, "+79121234567"),
        ("8 (912) 123-45-67", None, "+79121234567"),
        ("8-912-123-45-67", None, "+79121234567"),
        ("+7 (912) 123 45 67", None, "+79121234567"),
        ("79121234567", None, "+79121234567"),
        ("7 912 1234567", None, "+79121234567"),
        ("9121234567", None, "+79121234567"),
        (" +7 495 123-45-67 ", None, "+74951234567"),
        ("380501234567", None, "+380501234567"),  # international, written without "+"
        ("+375 29 123-45-67", "RU", "+375291234567"),
        ("8 029 123-45-67", "BY", "+375291234567"),
        ("8 (701) 123-45-67", "kz", "+77011234567"),
        ("+7 912 123 45 67 доб. 5", None, "+79121234567"),  # an extension is left off
        ("８９１２１２３４５６７", None, "+79121234567"),  # full-width digits are digits
        ("tel:+79121234567", None, "+79121234567"),
    ],
)
def test_normalised_to_e164(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("12345", "too short"),
        ("8-912-123-45-6", "not a valid number in RU"),
        ("+7912123456789", "wrong number of digits"),
        ("abonent", "not a phone number"),
        ("+999 1234567", "unknown country code"),
        ("", "empty"),
    ],
)
def test_invalid_numbers_say_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        normalize_phone(raw)
    assert str(err.value) == f"invalid phone number {raw!r}: {why}"


@pytest.mark.parametrize("raw", ["8912abc4567", "8912ABC4567", "+7 912 CALL NOW", "8 (912) DEF-45-67",
                                 "7912123AAAA"])
def test_letters_are_not_read_as_keypad_digits(raw: str) -> None:
    """phonenumbers reads 8912abc4567 as the vanity number +79122224567: a stranger's phone."""
    with pytest.raises(InvalidPhone) as err:
        normalize_phone(raw)
    assert str(err.value) == (f"invalid phone number {raw!r}: letters where digits should be"
                              " (they are not read as a phone keypad's digits)")


def test_a_number_with_letters_fails_as_the_recipients_and_sends_nothing(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    config = ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%&t=%text%"}, {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg("8912abc4567"), config)
    assert err.value.fault == "recipient" and "letters where digits should be" in err.value.reason
    with pytest.raises(PermanentError):  # the outbox (make run) fails it the same way
        sender.check_recipient(msg("8912abc4567"), ChannelConfig("sms", {}, {}, outbox=True))
    assert gw.hits == []


def test_invalid_number_is_permanent_and_sends_nothing(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    config = ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%&t=%text%"}, {})
    with pytest.raises(PermanentError) as err:
        sender.send(msg("12345"), config)
    assert err.value.reason == "invalid phone number '12345': too short"
    assert gw.hits == []


def test_region_and_strip_plus_applied_to_the_request(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender  # noqa: F811
) -> None:
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    params = {"url": gw.url, "params": "to=%sms%&t=%text%", "region": "BY"}
    sender.send(msg("8 029 123-45-67"), ChannelConfig("sms", params, {}))
    sender.send(msg("8 029 123-45-67"), ChannelConfig("sms", {**params, "strip_plus": True}, {}))
    result = sender.send(msg("8 (912) 123-45-67"), ChannelConfig("sms", {**params, "region": "RU"}, {}))
    assert [h.form["to"] for h in gw.hits] == ["+375291234567", "375291234567", "+79121234567"]
    assert result.extra["phone"] == "+79121234567"


def test_unknown_region_is_a_settings_error(sender: SmsSender) -> None:  # noqa: F811
    config = ChannelConfig("sms", {"url": "http://127.0.0.1:1/", "region": "Russia"}, {})
    with pytest.raises(PermanentError, match=r"SMS settings cannot be used: region: 'Russia' is not a region code such"
                                             r" as RU, KZ, BY \(ISO 3166-1 alpha-2\)"):
        sender.send(msg(), config)


def test_region_is_checked_once_per_message(
    make_gateway: Callable[..., FakeGateway], sender: SmsSender, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from services.senders.sms import phone
    from services.senders.sms import sender as sms

    calls: list[str | None] = []
    real = phone.check_region

    def counting(region: str | None) -> str:
        calls.append(region)
        return real(region)

    monkeypatch.setattr(phone, "check_region", counting)
    monkeypatch.setattr(sms, "check_region", counting, raising=False)  # were SMS to check it itself
    gw = make_gateway(lambda hit: (200, "OK - 1 SMS, ID - 1", {}))
    sender.send(msg("8 029 123-45-67"), ChannelConfig("sms", {"url": gw.url, "params": "to=%sms%", "region": "BY"}, {}))
    assert calls == ["BY"] and gw.hits[0].form["to"] == "+375291234567"
