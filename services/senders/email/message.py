"""Building an e-mail: checked addresses, the MIME message, and the size limit that keeps a
runaway text from going out.

Addresses come from services/senders/email/address.py (email-validator: IDNA 2008 / UTS 46
domains, SMTPUTF8 local parts, nothing repaired); headers from services/senders/email/headers.py
(RFC 2047 encoded-words and RFC 5322 folding that decode to exactly the rendered subject and the
display names). The message is ``email.message.EmailMessage``: text/plain, plus
multipart/alternative text + HTML when the message has HTML; UTF-8. Without SMTPUTF8 the headers
carry a non-ASCII domain in its ASCII (``xn--``) form and the bodies are 7-bit (base64 /
quoted-printable); an address with a non-ASCII local part needs SMTPUTF8 (RFC 6531) and then the
message is RFC 6532 UTF-8 throughout. ``max_bytes`` (default 1 MiB, services/senders/email/settings.py) bounds the
built message, in bytes as it goes over SMTP; a larger one fails before any connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from services.senders.base import ContentError, Outbound
from services.senders.email.address import EmailAddress, parse_recipient, parse_sender
from services.senders.email.headers import POLICY_7BIT, POLICY_UTF8, one_line


@dataclass
class Built:
    """A message ready for ``sendmail``: its bytes and envelope, and the checked addresses."""

    message: EmailMessage
    data: bytes
    sender: EmailAddress
    recipient: EmailAddress

    @property
    def smtputf8(self) -> bool:
        return self.sender.smtputf8 or self.recipient.smtputf8


def _header(a: EmailAddress, utf8: bool) -> Address:
    # username + domain, not addr_spec: Address would refuse a non-ASCII local part (SMTPUTF8)
    local, _, domain = (a.addr if utf8 else a.envelope).rpartition("@")
    return Address(display_name=a.display, username=local, domain=domain)


def build_message(message: Outbound, sender: str, domain: str) -> Built:
    """The MIME message for ``message`` from ``sender``. InvalidAddress (the recipient's) or
    InvalidSenderAddress (a setting) when an address is malformed — before any connection."""
    to = parse_recipient(message.recipient, message.abonent_name)
    frm = parse_sender(sender)
    utf8 = to.smtputf8 or frm.smtputf8
    policy = POLICY_UTF8 if utf8 else POLICY_7BIT
    msg = EmailMessage(policy=policy)
    msg["From"] = _header(frm, utf8)
    msg["To"] = _header(to, utf8)
    msg["Subject"] = one_line(message.subject)
    msg["Date"] = formatdate(localtime=True)
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "", message.message_id) or "msg"
    msg["Message-ID"] = f"<{safe_id}@{domain or 'localhost'}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Mailer"] = "msgd"
    msg.set_content(message.body, subtype="plain", charset="utf-8")
    if message.html:
        msg.add_alternative(message.html, subtype="html", charset="utf-8")
    return Built(msg, msg.as_bytes(policy=policy), frm, to)


def check_size(data: bytes, limit: int) -> None:
    """ContentError when the built message is larger than ``limit`` bytes."""
    if len(data) > limit:
        raise ContentError(
            f"the e-mail is {len(data):,} bytes, more than max_bytes {limit:,} — the text is far longer than"
            " a notification should be: check the template and the event's data, or raise max_bytes"
            " in the e-mail settings"
        )
