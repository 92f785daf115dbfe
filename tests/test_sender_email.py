"""E-mail over SMTP against a real aiosmtpd server (plain, STARTTLS, SSL, AUTH)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.smtp import AuthResult, LoginPassword

from msgd.settings import Settings
from services.senders.base import (
    ChannelConfig,
    ContentError,
    MaybeSent,
    Outbound,
    PermanentError,
    TransientError,
)
from services.senders.email.sender import EmailSender
from services.senders.registry import sender_classes
from tests.support import SEND_TIMEOUT_S, SLOWER_THAN_TIMEOUT_S, free_port, port_zero_controller

SUBJECT = "Напоминание об оплате — договор №42"
BODY = "Здравствуйте, Иван!\n\nБаланс: -15 руб.\n/etc/hostname\n<b>не HTML</b>\n  отступ сохранён\n"
SENDER = "Провайдер «Ромашка» <noreply@isp.example>"
LOGIN, PASSWORD = "mailer", "Sup3r-Secret-Pw"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        # str parsing, so raw UTF-8 headers (SMTPUTF8) are read as text, not surrogates
        parsed = email.message_from_string(self.data.decode("utf-8"), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    """aiosmtpd handler: records messages, or answers with a canned error."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    mail_reply: str | None = None
    last_server: Any = None
    # after the message is received: wait this long before confirming it, or close the connection
    data_delay: float = 0.0
    data_close: bool = False

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.last_server = server
        self.received.append(Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content,
            session.peer, getattr(session.auth_data, "login", None),
        ))
        if self.data_close:
            server.transport.close()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 2.0.0 Ok: queued as ABC123"


_Controller = port_zero_controller()


@dataclass
class Smtp:
    sink: Sink
    controller: _Controller

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def drop_connections(self) -> None:
        """Close the server side of the last session, as an idle-timeout would."""
        done = threading.Event()
        transport = self.sink.last_server.transport

        def close() -> None:
            transport.close()
            done.set()

        self.controller.loop.call_soon_threadsafe(close)
        assert done.wait(5)


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == LOGIN.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=data)


def _server_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def _start(**kwargs: Any) -> Iterator[Smtp]:
    sink = Sink()
    controller = _Controller(sink, hostname="127.0.0.1", port=0, server_hostname="mx.test",
                             loop=asyncio.new_event_loop(), **kwargs)
    controller.start()
    try:
        yield Smtp(sink, controller)
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    yield from _start(authenticator=authenticator, auth_require_tls=False)


@pytest.fixture
def starttls_smtp(cert: tuple[Path, Path]) -> Iterator[Smtp]:
    yield from _start(tls_context=_server_ctx(cert), require_starttls=True, authenticator=authenticator)


@pytest.fixture
def ssl_smtp(cert: tuple[Path, Path]) -> Iterator[Smtp]:
    # aiosmtpd only counts STARTTLS as TLS for AUTH, so implicit TLS needs auth_require_tls=False
    yield from _start(ssl_context=_server_ctx(cert), authenticator=authenticator, auth_require_tls=False)


@pytest.fixture
def sender() -> Iterator[EmailSender]:
    s = EmailSender(Settings(http_timeout=5.0, domain="billing.test"))
    yield s
    s.close()


def msg(**kw: Any) -> Outbound:
    base: dict[str, Any] = dict(
        message_id="m-77", event_id="e-1", event_type="balance_low", operator_code="op1",
        channel="email", recipient="ivan@example.org", body=BODY, subject=SUBJECT, sender=SENDER,
        abonent_name="Иванов Иван",
    )
    base.update(kw)
    return Outbound(**base)


def cfg(port: int, security: str = "none", **params: Any) -> ChannelConfig:
    secrets = params.pop("secrets", {})
    return ChannelConfig(
        channel="email",
        params={"host": "127.0.0.1", "port": port, "security": security, **params},
        secrets=secrets,
    )



# -- delivery ------------------------------------------------------------------------------


def test_discovered_as_email_channel() -> None:
    assert sender_classes()["email"] is EmailSender


def test_plain_text_arrives_intact(smtp: Smtp, sender: EmailSender) -> None:
    result = sender.send(msg(), cfg(smtp.port))
    (got,) = smtp.sink.received
    assert got.mail_from == "noreply@isp.example"
    assert got.rcpt_tos == ["ivan@example.org"]
    assert got.login is None  # no login configured: no AUTH
    m = got.message
    assert m["Subject"] == SUBJECT
    assert m["From"].addresses[0].display_name == "Провайдер «Ромашка»"
    assert m["To"].addresses[0].display_name == "Иванов Иван"
    assert m["To"].addresses[0].addr_spec == "ivan@example.org"
    assert m.get_content_type() == "text/plain"
    assert m.get_content_charset() == "utf-8"
    # text/plain travels in canonical CRLF form; otherwise byte for byte what was rendered:
    # no <br>, no <div>, and the path-like line is text, not an attachment
    assert m.get_content().replace("\r\n", "\n") == BODY
    assert m["Message-ID"] == "<m-77@billing.test>" == result.gateway_message_id
    assert result.detail == "250 2.0.0 Ok: queued as ABC123"


