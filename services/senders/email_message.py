"""Building an e-mail: addresses (IDNA domains, SMTPUTF8 local parts), the MIME message, and the
size limit that keeps a runaway text from going out.

The message is ``email.message.EmailMessage``: text/plain, plus multipart/alternative text + HTML
when the message has HTML; UTF-8; headers RFC 2047 encoded (RFC 6532 UTF-8 headers when an
address needs SMTPUTF8, RFC 6531). ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`) bounds the
built message, in bytes as it goes over SMTP; a larger one fails before any connection.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, parseaddr
from typing import Any

from msgd.envelope import FAULT_RECIPIENT
from services.senders.base import ContentError, Outbound, PermanentError
from services.senders.limits import whole_number

SMTP_7BIT = SMTP.clone(cte_type="7bit")
DEFAULT_MAX_BYTES = 1024 * 1024


def _idna(addr: str) -> tuple[str, bool]:
    """(address with an IDNA domain, whether the local part still needs SMTPUTF8)."""
    local, _, domain = addr.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise PermanentError(f"e-mail domain {domain!r} is not valid") from None
    return f"{local}@{domain}", not local.isascii()


def _address(value: str, display: str = "") -> tuple[str, str]:
    """(display name, address) parsed from "Name <addr>" or a bare address."""
    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or " " in addr:
        raise PermanentError(f"{value!r} is not an e-mail address")
    return _one_line(name or display), addr


def _header(name: str, addr: str, utf8: bool) -> Address | str:
    if utf8:  # headerregistry.Address refuses a non-ASCII local part; SMTPUTF8 allows it
        return f'"{email.utils.quote(name)}" <{addr}>' if name else addr
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise PermanentError(f"{addr!r} is not a valid e-mail address ({exc})") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_message(message: Outbound, sender: str, domain: str) -> tuple[EmailMessage, str, str, bool]:
    """The MIME message plus envelope sender and recipient, and whether SMTPUTF8 is needed."""
    from_name, from_addr = _address(sender)
    env_from, utf8_from = _idna(from_addr)
    try:  # an unusable subscriber address is the recipient's fault (a sender's is the operator's)
        to_name, to_addr = _address(message.recipient, message.abonent_name)
        env_to, utf8_to = _idna(to_addr)
    except PermanentError as exc:
        exc.fault = FAULT_RECIPIENT
        raise
    utf8 = utf8_from or utf8_to
    # Without SMTPUTF8 the body is base64 / quoted-printable (7-bit safe for any relay).
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP_7BIT)
    # Without SMTPUTF8 the headers carry the ASCII (IDNA) form of a non-ASCII domain.
    msg["From"] = _header(from_name, from_addr if utf8 else env_from, utf8)
    try:
        msg["To"] = _header(to_name, to_addr if utf8 else env_to, utf8)
    except PermanentError as exc:
        exc.fault = FAULT_RECIPIENT
        raise
    msg["Subject"] = _one_line(message.subject)
    msg["Date"] = formatdate(localtime=True)
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "", message.message_id) or "msg"
    msg["Message-ID"] = f"<{safe_id}@{domain or 'localhost'}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Mailer"] = "msgd"
    msg.set_content(message.body, subtype="plain", charset="utf-8")
    if message.html:
        msg.add_alternative(message.html, subtype="html", charset="utf-8")
    return msg, env_from, env_to, utf8



def built(message: Outbound, sender: str, domain: str) -> tuple[EmailMessage, bytes, str, str, bool]:
    """(message, its bytes as sent, envelope sender, envelope recipient, SMTPUTF8 needed)."""
    msg, env_from, env_to, utf8 = build_message(message, sender, domain)
    return msg, msg.as_bytes(policy=SMTPUTF8 if utf8 else SMTP_7BIT), env_from, env_to, utf8


def max_bytes_setting(params: Mapping[str, Any]) -> int:
    """The ``max_bytes`` setting (default :data:`DEFAULT_MAX_BYTES`); PermanentError naming the
    setting when it is not a positive whole number."""
    return whole_number(params, "max_bytes", DEFAULT_MAX_BYTES, "e-mail", "bytes")


def check_size(data: bytes, limit: int) -> None:
    """ContentError when the built message is larger than ``limit`` bytes."""
    if len(data) > limit:
        raise ContentError(
            f"the e-mail is {len(data):,} bytes, more than max_bytes {limit:,} — the text is far longer than"
            " a notification should be: check the template and the event's data, or raise max_bytes"
            " in the e-mail settings"
        )
