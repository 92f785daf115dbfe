"""SMTP and network failures of the e-mail channel in plain words (what happened, what to do).

Every exception the session can raise maps to a reason: smtplib's replies (``SMTPResponseException``
and its kin quote the server's code and text; 4xx is transient, 5xx permanent), its other
exceptions, socket and DNS errors, TLS errors (ssl), and text that SMTP cannot carry
(``UnicodeError``). :func:`after_data` words a failure after the message's final dot was sent:
the server may have accepted it (``MaybeSent``). Secrets are masked in every reason.

Fault classes of permanent failures: a refused recipient (550 user unknown, 5.1.x/5.2.x) is the
recipient's, a message refused as too large or for its content (552, 5.3.4, 5.6.x, spam) the
content's, a refused login, sender or relay (535, 5.7.x) and unusable settings the gateway's
(the operator's SMTP account), an unexplained 5xx unknown.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from typing import Any

import structlog

from msgd.envelope import FAULT_CONTENT, FAULT_GATEWAY, FAULT_RECIPIENT, FAULT_UNKNOWN
from msgd.redact import redact_text
from services.senders.base import MaybeSent, PermanentError, SendError, TransientError

log = structlog.get_logger("msgd.sender.email")


def _text(raw: Any) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


def _server_says(code: int | None, raw: Any) -> str:
    return f"{code} {_text(raw)}".strip()


_CODE_BY_FAULT = {FAULT_RECIPIENT: "recipient.refused", FAULT_UNKNOWN: "unknown.failure"}


def _by_code(code: int | None, reason: str, fault: str = FAULT_GATEWAY, why: str = "") -> SendError:
    """4xx transient, anything else permanent with ``fault`` (RFC 5321 section 4.2.1); ``why``
    the reason code of a permanent one (default by the fault class)."""
    if code is not None and 400 <= code < 500:
        return TransientError(reason, code="transient.unavailable")
    return PermanentError(reason, fault=fault, code=why or _CODE_BY_FAULT.get(fault, "") or (
        "content.refused" if fault == FAULT_CONTENT else "gateway.refused"))


_ENHANCED = re.compile(r"\b5\.(\d{1,3})\.(\d{1,3})\b")


def _rcpt_fault(code: int | None, text: str) -> str:
    """Whose fault a refused recipient is (RFC 3463 enhanced codes when the server sends them):
    relaying or login refused (5.7.x, "relay") is the operator's server; a bad, unknown, disabled
    or full mailbox (5.1.x, 5.2.x, or 550/551/552/553 without more) is the recipient's."""
    enhanced = _ENHANCED.search(text)
    low = text.lower()
    if "relay" in low or "auth" in low or (enhanced is not None and enhanced[1] == "7"):
        return FAULT_GATEWAY
    if enhanced is not None and enhanced[1] in ("1", "2"):
        return FAULT_RECIPIENT
    if code in (550, 551, 552, 553):
        return FAULT_RECIPIENT
    return FAULT_UNKNOWN


def _data_fault(code: int | None, text: str) -> str:
    """Whose fault a refused message is: too large (552, 5.3.4) or refused for its content
    (5.6.x, spam) is the content's; anything else unknown."""
    enhanced = _ENHANCED.search(text)
    if code == 552 or (enhanced is not None and (enhanced[0] == "5.3.4" or enhanced[1] == "6")):
        return FAULT_CONTENT
    return FAULT_CONTENT if "spam" in text.lower() else FAULT_UNKNOWN


def classify(exc: BaseException, where: str, host: str, timeout: float, recipient: str = "") -> SendError:
    """A plain-words outcome for an SMTP / network failure, secrets masked. ``where`` is the
    server's host:port, ``host`` its name (DNS failures), ``timeout`` seconds."""
    return _masked(_classify(exc, where, host, timeout, recipient))


def after_data(exc: BaseException, where: str, timeout: float) -> SendError:
    """The session failed after the message and its final dot were sent, before the server's
    reply: it may have accepted (and will deliver) the message."""
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        what = f"did not confirm the message within {timeout:g} s after it was sent"
    else:
        what = "closed the connection after the message was sent, before confirming it"
    return _masked(MaybeSent(f"SMTP server {where} {what} — it may have been delivered"))


def _masked(err: SendError) -> SendError:
    err.reason = redact_text(err.reason)
    err.args = (err.reason,)
    return err


def _classify(exc: BaseException, where: str, host: str, timeout: float, recipient: str) -> SendError:
    return (_replied(exc, where, recipient) or _smtp(exc, where, timeout)
            or _network(exc, where, host, timeout) or _other(exc, where))


