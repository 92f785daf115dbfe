"""One e-mail address, as billing or an operator typed it, checked strictly before any connection.

Accepted forms: a bare address (``ivan@example.net``) or a display form (``Иван <ivan@x.ru>``,
``"Петров, Иван" <p@x.ru>``). The address itself is checked by **email-validator** (RFC 5322
dot-atom syntax, RFC 6531 internationalized local parts, and domains by IDNA 2008 with UTS 46
mapping through the ``idna`` package — not Python's IDNA 2003 codec, so ``faß.de`` is
``xn--fa-hia.de``, not ``fass.de``). Nothing is repaired: ``mail..ru``, a trailing dot, a space
(``yand ex.ru``), a second ``@`` or several addresses in one string are refused with the
library's reason, never trimmed into some other address. Deliverability (DNS) is left to the SMTP
server.

A recipient's bad address is the recipient's fault (:class:`InvalidAddress`, an
``InvalidRecipient``); a bad sender address (the operator's e-mail, the sending admin's, or
``root@<MSGD_DOMAIN>``) is a setting the operator must fix (:class:`InvalidSenderAddress`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from services.senders.base import InvalidRecipient, PermanentError
from services.senders.contacts import split_by_spaces, split_outside_quotes

# "Name <addr>": the display part may be quoted; nothing may follow the ">".
_DISPLAY_FORM = re.compile(r'^(?P<name>(?:"(?:[^"\\]|\\.)*"|[^"<>])*?)\s*<(?P<addr>[^<>]*)>$', re.S)
# A top-level name under which a sender's special-use domain (localhost, .local) is checked.
_STAND_IN = "example"


class InvalidAddress(InvalidRecipient):
    """The subscriber's e-mail address is malformed: "invalid e-mail address 'x': why"."""


class InvalidSenderAddress(PermanentError):
    """The sender address (operator's or admin's e-mail, root@<MSGD_DOMAIN>) is malformed: the
    operator must fix a setting; the subscriber did nothing wrong."""


@dataclass(frozen=True)
class EmailAddress:
    """A checked address. ``addr``: normalized (Unicode domain, NFC); ``ascii_addr``: the
    domain in IDNA ASCII form, None when the local part is non-ASCII (it needs SMTPUTF8)."""

    display: str
    addr: str
    ascii_addr: str | None

    @property
    def smtputf8(self) -> bool:
        return self.ascii_addr is None

    @property
    def envelope(self) -> str:
        """The address for MAIL FROM / RCPT TO."""
        return self.ascii_addr or self.addr


def _why(exc: EmailNotValidError) -> str:
    text = str(exc).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def _split_display(value: str) -> tuple[str, str]:
    """(display name, address text) of ``Name <addr>`` or a bare address."""
    match = _DISPLAY_FORM.match(value)
    if not match:
        return "", value
    name = match["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return " ".join(name.split()), match["addr"].strip()


def _check(addr: str, *, sender: bool) -> EmailAddress:
    if not addr:
        raise EmailNotValidError("There must be something before the @-sign.")
    domain = addr.rpartition("@")[2]
    if sender and domain.rpartition(".")[2].lower() in SPECIAL_USE_DOMAIN_NAMES:
        # A sender on a local relay may be root@localhost or noc@isp.local: the library refuses
        # special-use names (right for a recipient), so check the same syntax under a stand-in
        # top-level name and take it off again.
        checked = validate_email(f"{addr}.{_STAND_IN}", check_deliverability=False)
        cut = -len(_STAND_IN) - 1
        return EmailAddress("", checked.normalized[:cut], checked.ascii_email and checked.ascii_email[:cut])
    checked = validate_email(addr, check_deliverability=False, globally_deliverable=not sender)
    return EmailAddress("", checked.normalized, checked.ascii_email)


def parse_recipient(value: str, display: str = "") -> EmailAddress:
    """The subscriber's address from ``value`` (display form or bare); ``display`` names the
    subscriber when ``value`` has no name. InvalidAddress("invalid e-mail address 'value': why")."""
    name, addr = _split_display(value.strip())
    try:
        checked = _check(addr, sender=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid e-mail address {value.strip()!r}: {_why(exc)}") from None
    return EmailAddress(name or " ".join(display.split()), checked.addr, checked.ascii_addr)


def parse_sender(value: str) -> EmailAddress:
    """The sender's address from ``value``. Single-label and special-use domains (``localhost``,
    ``.local``) are allowed (a local relay); InvalidSenderAddress naming the settings to check
    otherwise."""
    name, addr = _split_display(value.strip())
    try:
        checked = _check(addr, sender=True)
    except EmailNotValidError as exc:
        raise InvalidSenderAddress(
            f"invalid sender e-mail address {value.strip()!r}: {_why(exc)} — check the operator's e-mail"
            " (for a manual send, the admin's e-mail; without either, MSGD_DOMAIN)"
        ) from None
    return EmailAddress(name, checked.addr, checked.ascii_addr)


def sender_problem(value: str) -> str | None:
    """Why ``value`` cannot be a sender address (as the e-mail sender would refuse it), or None:
    for checking an operator's e-mail when it is loaded or saved."""
    try:
        parse_sender(value)
    except InvalidSenderAddress as exc:
        return exc.reason.split(" — ")[0]
    return None


def recipient_problem(value: str) -> str | None:
    """Why ``value`` (one address, or several as a subscriber's contact holds them) cannot be
    sent to, as the e-mail sender would refuse it, or None: for a contact typed in the admin."""
    for entry in split_emails(value) or [value]:
        try:
            parse_recipient(entry)
        except InvalidAddress as exc:
            return exc.reason
    return None


# -- several addresses in one contact (services/senders/contacts.py) ---------------------------


def split_emails(text: str) -> list[str]:
    """E-mail addresses in one contact string (display forms kept whole)."""
    out: list[str] = []
    for piece in split_outside_quotes(text):
        plain = not any(c in piece for c in '"<>')
        out += split_by_spaces(piece, lambda w: w.count("@") == 1) if plain else [piece]
    return out


def email_identity(entry: str) -> str:
    """What makes two spellings one mailbox: the address part, case-folded."""
    match = re.search(r"<([^<>]*)>\s*$", entry)
    return (match[1] if match else entry).strip().casefold()
