"""E-mail headers and addresses (issue 11, point 3), against a real aiosmtpd server.

* Every Subject and display name decodes — parsed back by the standard library's default
  policy — to exactly the text msgd was given: long Cyrillic, mixed ASCII + Cyrillic, emoji.
* International domains by IDNA 2008 / UTS 46 (``faß.de`` is ``xn--fa-hia.de``).
* A malformed recipient address fails at once, before any connection, as the recipient's fault
  ("invalid e-mail address"); a malformed sender address is a setting, not the recipient's fault.
"""

from __future__ import annotations

import email
import email.header
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgd.settings import Settings
from services.senders.base import InvalidRecipient, Outbound, PermanentError
from services.senders.email.address import InvalidAddress, InvalidSenderAddress
from services.senders.email.message import build_message
from services.senders.email.sender import EmailSender
from tests.support import free_port
from tests.test_sender_email import Smtp, _start, cfg, msg

LONG_CYRILLIC = ("Уведомление о плановых работах 15.05.2026 с 02:00 до 04:00 на сети"
                 " ООО «Лучший провайдер»")
MIXED = ("Your balance is low: пополните счёт до 05.12.2026, иначе доступ будет приостановлен —"
         " ООО «Лучший провайдер» (contract 10001319)")
EMOJI = "🔔 Напоминание 🔔 о платеже 💳 до 05.12 — осталось 3 дня ⏳ 👨‍👩‍👧 семейный тариф"
PADDED = "К оплате:  637.50 руб. (минимум    0.00)"  # printf padding leaves runs of spaces
LOOKS_ENCODED = "Код =?utf-8?b?0J/RgNC40LLQtdGC?= не декодировать"
SUBJECTS = [LONG_CYRILLIC, MIXED, EMOJI, PADDED, LOOKS_ENCODED, "Short ASCII subject", "Ёж"]
NAMES = [
    "Иванов Иван",
    "Петров-Водкин Кузьма Сергеевич, ООО «Рога и копыта» (бухгалтерия)",
    "Ivan Петров (ООО «Ромашка»)",
    'John "Q." Public, Jr.',
    "😀 Эмодзи 👍",
]
SENDER_NAME = "ООО «Лучший провайдер» — служба поддержки абонентов"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    yield from _start()


@pytest.fixture
def ascii_only_smtp() -> Iterator[Smtp]:
    yield from _start(enable_SMTPUTF8=False)


@pytest.fixture
def sender() -> Iterator[EmailSender]:
    s = EmailSender(Settings(http_timeout=5.0, domain="billing.example"))
    yield s
    s.close()


