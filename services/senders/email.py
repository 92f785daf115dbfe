"""E-mail over SMTP: yagmail's connection, our own MIME message.

yagmail opens the connection (SSL, STARTTLS or plain), says EHLO and logs in,
but its message builder is not used: ``yagmail.Client.send`` turns a plain
string into HTML (newlines become ``<br>``, the text is wrapped in ``<div>``
and run through premailer), attaches any string that happens to name an
existing file, derives From from the login (adding ``@gmail.com`` when the
login has no ``@``), reconnects on every call and, when the server drops the
connection, sleeps 3-6 s and returns False instead of raising.  So the message
is built here with ``email.message.EmailMessage`` (text/plain, plus
multipart/alternative text + HTML when the message has HTML; UTF-8; headers
RFC 2047 encoded) and handed to ``client.smtp.sendmail`` on yagmail's open
connection.  The login name is passed to yagmail as ``{login: login}`` so it
is used as typed.

TLS: certificates are verified against the system CA store, or against the
``ca_bundle`` file when set; ``verify: false`` turns checking off.

Extended logging (``extended_logging``) writes the SMTP dialogue to the
structlog logger ``msgd.sender.email``: AUTH exchanges are masked and the
message itself is not logged, only its size.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, parseaddr
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
    TransientError,
)
from services.senders.net import as_bool, timeout_setting

LOGGER = "msgd.sender.email"
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
# "tls" is deliberately not an alias: some tools mean implicit TLS by it, others STARTTLS.
SECURITY_ALIASES = {"smtps": "ssl", "": "none", "plain": "none", "off": "none"}
SMTP_7BIT = SMTP.clone(cte_type="7bit")
_DROPPED = (smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Dialogue:
    """smtplib debug output → structlog, with credentials and message content masked."""

    debuglevel: int
    _msgd_log: Any = None
    _msgd_where = ""
    _msgd_in_auth = False
    _msgd_in_data = False
    last_data_reply: tuple[int, bytes] | None = None

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
class _Target:
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


def _target(config: ChannelConfig, settings: Settings) -> _Target:
    p, s = config.params, config.secrets
    security = str(p.get("security") or "none").strip().lower()
    security = SECURITY_ALIASES.get(security, security)
    if security not in DEFAULT_PORTS:
        raise PermanentError(f"unknown SMTP security {security!r} (use ssl, starttls or none)")
    try:
        port = int(p.get("port") or DEFAULT_PORTS[security])
    except (TypeError, ValueError):
        raise PermanentError(f"SMTP port {p.get('port')!r} is not a number") from None
    timeout = timeout_setting(p, settings.http_timeout, "SMTP")
    return _Target(
        host=str(p.get("host") or "localhost").strip(),
        port=port,
        security=security,
        login=str(s.get("login") or "").strip(),
        password=str(s.get("password") or ""),
        timeout=timeout,
        verify=as_bool(p.get("verify"), True),
        ca_bundle=str(p.get("ca_bundle") or ""),
        dialogue=as_bool(p.get("extended_logging")),
    )


def _tls_context(t: _Target) -> ssl.SSLContext:
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
    contact_key = "email"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # connections: one per thread per (host, port, login)
        self._conns: PerThread[tuple[str, int, str], _Conn] = PerThread(lambda c: c.close())

    def _connect(self, t: _Target) -> tuple[_Conn, bool]:
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
            kwargs["context"] = _tls_context(t)
        elif t.security == "starttls":
            starttls = {"context": _tls_context(t)}
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

    def _drop(self, t: _Target) -> None:
        self._conns.drop(t.key)

    def close(self) -> None:
        self._conns.close_all()

    # -- sending -----------------------------------------------------------------------

    def deliver(self, message: Outbound, config: ChannelConfig) -> SendResult:
        # The login is not masked: it is often the sender address, which reasons must show.
        register_secrets(v for k, v in config.secrets.items() if k != "login")
        t = _target(config, self.settings)
        try:
            return self._send(message, t)
        except SendError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a plain-words outcome
            raise classify(exc, t, message.recipient) from None

    def _send(self, message: Outbound, t: _Target) -> SendResult:
        sender = message.sender.strip() or f"root@{self.settings.domain}"
        msg, env_from, env_to, utf8 = build_message(message, sender, self.settings.domain)
        data = msg.as_bytes(policy=SMTPUTF8 if utf8 else SMTP_7BIT)
        options = ["SMTPUTF8"] if utf8 else []
        for attempt in (1, 2):
            conn, reused = self._connect(t)
            smtp = conn.client.smtp
            try:
                if utf8:
                    smtp.ehlo_or_helo_if_needed()
                    if not smtp.has_extn("smtputf8"):
                        raise PermanentError(
                            "the address has non-ASCII characters before the @ and the SMTP"
                            " server does not support SMTPUTF8"
                        )
                smtp.last_data_reply = None
                smtp.sendmail(env_from, [env_to], data, mail_options=options)
                break
            except SendError:
                raise
            except Exception as exc:
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
            detail = f"{reply[0]} {_text(reply[1])}"[:200]
        return SendResult(gateway_message_id=str(msg["Message-ID"]), detail=detail)


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
    to_name, to_addr = _address(message.recipient, message.abonent_name)
    env_from, utf8_from = _idna(from_addr)
    env_to, utf8_to = _idna(to_addr)
    utf8 = utf8_from or utf8_to
    # Without SMTPUTF8 the body is base64 / quoted-printable (7-bit safe for any relay).
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP_7BIT)
    # Without SMTPUTF8 the headers carry the ASCII (IDNA) form of a non-ASCII domain.
    msg["From"] = _header(from_name, from_addr if utf8 else env_from, utf8)
    msg["To"] = _header(to_name, to_addr if utf8 else env_to, utf8)
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


def _text(raw: Any) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


def _server_says(code: int | None, raw: Any) -> str:
    return f"{code} {_text(raw)}".strip()


def _by_code(code: int | None, reason: str, **kw: Any) -> SendError:
    if code is not None and 400 <= code < 500:
        return TransientError(reason, **kw)
    return PermanentError(reason, **kw)


def classify(exc: BaseException, t: _Target, recipient: str = "") -> SendError:
    """A plain-words outcome for any SMTP / network failure, without secrets."""
    err = _classify(exc, t, recipient)
    err.reason = redact_text(err.reason)
    err.args = (err.reason,)
    return err


def _classify(exc: BaseException, t: _Target, recipient: str) -> SendError:
    where = t.where
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        rcpt, (code, raw) = next(iter(exc.recipients.items()), (recipient, (None, b"")))
        hint = " — check the subscriber's e-mail address" if code in (550, 553) else ""
        return _by_code(code, f"SMTP server rejected recipient {rcpt}: {_server_says(code, raw)}{hint}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        says = _server_says(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            return TransientError(f"SMTP login temporarily failed ({says})")
        return PermanentError(f"SMTP login failed ({says}) — check login and password")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        says = _server_says(exc.smtp_code, exc.smtp_error)
        return _by_code(
            exc.smtp_code, f"SMTP server rejected sender {exc.sender!s}: {says} — check the sender address"
        )
    if isinstance(exc, smtplib.SMTPDataError):
        return _by_code(exc.smtp_code, f"SMTP server rejected the message: {_server_says(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPHeloError):
        return _by_code(
            exc.smtp_code, f"SMTP server {where} refused the session: {_server_says(exc.smtp_code, exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, f"SMTP server {where} answered {_server_says(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        text = str(exc).lower()
        if "starttls" in text:
            return PermanentError(f"SMTP server {where} does not offer STARTTLS — set security to ssl or none")
        if "auth" in text:
            return PermanentError(
                f"SMTP server {where} does not accept a login (no AUTH) — clear the login, or use ssl/starttls"
            )
        return PermanentError(f"SMTP server {where} does not support {exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"SMTP server {where} closed the connection unexpectedly ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        if "authentication method" in str(exc):
            return PermanentError(f"SMTP server {where} offers no login method we support ({exc})")
        return TransientError(f"SMTP error with {where}: {exc}")
    if isinstance(exc, socket.gaierror):
        return TransientError(f"cannot resolve SMTP host '{t.host}' ({exc.strerror or exc}) — check DNS")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            f"TLS certificate of the SMTP server {where} could not be verified: "
            f"{exc.verify_message or exc} — fix the certificate or set ca_bundle"
        )
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return TransientError(f"SMTP server {where} closed the connection during the TLS handshake")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(
            f"TLS handshake with the SMTP server {where} failed ({exc.reason or exc}) — check the "
            "security setting: ssl for port 465, starttls for 587, none for a plain relay"
        )
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"SMTP server {where} refused the connection (is it running? firewall?)")
    if isinstance(exc, TimeoutError):
        return TransientError(f"SMTP server {where} did not answer within {t.timeout:g} s")
    if isinstance(exc, OSError):
        return TransientError(f"network error talking to SMTP server {where}: {exc.strerror or exc}")
    if isinstance(exc, UnicodeError | ValueError):
        return PermanentError(f"cannot build the e-mail: {exc}")
    return TransientError(f"unexpected error sending e-mail via {where}: {type(exc).__name__}: {exc}")


SENDER = EmailSender