def test_html_is_multipart_alternative(smtp: Smtp, sender: EmailSender) -> None:
    html = "<p>Здравствуйте, <b>Иван</b>!</p>"
    sender.send(msg(html=html), cfg(smtp.port))
    m = smtp.sink.received[0].message
    assert m.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content().replace("\r\n", "\n") for p in m.iter_parts()}
    assert parts == {"text/plain": BODY, "text/html": html + "\n"}


def test_login_and_password(smtp: Smtp, sender: EmailSender) -> None:
    sender.send(msg(), cfg(smtp.port, secrets={"login": LOGIN, "password": PASSWORD}))
    assert smtp.sink.received[0].login == LOGIN.encode()

    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port, secrets={"login": LOGIN, "password": "wrong-password"}))
    assert err.value.reason == (
        "SMTP login failed (535 5.7.8 Authentication credentials invalid) — check login and password"
    )
    assert err.value.fault == "gateway"


def test_starttls_with_ca_bundle(starttls_smtp: Smtp, sender: EmailSender, cert: tuple[Path, Path]) -> None:
    config = cfg(starttls_smtp.port, "starttls", ca_bundle=str(cert[0]),
                 secrets={"login": LOGIN, "password": PASSWORD})
    sender.send(msg(), config)
    assert starttls_smtp.sink.received[0].message["Subject"] == SUBJECT


def test_starttls_untrusted_certificate(starttls_smtp: Smtp, sender: EmailSender) -> None:
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(starttls_smtp.port, "starttls"))
    reason = err.value.reason
    assert reason.startswith(f"TLS certificate of the SMTP server 127.0.0.1:{starttls_smtp.port} could not be verified: ")
    assert "self-signed" in reason and reason.endswith("— fix the certificate or set ca_bundle")


def test_ssl_with_ca_bundle(ssl_smtp: Smtp, sender: EmailSender, cert: tuple[Path, Path]) -> None:
    config = cfg(ssl_smtp.port, "ssl", ca_bundle=str(cert[0]), secrets={"login": LOGIN, "password": PASSWORD})
    sender.send(msg(), config)
    sender.send(msg(message_id="m-78"), config)
    got = ssl_smtp.sink.received
    assert [r.message["Message-ID"] for r in got] == ["<m-77@billing.test>", "<m-78@billing.test>"]
    assert got[0].peer == got[1].peer  # one connection, reused


def test_ssl_verify_off(ssl_smtp: Smtp, sender: EmailSender) -> None:
    sender.send(msg(), cfg(ssl_smtp.port, "ssl", verify=False))
    assert len(ssl_smtp.sink.received) == 1


def test_ssl_against_a_plain_server_is_a_clear_permanent_error(smtp: Smtp, sender: EmailSender) -> None:
    with pytest.raises(PermanentError, match="TLS handshake with the SMTP server .* failed"):
        sender.send(msg(), cfg(smtp.port, "ssl"))


def test_internationalised_addresses(smtp: Smtp, sender: EmailSender) -> None:
    sender.send(msg(recipient="ivan@пример.рф"), cfg(smtp.port))
    sender.send(msg(recipient="иван@example.org"), cfg(smtp.port))  # server offers SMTPUTF8
    idn, utf8 = smtp.sink.received
    assert idn.rcpt_tos == ["ivan@xn--e1afmkfd.xn--p1ai"]
    assert idn.message["To"].addresses[0].addr_spec == "ivan@xn--e1afmkfd.xn--p1ai"
    assert utf8.rcpt_tos == ["иван@example.org"]
    assert utf8.message["To"].addresses[0].addr_spec == "иван@example.org"


# -- connection reuse ----------------------------------------------------------------------


def test_connection_reused_and_reopened_when_dropped(smtp: Smtp, sender: EmailSender) -> None:
    config = cfg(smtp.port)
    sender.send(msg(message_id="a"), config)
    sender.send(msg(message_id="b"), config)
    first, second = smtp.sink.received
    assert first.peer == second.peer

    smtp.drop_connections()
    sender.send(msg(message_id="c"), config)
    third = smtp.sink.received[2]
    assert third.peer != first.peer
    assert third.message["Message-ID"] == "<c@billing.test>"


