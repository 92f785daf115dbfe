"""How an SMS gateway wants the text: the ``encoding`` setting and the ``%text_*%`` placeholders.

A gateway that turns what it gets into GSM 03.38 replaces every character it cannot encode with
"?" and still says "accepted": the subscriber gets garbage while the log says ``sent``. So the
text's encoding is a setting of the gateway, and a text that cannot be written in it fails before
any request (a content problem), never garbled:

=============  ===============================================================================
``utf-8``      (default) UTF-8, percent-encoded: what most HTTP gateways read
``cp1251``     Windows-1251 bytes, percent-encoded: gateways that read the parameter string as
               CP1251 (Cyrillic and Latin only; an emoji fails the message)
``ucs2-hex``   UTF-16BE as upper-case hex, two bytes a character (four for one outside the BMP):
               what SMPP calls UCS-2 (data_coding 8). Jasmin's ``hex-content`` with ``coding=8``
``gsm7``       GSM 03.38 (3GPP TS 23.038), one byte a septet, unpacked, the extension table
               behind ESC (0x1B), percent-encoded: gateways that pass bytes on as data_coding 0.
               A text outside the GSM alphabet (Cyrillic) fails the message
=============  ===============================================================================

Whatever the setting, ``%text_utf8%``, ``%text_cp1251%``, ``%text_ucs2%`` (UTF-16BE hex) and
``%text_gsm7%`` give the text in that encoding, for a parameter string that names it explicitly.

For a gateway that passes bytes on to an SMSC with the ``data_coding`` it is told (Jasmin's
``coding`` with ``hex-content``), ``%smpp_coding%`` and ``%text_smpp%`` pick the coding per text,
as a handset expects it (3GPP TS 23.038; SMPP 3.4 section 5.2.19): ``0`` and the GSM 03.38 septets
(one a byte, as hex) when every character is in the GSM alphabet, else ``8`` and UTF-16BE (UCS-2)
as hex. So "Balance 12.50" travels as 13 bytes of the default alphabet (160 characters a part)
and "Баланс" as UCS-2 (70 a part), never as "??????".
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from urllib.parse import quote

from services.senders.base import ContentError

ENCODINGS = ("utf-8", "cp1251", "ucs2-hex", "gsm7")

# 3GPP TS 23.038 default alphabet in code order (0x1B, the escape, is a space holder here).
_GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
              "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_CODES = {ch: i for i, ch in enumerate(_GSM_BASIC) if i != 0x1B}
_GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E,
                  "|": 0x40, "€": 0x65}


def gsm7_bytes(text: str) -> bytes:
    """The text as GSM 03.38 septets, one per byte (ESC + code for the extension table);
    ContentError naming the first characters the alphabet lacks."""
    out = bytearray()
    missing: list[str] = []
    for ch in text:
        if ch in _GSM_CODES:
            out.append(_GSM_CODES[ch])
        elif ch in _GSM_EXTENSION:
            out += bytes((0x1B, _GSM_EXTENSION[ch]))
        elif ch not in missing:
            missing.append(ch)
    if missing:
        raise _cannot("GSM 03.38 (gsm7)", missing)
    return bytes(out)


def gsm7_text(data: bytes) -> str:
    """GSM 03.38 septets (one per byte) back to text: what an SMSC reads from data_coding 0."""
    back = {v: k for k, v in _GSM_CODES.items()}
    ext = {v: k for k, v in _GSM_EXTENSION.items()}
    out, escaped = [], False
    for b in data:
        if escaped:
            out.append(ext.get(b, "?"))
            escaped = False
        elif b == 0x1B:
            escaped = True
        else:
            out.append(back.get(b, "?"))
    return "".join(out)


def _cannot(name: str, missing: list[str]) -> ContentError:
    shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return ContentError(f"the text has characters the gateway's encoding {name} cannot write ({shown}): it"
                        " would arrive garbled — set the SMS settings' encoding to ucs2-hex or utf-8 if the"
                        " gateway takes it, or change the template")


def cp1251_bytes(text: str) -> bytes:
    try:
        return text.encode("cp1251")
    except UnicodeEncodeError:
        missing = list(dict.fromkeys(ch for ch in text if not _cp1251_ok(ch)))
        raise _cannot("Windows-1251 (cp1251)", missing) from None


def _cp1251_ok(ch: str) -> bool:
    try:
        ch.encode("cp1251")
    except UnicodeEncodeError:
        return False
    return True


def ucs2_hex(text: str) -> str:
    """UTF-16BE, upper-case hex (SMPP's UCS-2; a character outside the BMP as a surrogate pair)."""
    return text.encode("utf-16-be").hex().upper()


def gsm7_fits(text: str) -> bool:
    """Whether every character is in the GSM 03.38 default alphabet or its extension table."""
    return all(ch in _GSM_CODES or ch in _GSM_EXTENSION for ch in text)


SMPP_DEFAULT, SMPP_UCS2 = 0, 8  # SMPP 3.4 data_coding: SMSC default alphabet (GSM 03.38), UCS-2


def smpp_coding(text: str) -> int:
    """SMPP ``data_coding`` for the text: 0 (GSM 03.38) when it fits the GSM alphabet, else 8 (UCS-2)."""
    return SMPP_DEFAULT if gsm7_fits(text) else SMPP_UCS2


def smpp_hex(text: str) -> str:
    """The text's bytes for :func:`smpp_coding`, as upper-case hex: GSM 03.38 septets (one a byte)
    for coding 0, UTF-16BE for coding 8 (Jasmin's ``hex-content``)."""
    if smpp_coding(text) == SMPP_DEFAULT:
        return gsm7_bytes(text).hex().upper()
    return ucs2_hex(text)


def encoded_text(text: str, encoding: str) -> str:
    """``%text%`` for the ``encoding`` setting, ready for the parameter string (percent-encoded)."""
    if encoding == "cp1251":
        return quote(cp1251_bytes(text), safe="")
    if encoding == "ucs2-hex":
        return ucs2_hex(text)
    if encoding == "gsm7":
        return quote(gsm7_bytes(text), safe="")
    return quote(text, safe="")


def text_placeholders(text: str, used: AbstractSet[str]) -> dict[str, str]:
    """The ``%text_*%`` values and ``%smpp_coding%`` the parameter string uses (already percent-encoded)."""
    out: dict[str, str] = {}
    if "text_utf8" in used:
        out["text_utf8"] = quote(text, safe="")
    if "text_cp1251" in used:
        out["text_cp1251"] = quote(cp1251_bytes(text), safe="")
    if "text_ucs2" in used:
        out["text_ucs2"] = ucs2_hex(text)
    if "text_gsm7" in used:
        out["text_gsm7"] = quote(gsm7_bytes(text), safe="")
    if "smpp_coding" in used:
        out["smpp_coding"] = str(smpp_coding(text))
    if "text_smpp" in used:
        out["text_smpp"] = smpp_hex(text)
    return out