def _replied(exc: BaseException, where: str, recipient: str) -> SendError | None:
    """The server answered with an error code: its words, 4xx transient, 5xx permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        rcpt, (code, raw) = next(iter(exc.recipients.items()), (recipient, (None, b"")))
        says = _server_says(code, raw)
        fault = _rcpt_fault(code, says)
        hint = " — check the subscriber's e-mail address" if fault == FAULT_RECIPIENT else ""
        return _by_code(code, f"SMTP server rejected recipient {rcpt}: {says}{hint}", fault)
    if not isinstance(exc, smtplib.SMTPResponseException):
        return None
    says = _server_says(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        if 400 <= exc.smtp_code < 500:
            return TransientError(f"SMTP login temporarily failed ({says})", code="transient.unavailable")
        return PermanentError(f"SMTP login failed ({says}) — check login and password", code="gateway.credentials")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _by_code(exc.smtp_code, f"SMTP server rejected sender {exc.sender!s}: {says} — check the sender address",
                        why="gateway.sender_name")
    if isinstance(exc, smtplib.SMTPDataError):
        return _by_code(exc.smtp_code, f"SMTP server rejected the message: {says}", _data_fault(exc.smtp_code, says))
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPHeloError):
        return _by_code(exc.smtp_code, f"SMTP server {where} refused the session: {says}")
    return _by_code(exc.smtp_code, f"SMTP server {where} answered {says}", FAULT_UNKNOWN)


def _smtp(exc: BaseException, where: str, timeout: float) -> SendError | None:
    """smtplib's own failures without a reply code."""
    text = str(exc).lower()
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if "starttls" in text:
            return PermanentError(f"SMTP server {where} does not offer STARTTLS — set security to ssl or none", code="gateway.bad_setting")
        if "auth" in text:
            return PermanentError(
                f"SMTP server {where} does not accept a login (no AUTH) — clear the login, or use ssl/starttls"
            , code="gateway.bad_setting")
        return PermanentError(f"SMTP server {where} does not support an extension the message needs"
                              f" ({_text(exc) or 'not named'}) — use another SMTP server", code="gateway.bad_setting")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in text:
            return TransientError(f"SMTP server {where} did not answer within {timeout:g} s", code="transient.timeout")
        return TransientError(f"SMTP server {where} closed the connection unexpectedly — retried later", code="transient.network")
    if isinstance(exc, smtplib.SMTPException):
        if "authentication method" in text:
            return PermanentError(f"SMTP server {where} offers no login method msgd supports (PLAIN, LOGIN,"
                                  " CRAM-MD5) — clear the login, or use another server", code="gateway.bad_setting")
        if "auth" in text and "not supported" in text:
            return PermanentError(
                f"SMTP server {where} does not accept a login (no AUTH) — clear the login, or use ssl/starttls"
            , code="gateway.bad_setting")
        return TransientError(f"the SMTP session with {where} failed: {_text(exc) or 'no details'}", code="transient.failure")
    return None


def _network(exc: BaseException, where: str, host: str, timeout: float) -> SendError | None:
    if isinstance(exc, socket.gaierror):
        return TransientError(f"cannot resolve SMTP host '{host}' ({exc.strerror or 'no answer'}) — check DNS", code="transient.dns")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            f"TLS certificate of the SMTP server {where} could not be verified: "
            f"{getattr(exc, 'verify_message', None) or 'not trusted'} — fix the certificate or set ca_bundle"
        , code="gateway.tls")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return TransientError(f"SMTP server {where} closed the connection during the TLS handshake", code="transient.network")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(
            f"TLS handshake with the SMTP server {where} failed ({getattr(exc, 'reason', None) or 'no protocol in common'}) —"
            " check the security setting: ssl for port 465, starttls for 587, none for a plain relay"
        , code="gateway.tls")
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"SMTP server {where} refused the connection (is it running? firewall?)", code="transient.connection_refused")
    if isinstance(exc, TimeoutError):
        return TransientError(f"SMTP server {where} did not answer within {timeout:g} s", code="transient.timeout")
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return TransientError(f"SMTP server {where} dropped the connection — retried later", code="transient.network")
    if isinstance(exc, OSError):
        return TransientError(f"network error talking to SMTP server {where}:"
                              f" {exc.strerror or 'the connection failed'} — check the address and the network", code="transient.network")
    return None


def _other(exc: BaseException, where: str) -> SendError:
    if isinstance(exc, UnicodeError):
        return PermanentError("the e-mail or the SMTP login has non-ASCII characters where the SMTP server"
                              " accepts only ASCII (a login or password with Cyrillic letters, or an address"
                              " without SMTPUTF8 support) — check the login, the password and the addresses", code="gateway.bad_setting")
    if isinstance(exc, ValueError):
        return PermanentError(f"the e-mail cannot be built: {_text(exc)} — check the sender and recipient"
                              " addresses and the subject", code="content.refused")
    log.warning("unexpected failure sending an e-mail", server=where, exc_info=exc)
    return TransientError(f"sending the e-mail via {where} failed in an unexpected way — the sender's log"
                          " has the details; retried later", code="transient.failure")
