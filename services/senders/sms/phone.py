"""Phone numbers for SMS: normalised to E.164 and validated with ``phonenumbers``.

Subscribers' numbers arrive as people typed them into the billing: ``8 (912)
123-45-67``, ``+7 912 123 45 67``, ``79121234567``, ``9121234567``.  They are
parsed in the operator's default region (``region`` in the SMS settings, RU
when unset), so the Russian trunk prefix 8 and a missing country code are
understood, and the result is E.164 (``+79121234567``).  A number that is
still not valid is refused with phonenumbers' reason, before any gateway is
contacted.

One fallback: digits written without "+" that are not valid in the default
region are tried once more as an international number (``380501234567`` is
the Ukrainian ``+380501234567``, not a Russian number).

Letters are never read as a phone keypad's digits: ``phonenumbers`` turns the
"vanity number" ``8912abc4567`` into ``+79122224567``, a stranger's number, so a
number whose digits are not all typed as digits is refused (a mistyped contact
is the subscriber's to correct, not msgd's to guess).
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from services.senders.contacts import split_by_spaces, split_outside_quotes

DEFAULT_REGION = "RU"

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}


class InvalidPhone(ValueError):
    """The number cannot be an SMS recipient; ``str()`` says why, quoting the number."""


def check_region(region: str | None) -> str:
    """The default region as an upper-case ISO 3166 code, or ValueError."""
    value = (region or DEFAULT_REGION).strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"region {region!r} is not a known ISO 3166 country code (e.g. RU, KZ, BY)")
    return value


def _why_invalid(number: phonenumbers.PhoneNumber, region: str) -> str:
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _POSSIBLE:
        return _POSSIBLE[possible]
    where = phonenumbers.region_code_for_number(number) or region
    return f"not a valid number in {where}"


def _typed_digits(text: str) -> str:
    """The digits as typed (any script's: ``８`` is 8), letters left out."""
    return "".join(str(d) for d in (unicodedata.digit(c, None) for c in text) if d is not None)


def _as_typed(number: phonenumbers.PhoneNumber, text: str) -> str:
    """E.164 of ``number``, or InvalidPhone when its digits are not all in ``text`` as digits
    (``phonenumbers`` read letters as keypad digits)."""
    if phonenumbers.national_significant_number(number) not in _typed_digits(text):
        raise InvalidPhone(f"invalid phone number {text!r}: letters where digits should be"
                           " (they are not read as a phone keypad's digits)")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_phone(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164 (``+79121234567``) or InvalidPhone("invalid phone number 'raw': why")."""
    text = (raw or "").strip()
    region = check_region(region)
    if not text:
        raise InvalidPhone("invalid phone number '': empty")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        why = _PARSE_ERRORS.get(exc.error_type, str(exc))
        raise InvalidPhone(f"invalid phone number {text!r}: {why}") from None
    if phonenumbers.is_valid_number(number):
        return _as_typed(number, text)
    why = _why_invalid(number, region)
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and digits and not digits.startswith(("0", "8")):
        try:
            international = phonenumbers.parse("+" + digits, None)
        except NumberParseException:
            international = None
        if international is not None and phonenumbers.is_valid_number(international):
            return _as_typed(international, text)
    raise InvalidPhone(f"invalid phone number {text!r}: {why}")


# -- several numbers in one contact (services/senders/contacts.py) -----------------------------
_MIN_DIGITS = 7  # a piece with fewer digits is part of a number written with spaces


def split_phones(text: str) -> list[str]:
    """Phone numbers in one contact string (a number may contain spaces and parentheses)."""
    out: list[str] = []
    for piece in split_outside_quotes(text):
        out += split_by_spaces(piece, lambda w: sum(c.isdigit() for c in w) >= _MIN_DIGITS)
    return out


def phone_identity(entry: str) -> str:
    """What makes two spellings one number: E.164 in the default region, else the digits."""
    try:
        return normalize_phone(entry)
    except ValueError:
        return re.sub(r"\D", "", entry) or entry