def parsed(data: bytes) -> EmailMessage:
    """What a reader sees: the message as received, parsed with the default policy."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


# -- headers decode to exactly the rendered text ---------------------------------------------

@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject_and_display_names_decode_to_exactly_the_rendered_text(
    smtp: Smtp, sender: EmailSender, subject: str
) -> None:
    for i, name in enumerate(NAMES):
        sender.send(msg(message_id=f"m{i}", subject=subject, abonent_name=name,
                        sender=f'"{SENDER_NAME}" <noc@best.example>'), cfg(smtp.port))
    assert len(smtp.sink.received) == len(NAMES)
    for got, name in zip(smtp.sink.received, NAMES, strict=True):
        mail = parsed(got.data)
        assert str(mail["Subject"]) == subject
        assert mail["To"].addresses[0].display_name == name
        assert mail["From"].addresses[0].display_name == SENDER_NAME
        assert not mail["Subject"].defects and not mail["To"].defects and not mail["From"].defects
        assert all(len(line) <= 998 for line in got.data.split(b"\r\n"))


def test_the_reported_subject_keeps_its_word_spaces_in_every_encoded_word(smtp: Smtp, sender: EmailSender) -> None:
    """The issue's example: the raw header may be folded anywhere, but no space between words may
    sit between two encoded-words (RFC 2047 section 6.2 has decoders drop it)."""
    sender.send(msg(subject=LONG_CYRILLIC), cfg(smtp.port))
    raw = smtp.sink.received[0].data.split(b"\r\n\r\n")[0].decode("ascii")
    assert "плановыхработах" not in str(parsed(smtp.sink.received[0].data)["Subject"])
    decoded = email.header.make_header(email.header.decode_header(raw.split("Subject:", 1)[1].split("\r\nDate")[0]))
    assert str(decoded) == LONG_CYRILLIC  # the legacy, strictly RFC 2047 decoder agrees
    assert all(len(line) <= 78 for line in raw.split("\r\n"))


def test_utf8_headers_with_smtputf8_also_decode_exactly(smtp: Smtp, sender: EmailSender) -> None:
    sender.send(msg(recipient="иван@пример.рф", subject=EMOJI, abonent_name=NAMES[1]), cfg(smtp.port))
    (got,) = smtp.sink.received
    assert got.rcpt_tos == ["иван@пример.рф"]
    mail = email.message_from_string(got.data.decode("utf-8"), policy=email.policy.default)
    assert str(mail["Subject"]) == EMOJI and mail["To"].addresses[0].display_name == NAMES[1]


_ALPHABET = st.sampled_from([*"abcXYZ019 .,:;-—«»\"'()<>@=?_\\!", *"Уведомлнипрабёё ", "🔔", "😀",
                             "👨‍👩‍👧", "é", "ß", "中", "\t"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(subject=st.lists(_ALPHABET, max_size=200).map("".join),
       name=st.lists(_ALPHABET, max_size=120).map("".join), utf8=st.booleans())
def test_any_subject_and_name_round_trip(subject: str, name: str, utf8: bool) -> None:
    """Whatever the text, the parsed header is the text as one line (a subject keeps its spaces;
    in a display name runs of spaces are one, RFC 5322 section 3.2.2) and no line passes 998."""
    out = Outbound(message_id="p", event_id="e", event_type="t", operator_code="o", channel="email",
                   recipient="иван@x.ru" if utf8 else "ivan@x.ru", body="b", subject=subject,
                   abonent_name=name)
    sender = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '" <noc@x.ru>'
    built = build_message(out, sender, "x.ru")
    head = built.data.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 998 and line.strip() for line in head.split(b"\r\n")), head
    mail = email.message_from_string(built.data.decode("utf-8"), policy=email.policy.default)
    one_line = " ".join(part.strip() for part in subject.replace("\t", " ").splitlines() if part.strip())
    assert str(mail["Subject"]) == one_line.strip()
    assert mail["To"].addresses[0].display_name == " ".join(name.split())
    assert mail["From"].addresses[0].display_name == " ".join(name.split())


# -- international domains: IDNA 2008 / UTS 46 ----------------------------------------------

@pytest.mark.parametrize(("address", "envelope"), [
    ("schulz@faß.de", "schulz@xn--fa-hia.de"),  # IDNA 2003 (Python's codec) maps ß to ss: fass.de
    ("ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"),
    ("IVAN@ПРИМЕР.РФ", "IVAN@xn--e1afmkfd.xn--p1ai"),  # UTS 46 maps the domain to lower case
    ("info@βόλος.gr", "info@xn--nxasmm1c.gr"),  # final sigma kept (IDNA 2003: xn--nxasmq6b)
    ("Schulz <schulz@faß.de>", "schulz@xn--fa-hia.de"),
])
def test_international_domains_go_to_their_idna_2008_form(
    smtp: Smtp, sender: EmailSender, address: str, envelope: str
) -> None:
    sender.send(msg(recipient=address), cfg(smtp.port))
    (got,) = smtp.sink.received
    assert got.rcpt_tos == [envelope]
    assert parsed(got.data)["To"].addresses[0].addr_spec == envelope


# -- malformed addresses: the recipient's fault, at once, never rewritten ----------------------

MALFORMED = {
    "petrov@mail..ru": "two periods in a row",
    "user@example.ru.": "cannot end with a period",
    "sidorov@yand ex.ru": "invalid characters: SPACE",  # was silently sent to sidorov@yandex.ru
    "a@b@c.ru": "invalid characters: '@'",
    ".petrov@mail.ru": "cannot start with a period",
    "petrov.@mail.ru": "cannot have a period immediately before the @-sign",
    "petrov@-mail.ru": "cannot have a hyphen immediately after the @-sign",
    "petrov@mail": "should have a period",
    "petrov@@mail.ru": "invalid characters: '@'",
    "petrov": "must have an @-sign",
    "petrov@mail.ru>": "invalid characters",
    "Пётр <petrov@mail..ru>": "two periods in a row",
    "kuz@mail.ru buh@romashka.ru": "invalid characters",  # two addresses in one: split upstream
    "snow@☃.net": "invalid",  # IDNA 2003 allowed symbols; IDNA 2008 does not
    "a@b.test": "special-use or reserved name",
}


@pytest.mark.parametrize("address", list(MALFORMED))
def test_a_malformed_address_fails_at_once_as_the_recipients_fault(sender: EmailSender, address: str) -> None:
    port = free_port()  # nothing listens there: any connection attempt would fail another way
    with pytest.raises(InvalidAddress) as err:
        sender.send(msg(recipient=address), cfg(port))
    assert isinstance(err.value, InvalidRecipient) and err.value.permanent
    assert err.value.reason.startswith(f"invalid e-mail address {address!r}: ")
    assert MALFORMED[address] in err.value.reason
    assert "SMTP" not in err.value.reason


def test_no_address_is_repaired_into_another(smtp: Smtp, sender: EmailSender) -> None:
    """The lenient parser (email.utils.parseaddr) turned these into deliverable addresses."""
    for address in ("sidorov@yand ex.ru", "kuz@mail.ru, buh@romashka.ru", "petrov@mail.ru (Пётр) x"):
        with pytest.raises(InvalidAddress):
            sender.send(msg(recipient=address), cfg(smtp.port))
    assert smtp.sink.received == []


def test_a_non_ascii_local_part_without_smtputf8_is_an_invalid_address(
    ascii_only_smtp: Smtp, sender: EmailSender
) -> None:
    with pytest.raises(InvalidAddress) as err:
        sender.send(msg(recipient="иван@пример.рф"), cfg(ascii_only_smtp.port))
    assert err.value.reason == (
        "invalid e-mail address 'иван@пример.рф': it has non-ASCII characters before the @, which need"
        f" SMTPUTF8, and the SMTP server 127.0.0.1:{ascii_only_smtp.port} does not offer it")
    sender.send(msg(recipient="ivan@пример.рф"), cfg(ascii_only_smtp.port))  # the domain alone is fine
    assert ascii_only_smtp.sink.received[0].rcpt_tos == ["ivan@xn--e1afmkfd.xn--p1ai"]


# -- the sender address: validated the same way, a setting when wrong -------------------------

@pytest.mark.parametrize("bad", ["desk7@isp..example", "desk7@isp.example.", "desk7@i sp.example", "a@b@c.ru",
                                 "Провайдер <desk7@@isp.example>"])
def test_a_malformed_sender_address_is_a_setting_not_the_recipients_fault(sender: EmailSender, bad: str) -> None:
    with pytest.raises(InvalidSenderAddress) as err:
        sender.send(msg(sender=bad), cfg(free_port()))
    assert not isinstance(err.value, InvalidRecipient) and isinstance(err.value, PermanentError)
    assert err.value.reason.startswith(f"invalid sender e-mail address {bad!r}: ")
    assert "check the operator's e-mail" in err.value.reason


@pytest.mark.parametrize(("sender_address", "envelope"), [
    ("root@localhost", "root@localhost"),  # root@<MSGD_DOMAIN> on a host without a domain name
    ("noc@isp.local", "noc@isp.local"),
    ("noc@mailhost", "noc@mailhost"),
    ("Провайдер <noc@faß.de>", "noc@xn--fa-hia.de"),
])
def test_a_local_relays_sender_addresses_are_accepted(
    smtp: Smtp, sender: EmailSender, sender_address: str, envelope: str
) -> None:
    sender.send(msg(sender=sender_address), cfg(smtp.port))
    assert smtp.sink.received[0].mail_from == envelope


def test_the_default_sender_follows_msgd_domain(smtp: Smtp) -> None:
    for domain, ok in (("localhost", True), ("billing..example", False)):
        s = EmailSender(Settings(http_timeout=5.0, domain=domain))
        try:
            if ok:
                s.send(msg(sender=""), cfg(smtp.port))
            else:
                with pytest.raises(InvalidSenderAddress, match="'root@billing..example'"):
                    s.send(msg(sender=""), cfg(smtp.port))
        finally:
            s.close()
    assert [r.mail_from for r in smtp.sink.received] == ["root@localhost"]

