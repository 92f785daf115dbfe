"""Web push (RFC 8030) with VAPID (RFC 8292) through pywebpush.

The subscriber's browser subscriptions come with the event
(``abonent.contacts.push``: a list of ``PushSubscription.toJSON()`` objects,
``{"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}``).  Each
subscription is one recipient — one message with its own state in the log.
The recipient string is the subscription as compact JSON with sorted keys and
only ``endpoint`` and ``keys.p256dh`` / ``keys.auth`` kept (``expirationTime``
and anything else dropped), so the same subscription always gives the same
message id; ``send`` decodes it again.

The payload is encrypted (aes128gcm, RFC 8291) to the subscription's keys and
is the JSON ``{"title": subject, "body": body}``; the service worker of the
personal cabinet shows it.  A body that would not fit the 4 KB a push service
accepts is shortened (the detail says so).

Settings (``channels.push`` of an operator):

* ``vapid_private_key`` (secret) — the application server's P-256 key: PEM
  (``BEGIN PRIVATE KEY`` or ``BEGIN EC PRIVATE KEY``; newlines may be written
  as ``\\n`` or lost), the base64url raw 32-byte private key that
  ``web-push generate-vapid-keys`` prints, or base64(url) DER;
* ``vapid_public_key`` — optional; when set it must belong to the private key
  (it is the ``applicationServerKey`` the cabinet subscribed with);
* ``vapid_subject`` — ``mailto:admin@example.com`` or an ``https://`` URL;
* ``ttl`` — seconds a push service keeps a message for an offline browser
  (default 86400);
* ``timeout``, ``verify``, ``ca_bundle`` — as for the other HTTP channels.

Outcomes: 404/410 mean the browser unsubscribed (permanent); 429 is retried
after ``Retry-After``; 5xx and network failures are transient; any other 4xx is
permanent with the push service's own text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from msgd import safejson
from msgd.envelope import FAULT_RECIPIENT, FAULT_UNKNOWN
from msgd.redact import register_secrets
from services.senders.base import (
    ChannelConfig,
    ContentError,
    Outbound,
    PermanentError,
    SendResult,
    TransientError,
)
from services.senders.http_errors import network_error
from services.senders.net import (
    HttpSender,
    excerpt,
    host_port,
    http_options,
    retry_after,
)

log = structlog.get_logger("msgd.sender.push")

DEFAULT_TTL = 86400
VAPID_EXPIRY = 12 * 3600  # seconds; RFC 8292 allows at most 24 h
# One aes128gcm record of at most 4096 bytes: 86 header + plaintext + 1 padding delimiter + 16 tag.
MAX_PAYLOAD = 3993
_SUBJECT_RE = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+.*)$", re.IGNORECASE)
_PEM_RE = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.DOTALL)


# -- subscriptions as recipients ------------------------------------------------------------


def _subscription(item: Any) -> dict[str, Any] | None:
    """The usable part of one subscription (a mapping, or the same as JSON text), else None."""
    if isinstance(item, str):
        try:
            item = safejson.loads(item)  # event data: size and depth checked
        except ValueError:
            return None
    if not isinstance(item, dict):
        return None
    endpoint, keys = item.get("endpoint"), item.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        return None
    endpoint = endpoint.strip()
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not re.match(r"^https?://[^\s/]+", endpoint) or not isinstance(p256dh, str) or not isinstance(auth, str):
        return None
    if not p256dh.strip() or not auth.strip():
        return None
    return {"endpoint": endpoint, "keys": {"auth": auth.strip(), "p256dh": p256dh.strip()}}


def encode_recipient(subscription: dict[str, Any]) -> str:
    """Compact, deterministic JSON: the same subscription always gives the same message id."""
    return json.dumps(subscription, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def decode_recipient(recipient: str) -> dict[str, Any]:
    sub = _subscription(recipient)
    if sub is None:
        raise PermanentError("the push recipient is not a browser subscription (endpoint and keys p256dh, auth)",
                             fault=FAULT_RECIPIENT)
    return sub


# -- VAPID keys -----------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    raw = re.sub(r"\s+", "", text).replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, base64url raw (32 bytes) or base64 DER; PermanentError if not."""
    text = text.strip().replace("\\n", "\n")
    bad = PermanentError(
        "vapid_private_key is not a VAPID key: use the PEM file's text, or the base64url private key"
        " (32 bytes) that web-push generate-vapid-keys prints"
    )
    try:
        pem = _PEM_RE.search(text)
        if pem:
            body = re.sub(r"\s+", "", pem[2])
            lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
            blob = f"-----BEGIN {pem[1]}-----\n{lines}\n-----END {pem[1]}-----\n".encode()
            key: Any = serialization.load_pem_private_key(blob, password=None)
        else:
            raw = _b64decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except TypeError:  # an encrypted PEM
        raise PermanentError("vapid_private_key is encrypted with a passphrase: store it unencrypted") from None
    except (ValueError, binascii.Error, UnicodeError):
        raise bad from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PermanentError("vapid_private_key must be an EC key on the P-256 (prime256v1) curve")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The application server key as browsers want it (base64url uncompressed point)."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64encode(point)


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    vapid: Vapid02
    subject: str
    ttl: int
    timeout: float
    verify: bool | str


