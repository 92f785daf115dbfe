"""A far side's HTTP answer as text: one reading for the senders (services/senders/aio.py's
``Answer.text``, requests-based channels) and ``msgd doctor`` (services/senders/net.py's
``response_text``), so a report and a doctor finding quote the same words."""

from __future__ import annotations

from email.message import Message


def declared_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type header value (RFC 9110 8.3), or None when it
    names none -- unlike requests' ``Response.encoding``, which guesses ISO-8859-1 for text/*."""
    if not content_type:
        return None
    msg = Message()
    msg["Content-Type"] = content_type
    return msg.get_content_charset()


def decode_body(body: bytes, charset: str | None) -> str:
    """A far side's answer as text: the declared ``charset`` (undecodable bytes replaced, as
    requests does; an unknown charset read as UTF-8), else UTF-8, else Windows-1251 (Russian
    gateways), else Latin-1. The one reading shared by the senders and ``msgd doctor``."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            return body.decode("utf-8", errors="replace")
    for encoding in ("utf-8", "cp1251"):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return body.decode("latin-1")
