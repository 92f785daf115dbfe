"""``msgd doctor`` for an SMTP server: its settings, the address (DNS, TCP, TLS certificate),
STARTTLS, the login, and MAIL FROM with the operator's sender address (then RSET: nothing is
sent). SMTP 550/553 at MAIL FROM is the manual's "sender refused"."""

from __future__ import annotations

import smtplib
import ssl

from msgd.redact import register_secrets
from services.senders.base import PermanentError
from services.senders.email.sender import smtp_target, tls_context
from services.senders.email.settings import EmailSettings
from services.senders.model import SettingsInvalid
from services.senders.probe import (
    OK,
    PROBLEM,
    TIMEOUT,
    WARN,
    Finding,
    ProbeRequest,
    certificate_findings,
    certificate_problem,
    check_endpoint,
    invalid,
)


def probe(req: ProbeRequest) -> list[Finding]:
    subject, sender = req.subject, req.sender
    try:
        s = EmailSettings.parse(req.values)
        # As the sender does: every secret but the login (often the sender address) is masked.
        register_secrets(v for k, v in s.secret_values().items() if k != "login")
        t = smtp_target(s, req.settings)
        ctx = tls_context(t) if t.security != "none" else None
    except (SettingsInvalid, PermanentError) as exc:
        return [invalid(subject, exc)]
    host, port, security, login = t.host, t.port, t.security, t.login
    found: list[Finding] = []
    if "host" not in s.model_fields_set:
        found.append(Finding(WARN, subject, f"no SMTP server (host) is set: the sender uses {t.where}",
                             "set host, port and security, unless a mail relay on this machine is meant"))
    found += check_endpoint(subject, host, port, security == "ssl", (t.ca_bundle or True) if t.verify else False)
    if any(f.level == PROBLEM for f in found):
        return found
    client: smtplib.SMTP | None = None
    try:
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=ctx)
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT)
        client.ehlo()
        if security == "starttls":
            if not client.has_extn("starttls"):
                return [*found, Finding(PROBLEM, subject, f"{host}:{port} does not offer STARTTLS",
                                        "use security: ssl (port 465) or the provider's submission port")]
            try:
                client.starttls(context=ctx)
            except ssl.SSLCertVerificationError as exc:
                return [*found, certificate_problem(subject, host, exc)]
            client.ehlo()
            sock = client.sock
            if t.verify and isinstance(sock, ssl.SSLSocket):
                found += certificate_findings(subject, host, sock.getpeercert())
        if login:
            if not client.has_extn("auth"):
                return [*found, Finding(PROBLEM, subject, f"{host}:{port} does not accept a login (no AUTH)",
                                        "clear the login, or use security ssl/starttls (many servers offer"
                                        " AUTH only over TLS)")]
            try:
                client.login(login, t.password)
            except smtplib.SMTPAuthenticationError as exc:
                says = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
                return [*found, Finding(PROBLEM, subject, f"login as {login} refused ({exc.smtp_code} {says})",
                                        "check login and password; some providers need an app password")]
            found.append(Finding(OK, subject, f"logged in as {login}"))
        if sender:
            code, answer = client.mail(sender)
            if code >= 500:
                text = answer.decode(errors="replace")
                found.append(Finding(PROBLEM, subject, f"the server refuses the sender {sender} ({code} {text})",
                                     "550/553 at MAIL FROM: the sender address must be one this login may"
                                     " send as — set the operator's e-mail to it"))
            client.rset()
    except smtplib.SMTPException as exc:
        return [*found, Finding(PROBLEM, subject, f"SMTP dialogue with {host}:{port} failed: {exc}",
                                "turn on extended_logging for this channel and read the dialogue in the log")]
    except OSError as exc:
        return [*found, Finding(PROBLEM, subject, f"SMTP connection to {host}:{port} failed: {exc}", "")]
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    if not any(f.level == PROBLEM for f in found):
        found.append(Finding(OK, subject, f"{host}:{port} answers ({security})"))
    return found
