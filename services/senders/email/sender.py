"""E-mail over SMTP: yagmail's connection, our own MIME message.

yagmail opens the connection (SSL, STARTTLS or plain), says EHLO and logs in,
but its message builder is not used: ``yagmail.Client.send`` turns a plain
string into HTML (newlines become ``<br>``, the text is wrapped in ``<div>``
and run through premailer), attaches any string that happens to name an
existing file, derives From from the login (adding ``@gmail.com`` when the
login has no ``@``), reconnects on every call and, when the server drops the
connection, sleeps 3-6 s and returns False instead of raising.  So the message
is built by services/senders/email/message.py (``email.message.EmailMessage``,
and the ``max_bytes`` limit checked before any connection) and handed to
``client.smtp.sendmail`` on yagmail's open connection.  The login name is
passed to yagmail as ``{login: login}`` so it is used as typed.  Failures are
worded by services/senders/email/errors.py; one after the message's final dot
was sent and before the server's reply is ``MaybeSent`` (the server may have
accepted it): the connection is not reused to send it again.

TLS: certificates are verified against the system CA store, or against the
``ca_bundle`` file when set; ``verify: false`` turns checking off.

Extended logging (``extended_logging``) writes the SMTP dialogue to the
structlog logger ``msgd.sender.email``: AUTH exchanges are masked and the
message itself is not logged, only its size.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from typing import Any

import structlog
import yagmail

from msgd.redact import MASK, redact_text, register_secrets
from msgd.settings import Settings
from services.senders.base import (
    ChannelConfig,
    ChannelSender,
    Outbound,
    PermanentError,
    PerThread,
    SendError,
    SendResult,
    outbox_limit,
    stored_settings,
)
from services.senders.email.address import (
    InvalidAddress,
    InvalidSenderAddress,
    email_identity,
    parse_recipient,
    split_emails,
)
from services.senders.email.errors import after_data, classify
from services.senders.email.message import Built, build_message, check_size
from services.senders.email.settings import DEFAULT_MAX_BYTES, EmailSettings

__all__ = ["EmailSender", "SmtpTarget", "build_message", "classify", "smtp_target", "tls_context"]

LOGGER = "msgd.sender.email"
_DROPPED = (smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Dialogue:
    """smtplib debug output → structlog, with credentials and message content masked."""

    debuglevel: int
    _msgd_log: Any = None
    _msgd_where = ""
    _msgd_in_auth = False
    _msgd_in_data = False
    last_data_reply: tuple[int, bytes] | None = None
    # The message and its final "." were handed to the network: from here a lost reply leaves the
    # outcome unknown (the server may have accepted it).
    msgd_dot_sent = False

    def _msgd_setup(self, dialogue: bool, where: str) -> None:
        self._msgd_where = where
        if dialogue:
            self._msgd_log = structlog.get_logger(LOGGER)
            self.debuglevel = 1  # before connect(), so the greeting is logged too

    def _print_debug(self, *args: Any) -> None:
        if self._msgd_log is None:
            return
        parts = [str(a) for a in args]
        if parts and parts[0] == "send:" and len(parts) > 1:
            if self._msgd_in_auth:
                head = parts[1].strip("'\"").split()
                parts[1] = f"AUTH {head[1]} {MASK}" if head[:1] == ["AUTH"] and len(head) > 1 else MASK
            elif self._msgd_in_data and parts[1].startswith(("b'", 'b"')):
                parts[1] = f"<message, {len(parts[1])} characters, not logged>"
        line = redact_text(" ".join(parts))
        self._msgd_log.info("smtp dialogue", server=self._msgd_where, line=line[:2000])

    def auth(self, mechanism: str, authobject: Any, *, initial_response_ok: bool = True) -> Any:
        self._msgd_in_auth = True
        try:
            return super().auth(  # type: ignore[misc]
                mechanism, authobject, initial_response_ok=initial_response_ok
            )
        finally:
            self._msgd_in_auth = False

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if self._msgd_in_data and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.msgd_dot_sent = True

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._msgd_in_data = True
        try:
            reply: tuple[int, bytes] = super().data(msg)  # type: ignore[misc]
        finally:
            self._msgd_in_data = False
        self.last_data_reply = reply
        return reply


class _SMTP(_Dialogue, smtplib.SMTP):
    def __init__(self, host: str, port: Any, *, msgd_dialogue: bool = False, **kw: Any) -> None:
        self._msgd_setup(msgd_dialogue, f"{host}:{port}")
        super().__init__(host, port, **kw)


class _SMTP_SSL(_Dialogue, smtplib.SMTP_SSL):
    def __init__(self, host: str, port: Any, *, msgd_dialogue: bool = False, **kw: Any) -> None:
        self._msgd_setup(msgd_dialogue, f"{host}:{port}")
        super().__init__(host, port, **kw)


class _Client(yagmail.Client):  # type: ignore[misc]
    """yagmail's client with the logging connection classes above."""

    @property
    def connection(self) -> type[smtplib.SMTP]:
        return _SMTP_SSL if self.ssl else _SMTP


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str
    login: str
    password: str
    timeout: float
    verify: bool
    ca_bundle: str
    dialogue: bool

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.host, self.port, self.login)

    @property
    def fingerprint(self) -> str:
        raw = repr((self.security, self.password, self.timeout, self.verify, self.ca_bundle, self.dialogue))
        return hashlib.sha256(raw.encode()).hexdigest()