# -- failures ------------------------------------------------------------------------------


def test_a_runaway_text_fails_as_content_before_any_connection(sender: EmailSender) -> None:
    port = free_port()  # nothing listens: a connection attempt would fail otherwise
    with pytest.raises(ContentError) as err:
        sender.send(msg(body="Я" * 500_000), cfg(port))
    assert err.value.reason.startswith("the e-mail is 1,3") and "bytes, more than max_bytes 1,048,576" in err.value.reason
    assert err.value.fault == "content"
    with pytest.raises(ContentError, match="more than max_bytes 2,000"):
        sender.send(msg(body="Я" * 1000), cfg(port, max_bytes=2000))
    with pytest.raises(PermanentError, match="e-mail settings cannot be used: max_bytes: must be a whole number, got 'lots'"):
        sender.send(msg(), cfg(port, max_bytes="lots"))


def test_no_confirmation_after_the_message_was_sent_may_have_been_delivered(smtp: Smtp, sender: EmailSender) -> None:
    """The server got the whole message and did not confirm it in time: maybe sent, never resent."""
    smtp.sink.data_delay = SLOWER_THAN_TIMEOUT_S
    with pytest.raises(MaybeSent) as err:
        sender.send(msg(), cfg(smtp.port, timeout=SEND_TIMEOUT_S))
    assert err.value.reason == (f"SMTP server 127.0.0.1:{smtp.port} did not confirm the message within {SEND_TIMEOUT_S:g} s"
                                " after it was sent — it may have been delivered")
    assert len(smtp.sink.received) == 1


def test_a_kept_connection_closed_after_the_message_is_not_reopened_to_send_it_again(
    smtp: Smtp, sender: EmailSender
) -> None:
    config = cfg(smtp.port)
    sender.send(msg(message_id="a"), config)  # the connection is kept for the next message
    smtp.sink.data_close = True
    with pytest.raises(MaybeSent) as err:
        sender.send(msg(message_id="b"), config)
    assert "closed the connection after the message was sent, before confirming it" in err.value.reason
    assert [r.message["Message-ID"] for r in smtp.sink.received] == ["<a@billing.test>", "<b@billing.test>"]
    smtp.sink.data_close = False
    sender.send(msg(message_id="c"), config)  # a new connection for the next message
    assert len(smtp.sink.received) == 3


def test_unknown_user_is_permanent(smtp: Smtp, sender: EmailSender) -> None:
    smtp.sink.rcpt_reply = "550 5.1.1 User unknown"
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.reason.startswith("SMTP server rejected recipient ivan@example.org: 550 5.1.1 User unknown")
    assert err.value.fault == "recipient"
    # the connection stays usable after a rejected recipient
    smtp.sink.rcpt_reply = None
    sender.send(msg(), cfg(smtp.port))
    assert len(smtp.sink.received) == 1


def test_553_recipient_is_permanent_with_the_servers_text(smtp: Smtp, sender: EmailSender) -> None:
    smtp.sink.rcpt_reply = "553 5.1.3 Bad recipient address syntax"
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.reason == (
        "SMTP server rejected recipient ivan@example.org: 553 5.1.3 Bad recipient address syntax"
        " — check the subscriber's e-mail address"
    )
    assert err.value.fault == "recipient"


@pytest.mark.parametrize("reply", ["550 5.7.1 Relaying denied", "554 5.7.1 <ivan@example.org>: Relay access denied",
                                   "530 5.7.0 Authentication required"])
def test_a_refused_relay_is_the_operators_server_not_the_recipient(smtp: Smtp, sender: EmailSender,
                                                                   reply: str) -> None:
    smtp.sink.rcpt_reply = reply
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.fault == "gateway" and "check the subscriber's" not in err.value.reason


def test_553_sender_is_permanent_with_the_servers_text(smtp: Smtp, sender: EmailSender) -> None:
    smtp.sink.mail_reply = "553 5.7.1 <noreply@isp.example>: Sender address rejected: not owned by user mailer"
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.reason == (
        "SMTP server rejected sender noreply@isp.example: 553 5.7.1 <noreply@isp.example>: Sender address"
        " rejected: not owned by user mailer — check the sender address"
    )
    assert err.value.fault == "gateway"
    assert smtp.sink.received == []


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25), ("smtps", 465)])
def test_default_port_per_security(security: str, port: int) -> None:
    from services.senders.email.sender import smtp_target
    from services.senders.email.settings import EmailSettings

    t = smtp_target(EmailSettings.parse({"host": "smtp.example", "security": security}), Settings(http_timeout=5.0))
    assert (t.port, t.security) == (port, "ssl" if security == "smtps" else security)


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_4xx_is_transient(smtp: Smtp, sender: EmailSender, where: str) -> None:
    setattr(smtp.sink, f"{where}_reply", "451 4.3.0 Try again later")
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert "451 4.3.0 Try again later" in err.value.reason


