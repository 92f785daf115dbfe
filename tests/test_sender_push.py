"""Web push against a real local push service that decrypts what it receives.

``PushService`` plays the browser vendor's push service: for each subscription
it made (``subscribe()``: a P-256 key pair and an auth secret, as a browser
does) it checks the VAPID JWT (ES256 signature with the key in the
Authorization header, aud/sub/exp claims) and decrypts the aes128gcm payload
with the subscription's private key.  It is also the push service of
tests/test_channels_e2e.py.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from msgd.envelope import message_id
from msgd.settings import Settings
from services.senders.base import ChannelConfig, Outbound, PermanentError, TransientError
from services.senders.push.sender import MAX_PAYLOAD, PushSender, public_key_b64
from services.senders.registry import sender_classes
from tests.support import free_port, serve_http, stop_http

SUBJECT = "mailto:noc@best.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class Vapid:
    """The operator's VAPID key pair in the formats an operator may paste."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public(self) -> str:
        return b64(point(self.key))

    def pem(self, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()

    @property
    def raw(self) -> str:  # what `web-push generate-vapid-keys` prints
        return b64(self.key.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def der(self) -> str:
        der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return base64.b64encode(der).decode()


@dataclass
class Subscriber:
    """A browser's subscription: its key pair and auth secret stay here, the rest goes in the event."""

    id: str
    endpoint: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def subscription(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64(point(self.key)), "auth": b64(self.auth)}}


@dataclass
class Delivery:
    subscriber: str
    payload: dict[str, Any]
    ttl: str
    claims: dict[str, Any]
    at: float


@dataclass
class PushService:
    vapid_public: str
    subject: str = SUBJECT
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    script: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def subscribe(self, name: str) -> Subscriber:
        sub = Subscriber(name, f"{self.origin}/wpush/v2/{name}", ec.generate_private_key(ec.SECP256R1()),
                         os.urandom(16))
        self.subscribers[name] = sub
        return sub

    def payloads(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [d.payload for d in self.deliveries if d.subscriber == name]

    def wait_count(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.requests < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"push service got {self.requests} requests, expected {n}")
                self.changed.wait(left)

    def _check_vapid(self, header: str) -> dict[str, Any]:
        """RFC 8292: Authorization: vapid t=<JWT>, k=<public key>; returns the claims."""
        scheme, _, params = header.partition(" ")
        assert scheme.lower() == "vapid", f"authorization scheme {scheme!r}"
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        assert parts["k"] == self.vapid_public, "signed with another VAPID key"
        head, body, sig = parts["t"].split(".")
        assert json.loads(unb64(head)) == {"typ": "JWT", "alg": "ES256"}
        raw = unb64(sig)
        assert len(raw) == 64
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(parts["k"]))
        try:
            public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AssertionError("bad VAPID signature") from None
        claims: dict[str, Any] = json.loads(unb64(body))
        assert claims["aud"] == self.origin, f"aud {claims['aud']!r}"
        assert claims["sub"] == self.subject, f"sub {claims['sub']!r}"
        assert time.time() < claims["exp"] <= time.time() + 24 * 3600, "exp outside (now, now + 24 h]"
        return claims

    def _handle(self, name: str, headers: Any, body: bytes) -> tuple[int, str, dict[str, str]]:
        sub = self.subscribers.get(name)
        if sub is None:
            return 404, "no such subscription", {}
        try:
            claims = self._check_vapid(headers.get("Authorization", ""))
        except (AssertionError, KeyError, ValueError) as exc:
            self.problems.append(f"VAPID: {exc}")
            return 403, f"invalid VAPID credentials: {exc}", {}
        with self.lock:
            queue = self.script.get(name) or []
            if queue:
                return queue.pop(0)
        if headers.get("Content-Encoding") != "aes128gcm":
            self.problems.append(f"content encoding {headers.get('Content-Encoding')!r}")
            return 400, "unsupported content encoding", {}
        try:
            plain = http_ece.decrypt(body, private_key=sub.key, auth_secret=sub.auth, version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.problems.append(f"decrypt: {exc!r}")
            return 400, "cannot decrypt", {}
        with self.lock:
            self.deliveries.append(Delivery(name, json.loads(plain.decode("utf-8")), headers.get("TTL", ""),
                                            claims, time.time()))
            n = len(self.deliveries)
        return 201, "", {"Location": f"{self.origin}/m/{name}-{n}"}

    def start(self, tls: tuple[Path, Path] | None = None) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                name = self.path.rsplit("/", 1)[-1]
                status, text, extra = service._handle(name, self.headers, body)
                data = text.encode()
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with service.changed:
                    service.requests += 1
                    service.changed.notify_all()

        self.server = serve_http(Handler, tls)
        self.scheme = "https" if tls is not None else "http"
        return self

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture
def vapid() -> Vapid:
    return Vapid()


@pytest.fixture
def service(vapid: Vapid) -> Iterator[PushService]:
    s = PushService(vapid.public).start()
    yield s
    s.stop()


@pytest.fixture
def sender() -> Iterator[PushSender]:
    s = PushSender(Settings(http_timeout=5.0))
    yield s
    s.close()


def recipient(sub: Subscriber) -> str:
    (one,) = PushSender.recipients({"push": [sub.subscription]})
    return one


def msg(to: str, body: str = "Баланс: -15.00 руб. Пополните счёт 🚀", subject: str = "Низкий баланс") -> Outbound:
    return Outbound(message_id="m-1", event_id="e-1", event_type="low_balance", operator_code="best",
                    channel="push", recipient=to, body=body, subject=subject)


def cfg(private: str, **params: Any) -> ChannelConfig:
    return ChannelConfig(channel="push", params={"vapid_subject": SUBJECT, **params},
                         secrets={"vapid_private_key": private})



# -- recipients ------------------------------------------------------------------------------------


def test_discovered_as_push_channel() -> None:
    assert sender_classes()["push"] is PushSender
    assert PushSender.contact_key == "push"
    assert {"vapid_private_key", "vapid_subject", "ttl", "timeout"} <= set(PushSender.settings_model.model_fields)


def test_settings_and_key_are_worked_out_once_per_settings(
    service: PushService, sender: PushSender, vapid: Vapid
) -> None:
    config = cfg(vapid.pem())
    sender.send(msg(recipient(service.subscribe("alice"))), config)
    target = config.memo["push:target"]
    sender.send(msg(recipient(service.subscribe("bob"))), config)
    assert config.memo["push:target"] is target and len(service.deliveries) == 2
    with pytest.raises(PermanentError, match=r"push settings cannot be used: timeout: must be more than 0, got -3"):
        sender.send(msg(recipient(service.subscribe("carol"))), cfg(vapid.pem(), timeout=-3))


def test_each_subscription_is_one_recipient_with_a_stable_id() -> None:
    a = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "expirationTime": None,
         "keys": {"p256dh": "BPub", "auth": "sec"}}
    b = {"keys": {"auth": "sec2", "p256dh": "BPub2"}, "endpoint": " https://updates.push.services.mozilla.com/wpush/v2/x "}
    got = PushSender.recipients({"push": [a, b, dict(a), {"endpoint": "https://x"}, "garbage", None]})
    assert got == [
        '{"endpoint":"https://fcm.googleapis.com/fcm/send/abc","keys":{"auth":"sec","p256dh":"BPub"}}',
        '{"endpoint":"https://updates.push.services.mozilla.com/wpush/v2/x","keys":{"auth":"sec2","p256dh":"BPub2"}}',
    ]
    # the same subscription, written differently (key order, extra fields, as JSON text): the same message id
    again = PushSender.recipients({"push": [json.dumps({"keys": {"p256dh": "BPub", "auth": "sec"},
                                                        "endpoint": a["endpoint"], "expirationTime": 123})]})
    assert again == got[:1]
    assert message_id("e1", 1, "push", again[0]) == message_id("e1", 1, "push", got[0])
    assert PushSender.recipients({"push": []}) == [] and PushSender.recipients({}) == []


# -- delivery ----------------------------------------------------------------------------------------


def test_payload_is_encrypted_to_the_subscription_and_vapid_signed(
    service: PushService, sender: PushSender, vapid: Vapid
) -> None:
    sub = service.subscribe("alice")
    result = sender.send(msg(recipient(sub)), cfg(vapid.pem()))
    assert not service.problems
    (got,) = service.deliveries
    assert got.payload == {"title": "Низкий баланс", "body": "Баланс: -15.00 руб. Пополните счёт 🚀"}
    assert got.ttl == "86400"
    assert got.claims["sub"] == SUBJECT and got.claims["aud"] == service.origin
    assert result.gateway_message_id == f"{service.origin}/m/alice-1"
    assert result.detail == f"push service 127.0.0.1:{service.server.server_address[1]} accepted the message (HTTP 201)"  # type: ignore[union-attr]


@pytest.mark.parametrize("form", ["pkcs8", "sec1", "escaped", "one-line", "raw", "der"])
def test_vapid_key_formats(service: PushService, sender: PushSender, vapid: Vapid, form: str) -> None:
    key = {
        "pkcs8": vapid.pem(),
        "sec1": vapid.pem(serialization.PrivateFormat.TraditionalOpenSSL),
        "escaped": vapid.pem().replace("\n", "\\n"),
        "one-line": vapid.pem().replace("\n", " "),
        "raw": vapid.raw,
        "der": vapid.der,
    }[form]
    sub = service.subscribe("bob")
    sender.send(msg(recipient(sub)), cfg(key, ttl=60, vapid_public_key=vapid.public))
    assert not service.problems
    assert service.deliveries[0].ttl == "60"


def test_bad_vapid_settings_are_permanent_and_never_show_the_key(
    service: PushService, sender: PushSender, vapid: Vapid
) -> None:
    to = recipient(service.subscribe("carol"))
    with pytest.raises(PermanentError, match="vapid_public_key: does not belong to vapid_private_key"):
        sender.send(msg(to), cfg(vapid.raw, vapid_public_key=Vapid().public))
    with pytest.raises(PermanentError) as err:
        sender.send(msg(to), cfg("not-a-key-" + vapid.raw[:10]))
    assert "vapid_private_key: is not a VAPID key" in err.value.reason and vapid.raw[:10] not in err.value.reason
    rsa_pem = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(PermanentError, match="P-256"):
        sender.send(msg(to), cfg(rsa_pem))
    with pytest.raises(PermanentError, match=r"vapid_subject: is required: mailto:"):
        sender.send(msg(to), cfg(vapid.raw, vapid_subject=""))
    with pytest.raises(PermanentError, match="vapid_private_key: is required") as err:
        sender.send(msg(to), cfg(""))
    assert err.value.fault == "gateway"
    assert service.requests == 0


def test_the_public_key_helper_matches_what_browsers_get(vapid: Vapid) -> None:
    from services.senders.push.sender import load_private_key

    assert public_key_b64(load_private_key(vapid.raw)) == vapid.public


def test_a_long_body_is_shortened_to_fit_one_push_record(
    service: PushService, sender: PushSender, vapid: Vapid
) -> None:
    sub = service.subscribe("dave")
    result = sender.send(msg(recipient(sub), body="Длинный текст. " * 400), cfg(vapid.raw))
    (got,) = service.deliveries
    assert got.payload["body"].endswith("…") and got.payload["body"].startswith("Длинный текст.")
    assert len(json.dumps(got.payload, ensure_ascii=False, separators=(",", ":")).encode()) <= MAX_PAYLOAD
    assert "shortened" in result.detail


def test_sessions_are_reused(service: PushService, sender: PushSender, vapid: Vapid) -> None:
    to = recipient(service.subscribe("erin"))
    for _ in range(3):
        sender.send(msg(to), cfg(vapid.raw))
    assert len(service.payloads("erin")) == 3
    assert len(sender._sessions) == 1


# -- failures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_permanent(service: PushService, sender: PushSender, vapid: Vapid, status: int) -> None:
    sub = service.subscribe("frank")
    service.script["frank"] = [(status, "push subscription has unsubscribed or expired.", {})]
    with pytest.raises(PermanentError) as err:
        sender.send(msg(recipient(sub)), cfg(vapid.raw))
    port = service.server.server_address[1]  # type: ignore[union-attr]
    assert err.value.reason == (
        f"subscription is gone (the browser unsubscribed) — push service 127.0.0.1:{port} answered"
        f" HTTP {status}: push subscription has unsubscribed or expired."
    )
    assert err.value.fault == "recipient"


def test_429_is_transient_with_retry_after(service: PushService, sender: PushSender, vapid: Vapid) -> None:
    sub = service.subscribe("gina")
    service.script["gina"] = [(429, "slow down", {"Retry-After": "30"})]
    with pytest.raises(TransientError) as err:
        sender.send(msg(recipient(sub)), cfg(vapid.raw))
    assert err.value.retry_after == 30
    assert "is rate limiting (HTTP 429, asks to retry in 30 s): slow down" in err.value.reason


def test_5xx_transient_and_other_4xx_permanent_with_the_services_text(
    service: PushService, sender: PushSender, vapid: Vapid
) -> None:
    to = recipient(service.subscribe("hank"))
    service.script["hank"] = [(503, "Service Unavailable", {}), (400, "UnauthorizedRegistration", {})]
    with pytest.raises(TransientError, match="answered HTTP 503: Service Unavailable"):
        sender.send(msg(to), cfg(vapid.raw))
    with pytest.raises(PermanentError, match=r"refused the message \(HTTP 400\): UnauthorizedRegistration") as err:
        sender.send(msg(to), cfg(vapid.raw))
    assert err.value.fault == "unknown"
    # signed with a key the subscription was not made for: the service answers 403
    with pytest.raises(PermanentError, match=r"refused the VAPID signature \(HTTP 403: invalid VAPID credentials") as err:
        sender.send(msg(to), cfg(Vapid().raw))
    assert err.value.fault == "gateway"
    service.script["hank"] = [(413, "Payload Too Large", {})]
    with pytest.raises(PermanentError, match=r"too large \(HTTP 413\)") as err:
        sender.send(msg(to), cfg(vapid.raw))
    assert err.value.fault == "content"


def test_broken_subscription_keys_are_permanent(service: PushService, sender: PushSender, vapid: Vapid) -> None:
    sub = service.subscribe("ivan").subscription
    sub["keys"]["p256dh"] = b64(b"\x04" + b"\x01" * 64)  # not a point on the curve
    (to,) = PushSender.recipients({"push": [sub]})
    with pytest.raises(PermanentError, match="the subscription's keys cannot be used to encrypt the message") as err:
        sender.send(msg(to), cfg(vapid.raw))
    assert err.value.fault == "recipient"
    with pytest.raises(PermanentError, match="not a browser subscription") as err:
        sender.send(msg("+79121234567"), cfg(vapid.raw))
    assert err.value.fault == "recipient"


def test_network_failures_are_transient(sender: PushSender, vapid: Vapid) -> None:
    sub = Subscriber("x", f"http://127.0.0.1:{free_port()}/wpush/x", ec.generate_private_key(ec.SECP256R1()),
                     b"\x01" * 16)
    with pytest.raises(TransientError, match=r"push service 127\.0\.0\.1:\d+ refused the connection"):
        sender.send(msg(recipient(sub)), cfg(vapid.raw))
    sub.endpoint = "https://push.example.invalid/wpush/x"
    with pytest.raises(TransientError, match=r"cannot resolve the push service host 'push\.example\.invalid' \(DNS: "):
        sender.send(msg(recipient(sub)), cfg(vapid.raw))


def test_tls_certificate_is_checked(cert: tuple[Path, Path], sender: PushSender, vapid: Vapid) -> None:
    service = PushService(vapid.public).start(tls=cert)
    try:
        to = recipient(service.subscribe("judy"))
        with pytest.raises(PermanentError, match="TLS certificate of the push service .* could not be verified"):
            sender.send(msg(to), cfg(vapid.raw))
        sender.send(msg(to), cfg(vapid.raw, ca_bundle=str(cert[0])))
        assert len(service.payloads("judy")) == 1 and not service.problems
    finally:
        service.stop()


def test_the_outbox_refuses_the_subscriptions_a_send_refuses(service: PushService, sender: PushSender,
                                                            vapid: Vapid) -> None:
    """`make run` wrote a subscription with broken keys to the outbox as sent; a real send fails it
    as the recipient's before any request. Now both do, with the same words."""
    outbox = ChannelConfig("push", {}, {}, outbox=True)
    good = service.subscribe("olga").subscription
    sender.check_recipient(msg(PushSender.recipients({"push": [good]})[0]), outbox)  # a usable one passes
    off_curve = json.loads(json.dumps(good))
    off_curve["keys"]["p256dh"] = b64(b"\x04" + b"\x01" * 64)
    short = json.loads(json.dumps(good))
    short["keys"]["p256dh"] = "BPub"
    for sub in (off_curve, short):
        (to,) = PushSender.recipients({"push": [sub]})
        with pytest.raises(PermanentError, match="the subscription's keys cannot be used to encrypt") as err:
            sender.check_recipient(msg(to), outbox)
        assert err.value.fault == "recipient"
        with pytest.raises(PermanentError, match="the subscription's keys cannot be used to encrypt") as err:
            sender.send(msg(to), cfg(vapid.raw))
        assert err.value.fault == "recipient"
    with pytest.raises(PermanentError, match="not a browser subscription"):
        sender.check_recipient(msg("+79121234567"), outbox)
    assert service.deliveries == []
