"""VAPID keys (RFC 8292): the application server's P-256 key pair, in the forms operators paste.

A private key is accepted as PEM (``BEGIN PRIVATE KEY`` or ``BEGIN EC PRIVATE KEY``; newlines may
be written as ``\\n`` or lost), as the base64url raw 32-byte key that ``web-push
generate-vapid-keys`` prints, or as base64(url) DER. The public key is the base64url uncompressed
point browsers take as ``applicationServerKey``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_PEM_RE = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.DOTALL)


def b64decode(text: str) -> bytes:
    """base64url or base64, padding and whitespace optional; binascii.Error / ValueError if not."""
    raw = re.sub(r"\s+", "", text).replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def b64encode(data: bytes) -> str:
    """base64url without padding (RFC 8292's form)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, base64url raw (32 bytes) or base64 DER; ValueError saying
    what is wrong with it (never quoting it) otherwise."""
    text = text.strip().replace("\\n", "\n")
    bad = ValueError("is not a VAPID key: use the PEM file's text, or the base64url private key (32 bytes)"
                     " that web-push generate-vapid-keys prints")
    try:
        pem = _PEM_RE.search(text)
        if pem:
            body = re.sub(r"\s+", "", pem[2])
            lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
            blob = f"-----BEGIN {pem[1]}-----\n{lines}\n-----END {pem[1]}-----\n".encode()
            key: Any = serialization.load_pem_private_key(blob, password=None)
        else:
            raw = b64decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except TypeError:  # an encrypted PEM
        raise ValueError("is encrypted with a passphrase: store it unencrypted") from None
    except (ValueError, binascii.Error, UnicodeError):
        raise bad from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be an EC key on the P-256 (prime256v1) curve")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The application server key as browsers want it (base64url uncompressed point)."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64encode(point)


def is_public_key_of(public: str, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether ``public`` (base64 or base64url) is the public half of ``key``."""
    try:
        return b64decode(public) == b64decode(public_key_b64(key))
    except (ValueError, binascii.Error):
        return False