def test_554_at_data_is_permanent(smtp: Smtp, sender: EmailSender) -> None:
    smtp.sink.data_reply = "554 5.7.1 Message rejected as spam"
    with pytest.raises(PermanentError, match="rejected the message: 554 5.7.1 Message rejected as spam") as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.fault == "content"


@pytest.mark.parametrize(("reply", "fault"), [("552 5.3.4 Message size exceeds fixed limit", "content"),
                                              ("554 5.0.0 Transaction failed", "unknown")])
def test_a_refused_message_is_its_contents_fault_only_when_the_server_says_so(
    smtp: Smtp, sender: EmailSender, reply: str, fault: str
) -> None:
    smtp.sink.data_reply = reply
    with pytest.raises(PermanentError) as err:
        sender.send(msg(), cfg(smtp.port))
    assert err.value.fault == fault


def test_refused_connection(sender: EmailSender) -> None:
    port = free_port()
    with pytest.raises(TransientError) as err:
        sender.send(msg(), cfg(port))
    assert err.value.reason == f"SMTP server 127.0.0.1:{port} refused the connection (is it running? firewall?)"


def test_dns_failure(sender: EmailSender) -> None:
    config = ChannelConfig(channel="email", params={"host": "nonexistent.invalid"}, secrets={})
    with pytest.raises(TransientError) as err:
        sender.send(msg(), config)
    assert err.value.reason.startswith("cannot resolve SMTP host 'nonexistent.invalid' (")
    assert err.value.reason.endswith(") — check DNS")
    # the resolver's own words, as the manual quotes them ("Name or service not known");
    # ".invalid" never resolves (RFC 2606/6761), so this assertion always runs
    with pytest.raises(socket.gaierror) as resolver:
        socket.getaddrinfo("nonexistent.invalid", 25)
    assert resolver.value.strerror
    assert f"({resolver.value.strerror})" in err.value.reason


def test_bad_recipient_address_is_permanent(sender: EmailSender) -> None:
    with pytest.raises(PermanentError, match="^invalid e-mail address 'not-an-address': an email address must have") as err:
        sender.send(msg(recipient="not-an-address"), cfg(free_port()))
    assert err.value.fault == "recipient"
    with pytest.raises(PermanentError, match="not-an-address") as err:  # the operator's sender address
        sender.send(msg(sender="not-an-address"), cfg(free_port()))
    assert err.value.fault == "gateway"


# -- extended logging ----------------------------------------------------------------------


def test_extended_logging_shows_dialogue_without_secrets(smtp: Smtp, sender: EmailSender) -> None:
    config = cfg(smtp.port, extended_logging=True, secrets={"login": LOGIN, "password": PASSWORD})
    with structlog.testing.capture_logs() as logs:
        sender.send(msg(), config)
        with pytest.raises(PermanentError):
            sender.send(msg(), cfg(smtp.port, extended_logging=True,
                                   secrets={"login": LOGIN, "password": "Other-Secret-99"}))
    lines = [e["line"] for e in logs if e["event"] == "smtp dialogue"]
    text = "\n".join(lines)
    assert any("ehlo" in line.lower() for line in lines)
    assert any("AUTH PLAIN ***" in line for line in lines)
    assert "235" in text and "535" in text
    for secret in (PASSWORD, "Other-Secret-99"):
        assert secret not in text
        for user in (LOGIN, ""):
            token = base64.b64encode(f"{user}\0{LOGIN}\0{secret}".encode()).decode()
            assert token not in text
        assert base64.b64encode(secret.encode()).decode() not in text
    assert "not logged" in text  # the message itself is not written to the log
    assert base64.b64encode("Здравствуйте".encode()).decode()[:12] not in text
    assert all(e["log_level"] == "info" for e in logs if e["event"] == "smtp dialogue")


def test_threads_share_the_sender(smtp: Smtp, sender: EmailSender) -> None:
    threads, per_thread = 3, 4
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        try:
            start.wait(5)
            for i in range(per_thread):
                sender.send(msg(message_id=f"t{n}-{i}", subject=f"Поток {n}"), cfg(smtp.port))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(10)
    assert not errors
    got = smtp.sink.received
    assert len(got) == threads * per_thread
    assert {r.message["Message-ID"] for r in got} == {
        f"<t{n}-{i}@billing.test>" for n in range(threads) for i in range(per_thread)
    }
    assert len({r.peer for r in got}) <= threads  # one connection per thread, reused
