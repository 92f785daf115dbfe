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

Settings: services/senders/push/settings.py (VAPID keys read by services/senders/push/vapid.py).

Outcomes: 404/410 mean the browser unsubscribed (permanent); 429 is retried
after ``Retry-After``; 5xx and network failures are transient; any other 4xx is
permanent with the push service's own text.
"""

from __future__ import annotations

import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from msgd import safejson
from msgd.envelope import FAULT_RECIPIENT, FAULT_UNKNOWN
from msgd.redact import register_secrets
from services.senders.base import (
    ChannelConfig,
    ContentError,
    InvalidRecipient,
    Outbound,
    PermanentError,
    SendResult,
    TransientError,
    stored_settings,
)
from services.senders.http_errors import network_error
from services.senders.net import (
    HttpSender,
    excerpt,
    host_port,
    http_options,
    retry_after,
)
from services.senders.push.settings import PushSettings
from services.senders.push.vapid import load_private_key, public_key_b64

__all__ = ["MAX_PAYLOAD", "PushSender", "load_private_key", "payload", "public_key_b64"]

log = structlog.get_logger("msgd.sender.push")

VAPID_EXPIRY = 12 * 3600  # seconds; RFC 8292 allows at most 24 h
# One aes128gcm record of at most 4096 bytes: 86 header + plaintext + 1 padding delimiter + 16 tag.
MAX_PAYLOAD = 3993


# -- subscriptions as recipients ------------------------------------------------------------


def usable_subscription(item: Any) -> dict[str, Any] | None:
    """The usable part of one subscription (a mapping, or the same as JSON text), else None: what
    the sender sends to, and what the admin's test message form takes."""
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
    sub = usable_subscription(recipient)
    if sub is None:
        raise PermanentError("the push recipient is not a browser subscription (endpoint and keys p256dh, auth)",
                             fault=FAULT_RECIPIENT)
    return sub


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
    title = "push"
    contact_key = "push"
    settings_model = PushSettings

    user_agent = "msgd-push/1"

    @classmethod
    def recipients(cls, contacts: dict[str, Any]) -> list[str]:
        value = contacts.get(cls.contact_key)
        items = value if isinstance(value, list) else [value] if value else []
        out: list[str] = []
        for item in items:
            sub = usable_subscription(item)
            if sub is not None:
                encoded = encode_recipient(sub)
                if encoded not in out:
                    out.append(encoded)
        return out

    def _session(self, verify: bool | str) -> requests.Session:
        """One per thread and certificate setting (WebPusher uses the session's verify)."""
        return self._sessions.get(repr(verify), verify=verify)

    def _settled(self, config: ChannelConfig) -> _Target:
        """The checked settings and the loaded VAPID key, once per settings rather than per
        subscription (settings that fail are checked again with each message)."""
        target: _Target | None = config.memo.get("push:target")
        if target is None:
            register_secrets(str(v) for v in config.secrets.values() if v not in (None, ""))
            s = stored_settings(PushSettings, config, "push")
            timeout, verify = http_options(s, self.settings.http_timeout, "push")
            assert s.vapid_private_key is not None and s.vapid_subject is not None  # required by the model
            key = load_private_key(s.vapid_private_key.get_secret_value())
            target = _Target(Vapid02(private_key=key), s.vapid_subject, s.ttl, timeout, verify)
            config.memo["push:target"] = target
        return target

    def check_recipient(self, message: Outbound, config: ChannelConfig) -> None:
        """A subscription whose keys cannot encrypt a message fails before an outbox file is
        written, as it fails before any request when sent (``_send``)."""
        sub = decode_recipient(message.recipient)
        try:
            pusher = WebPusher(sub)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pusher.receiver_key or b"")
            usable = bool(pusher.auth_key)
        except (WebPushException, ValueError, binascii.Error, TypeError, IndexError):
            usable = False
        if not usable:
            raise InvalidRecipient("the subscription's keys cannot be used to encrypt the message — the browser"
                                   " has to subscribe again")

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
                f" HTTP {status}: {text}", fault=FAULT_RECIPIENT, cause="subscription-gone",
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