class PushSender(HttpSender):
    channel = "push"
    contact_key = "push"
    config_keys = ("vapid_public_key", "vapid_private_key", "vapid_subject", "ttl", "timeout",
                   "verify", "ca_bundle", "on_timeout")

    user_agent = "msgd-push/1"

    @classmethod
    def recipients(cls, contacts: dict[str, Any]) -> list[str]:
        value = contacts.get(cls.contact_key)
        items = value if isinstance(value, list) else [value] if value else []
        out: list[str] = []
        for item in items:
            sub = _subscription(item)
            if sub is not None:
                encoded = encode_recipient(sub)
                if encoded not in out:
                    out.append(encoded)
        return out

    def _session(self, verify: bool | str) -> requests.Session:
        """One per thread and certificate setting (WebPusher uses the session's verify)."""
        return self._sessions.get(repr(verify), verify=verify)

    def _target(self, config: ChannelConfig) -> _Target:
        p, s = config.params, config.secrets
        private = str(s.get("vapid_private_key") or "")
        if not private.strip():
            raise PermanentError("VAPID private key is not set (vapid_private_key)")
        vapid = Vapid02(private_key=load_private_key(private))
        public = str(p.get("vapid_public_key") or s.get("vapid_public_key") or "").strip()
        if public:
            try:
                matches = _b64decode(public) == _b64decode(public_key_b64(vapid.private_key))
            except (ValueError, binascii.Error):
                matches = False
            if not matches:
                raise PermanentError(
                    "vapid_public_key does not belong to vapid_private_key — browsers subscribed with"
                    " the public key, so both must come from one key pair"
                )
        subject = str(p.get("vapid_subject") or "").strip()
        if not _SUBJECT_RE.match(subject):
            shown = subject or "not set"
            raise PermanentError(
                f"vapid_subject ({shown}) must be mailto:admin@your.domain or an https:// URL"
            )
        try:
            ttl = int(p["ttl"]) if p.get("ttl") not in (None, "") else DEFAULT_TTL
        except (TypeError, ValueError):
            raise PermanentError(
                f"push ttl {p.get('ttl')!r} is not a number of seconds — set ttl to how long a push"
                f" service keeps a message for an offline browser, or leave it empty ({DEFAULT_TTL})"
            ) from None
        if ttl < 0:
            raise PermanentError("push ttl must be 0 or more seconds")
        timeout, verify = http_options(p, self.settings.http_timeout, "push")
        return _Target(vapid, subject, ttl, timeout, verify)

    def _settled(self, config: ChannelConfig) -> _Target:
        """The checked settings and the loaded VAPID key, once per settings rather than per
        subscription (settings that fail are checked again with each message)."""
        target: _Target | None = config.memo.get("push:target")
        if target is None:
            register_secrets(str(v) for v in config.secrets.values() if v not in (None, ""))
            target = config.memo["push:target"] = self._target(config)
        return target

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        return self._send(message, self._settled(config))

    def _send(self, message: Outbound, t: _Target) -> SendResult:
        sub = decode_recipient(message.recipient)
        endpoint = sub["endpoint"]
        where = host_port(endpoint)
        data, shortened = payload(message.subject, message.body)
        parts = urlsplit(endpoint)
        claims: dict[str, Any] = {"sub": t.subject, "aud": f"{parts.scheme}://{parts.netloc}",
                                  "exp": int(time.time()) + VAPID_EXPIRY}
        try:
            headers = t.vapid.sign(claims)
        except Exception:  # noqa: BLE001 - py_vapid raises its own and plain exceptions
            raise PermanentError(f"cannot sign the VAPID claims for {where} with vapid_private_key — check"
                                 " that it is a complete P-256 private key") from None
        try:
            pusher = WebPusher(sub, requests_session=self._session(t.verify))
            resp = pusher.send(data, headers, ttl=t.ttl, timeout=t.timeout, content_encoding="aes128gcm")
        except requests.RequestException as exc:
            raise network_error(exc, "push service", endpoint, t.timeout) from None
        except (WebPushException, ValueError, binascii.Error, TypeError) as exc:
            said = getattr(exc, "message", None)
            detail = f" ({said})" if isinstance(said, str) and said.strip() else ""
            raise PermanentError(
                f"the subscription's keys cannot be used to encrypt the message{detail} — the browser has to"
                " subscribe again", fault=FAULT_RECIPIENT,
            ) from None
        assert isinstance(resp, requests.Response)
        log.debug("push service answered", service=where, status=resp.status_code, message_id=message.message_id)
        status, text = resp.status_code, excerpt(resp.content.decode("utf-8", "replace")) or "(empty answer)"
        if status in (404, 410):
            raise PermanentError(
                f"subscription is gone (the browser unsubscribed) — push service {where} answered"
                f" HTTP {status}: {text}", fault=FAULT_RECIPIENT,
            )
        if status == 429:
            wait = retry_after(resp.headers.get("Retry-After"))
            hint = f", asks to retry in {wait:g} s" if wait is not None else ""
            raise TransientError(f"push service {where} is rate limiting (HTTP 429{hint}): {text}", retry_after=wait)
        if status >= 500:
            raise TransientError(f"push service {where} answered HTTP {status}: {text}")
        if status in (401, 403):
            raise PermanentError(
                f"push service {where} refused the VAPID signature (HTTP {status}: {text}) — check that"
                " vapid_private_key is the pair of the key the browsers subscribed with"
            )
        if status == 413:
            raise ContentError(f"push service {where} says the message is too large (HTTP 413): {text}")
        if status >= 300:
            raise PermanentError(f"push service {where} refused the message (HTTP {status}): {text}",
                                 fault=FAULT_UNKNOWN)
        location = resp.headers.get("Location", "")
        detail = f"push service {where} accepted the message (HTTP {status})"
        if shortened:
            detail += "; the text was shortened to fit the 4 KB push limit"
        return SendResult(gateway_message_id=location[:200], detail=detail)


def payload(subject: str, body: str) -> tuple[bytes, bool]:
    """The JSON the service worker gets, shortened to fit one push record; (bytes, shortened)."""

    def dump(text: str) -> bytes:
        return json.dumps({"title": subject, "body": text}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")

    subject = subject[:300]
    data = dump(body)
    if len(data) <= MAX_PAYLOAD:
        return data, False
    lo, hi = 0, len(body)
    while lo < hi:  # the longest prefix that fits, with an ellipsis
        mid = (lo + hi + 1) // 2
        if len(dump(body[:mid].rstrip() + "…")) <= MAX_PAYLOAD:
            lo = mid
        else:
            hi = mid - 1
    return dump(body[:lo].rstrip() + "…"), True


SENDER = PushSender