def smtp_target(s: EmailSettings, settings: Settings) -> SmtpTarget:
    """Where and how to connect, from the channel's settings (``timeout`` defaults to
    MSGD_HTTP_TIMEOUT)."""
    return SmtpTarget(
        host=s.host,
        port=s.effective_port,
        security=s.security,
        login=s.login.get_secret_value() if s.login is not None else "",
        password=s.password.get_secret_value() if s.password is not None else "",
        timeout=s.timeout or float(settings.http_timeout),
        verify=s.verify,
        ca_bundle=s.ca_bundle or "",
        dialogue=s.extended_logging,
    )


def tls_context(t: SmtpTarget) -> ssl.SSLContext:
    """The TLS context for ``t``: the system's CAs or ``ca_bundle``, or no checking with
    ``verify: false``; PermanentError when the bundle cannot be loaded."""
    try:
        ctx = ssl.create_default_context(cafile=t.ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentError(f"cannot load ca_bundle {t.ca_bundle!r}: {exc}") from None
    if not t.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Conn:
    def __init__(self, client: _Client, fingerprint: str) -> None:
        self.client = client
        self.fingerprint = fingerprint

    def close(self) -> None:
        # A dead connection may fail to QUIT; it is gone anyway.
        with contextlib.suppress(Exception):
            self.client.close()


class EmailSender(ChannelSender):
    channel = "email"
    title = "e-mail"
    contact_key = "email"
    settings_model = EmailSettings
    split_contact = staticmethod(split_emails)
    contact_identity = staticmethod(email_identity)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # connections: one per thread per (host, port, login)
        self._conns: PerThread[tuple[str, int, str], _Conn] = PerThread(lambda c: c.close())

    def _connect(self, t: SmtpTarget) -> tuple[_Conn, bool]:
        """(connection, reused): an open connection for this thread, opened if needed."""
        conn = self._conns.get(t.key)
        if (
            conn is not None
            and conn.fingerprint == t.fingerprint
            and getattr(conn.client.smtp, "sock", None) is not None
        ):
            return conn, True
        if conn is not None:
            self._drop(t)
        kwargs: dict[str, Any] = {
            "timeout": t.timeout,
            "local_hostname": self.settings.domain or None,
            "msgd_dialogue": t.dialogue,
        }
        starttls: bool | dict[str, Any] = False
        if t.security == "ssl":
            kwargs["context"] = tls_context(t)
        elif t.security == "starttls":
            starttls = {"context": tls_context(t)}
        client = _Client(
            user={t.login: t.login} if t.login else None,
            password=t.password,  # never None: yagmail would ask the keyring / a terminal
            host=t.host,
            port=t.port,
            smtp_ssl=t.security == "ssl",
            smtp_starttls=starttls,
            smtp_skip_login=not t.login,
            soft_email_validation=False,
            smtp_set_debuglevel=1 if t.dialogue else 0,
            **kwargs,
        )
        client.set_logging(None)  # errors are reported by us, not printed by yagmail
        try:
            client.login()
        except BaseException:
            _Conn(client, "").close()
            raise
        return self._conns.put(t.key, _Conn(client, t.fingerprint)), False

    def _drop(self, t: SmtpTarget) -> None:
        self._conns.drop(t.key)

    def close(self) -> None:
        self._conns.close_all()
        super().close()

    # -- sending -----------------------------------------------------------------------

    def check_recipient(self, message: Outbound, config: ChannelConfig) -> None:
        parse_recipient(message.recipient)

    def check_content(self, message: Outbound, config: ChannelConfig) -> None:
        sender = message.sender.strip() or f"root@{self.settings.domain}"
        built = build_message(message, sender, self.settings.domain)
        check_size(built.data, outbox_limit(config, "max_bytes", DEFAULT_MAX_BYTES))

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        # The login is not masked: it is often the sender address, which reasons must show.
        s = stored_settings(EmailSettings, config, "e-mail")
        register_secrets(v for k, v in s.secret_values().items() if k != "login")
        t = smtp_target(s, self.settings)
        limit = s.max_bytes
        try:
            return self._send(message, t, limit)
        except SendError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a plain-words outcome
            raise classify(exc, t.where, t.host, t.timeout, message.recipient) from None

    def _send(self, message: Outbound, t: SmtpTarget, limit: int) -> SendResult:
        sender = message.sender.strip() or f"root@{self.settings.domain}"
        built = build_message(message, sender, self.settings.domain)  # addresses checked here
        check_size(built.data, limit)  # before any connection
        options = ["SMTPUTF8"] if built.smtputf8 else []
        for attempt in (1, 2):
            conn, reused = self._connect(t)
            smtp = conn.client.smtp
            try:
                if built.smtputf8:
                    smtp.ehlo_or_helo_if_needed()
                    if not smtp.has_extn("smtputf8"):
                        raise _needs_smtputf8(built, message, sender, t.where)
                smtp.last_data_reply = None
                smtp.msgd_dot_sent = False
                smtp.sendmail(built.sender.envelope, [built.recipient.envelope], built.data,
                              mail_options=options)
                break
            except SendError:
                raise
            except Exception as exc:
                if smtp.msgd_dot_sent and not isinstance(exc, smtplib.SMTPResponseException):
                    # The server had the whole message: never send it again on this account.
                    self._drop(t)
                    raise after_data(exc, t.where, t.timeout) from None
                code = getattr(exc, "smtp_code", None)
                if isinstance(exc, smtplib.SMTPRecipientsRefused):
                    code = next(iter(exc.recipients.values()), (None, b""))[0]
                # After a refused recipient / sender / message smtplib has sent RSET and the
                # connection is still good; after anything else (or 421) it is not.
                keep = isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused)
                if not keep or code == 421:
                    self._drop(t)
                # A kept connection the server dropped while idle: reconnect once.
                if reused and attempt == 1 and (isinstance(exc, _DROPPED) or code == 421):
                    continue
                raise
        reply = getattr(smtp, "last_data_reply", None)
        detail = ""
        if reply:
            detail = f"{reply[0]} {_reply_text(reply[1])}"[:200]
        return SendResult(gateway_message_id=str(built.message["Message-ID"]), detail=detail)


def _needs_smtputf8(built: Built, message: Outbound, sender: str, where: str) -> SendError:
    """An address with non-ASCII letters before the @ and a server without SMTPUTF8 (RFC 6531):
    the recipient's address cannot be reached this way, or the sender address is a setting."""
    why = (f"it has non-ASCII characters before the @, which need SMTPUTF8, and the SMTP server {where}"
           " does not offer it")
    if built.recipient.smtputf8:
        return InvalidAddress(f"invalid e-mail address {message.recipient.strip()!r}: {why}")
    return InvalidSenderAddress(f"invalid sender e-mail address {sender!r}: {why} — use an ASCII sender address")


def _reply_text(raw: Any) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())
