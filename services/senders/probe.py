"""``msgd doctor``'s building blocks for a channel's probe: findings in plain words, and the
network checks every gateway shares (DNS, TCP, TLS and its certificate, an HTTP endpoint).

A channel's probe (``ChannelSpec.probe``, e.g. services/senders/email/doctor.py) gets a
:class:`ProbeRequest` for one configured slot and returns findings. Nothing is sent to a
subscriber. The manual's debugging section as checks: "SSL certificate problem", "Connection
refused", "Name or service not known" each become a finding that says what is wrong and what
to do.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from msgd.printable import printable
from msgd.redact import redact_text
from msgd.settings import Settings
from services.senders.base import SendError
from services.senders.model import SettingsInvalid

OK, WARN, PROBLEM = "ok", "warning", "problem"
NOTE = "note"  # something msgd could not check: neither "works" nor "broken"
EXPIRY_WARN_DAYS = 14
TIMEOUT = 5.0
SETTINGS_FIX = ("fix this channel's settings (in the config file, then `msgd config load`, or in the web"
                " admin) and run `msgd doctor` again")


@dataclass
class Finding:
    level: str  # ok | note | warning | problem
    subject: str  # what was checked: "broker", "operator best: sms gateway smsc.ru:443"
    text: str  # what was found, in plain words
    fix: str = ""  # what to do about it

    def render(self) -> str:
        """One line (two with a fix) for a terminal: secrets masked, and a far side's control
        characters escaped (msgd/printable.py), whatever a probe quoted."""
        mark = {OK: "ok     ", NOTE: "note   ", WARN: "WARNING", PROBLEM: "PROBLEM"}[self.level]
        line = f"{mark} {printable(self.subject, True)}: {redact_text(printable(self.text))}"
        return line + (f"\n        → {redact_text(printable(self.fix))}" if self.fix else "")


@dataclass(frozen=True)
class ProbeRequest:
    """One configured slot to probe.

    ``subject`` names it in findings ("operator best: sms #2"); ``values`` are its stored params
    and secrets together (parse them with the channel's model); ``settings`` are msgd's own
    (``http_timeout``, ``domain``); ``sender`` is the operator's sender e-mail ("" = none)."""

    subject: str
    values: Mapping[str, Any]
    settings: Settings = field(default_factory=lambda: Settings(domain="localhost"))
    sender: str = ""


def invalid(subject: str, exc: BaseException) -> Finding:
    """The channel's model (or its sender) refuses these settings."""
    if isinstance(exc, SendError):
        reason = exc.reason
    elif isinstance(exc, SettingsInvalid):
        reason = "; ".join(str(p) for p in exc.problems)
    else:
        reason = str(exc.args[0] if exc.args else exc)
    return Finding(PROBLEM, subject, f"settings are invalid: {reason}", SETTINGS_FIX)


# -- network building blocks -----------------------------------------------------------------
def check_dns(subject: str, host: str) -> Finding | None:
    """None when the name resolves; else the manual's "Name or service not known"."""
    try:
        socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return Finding(PROBLEM, subject, f"the name {host} does not resolve ({exc.strerror}: Name or service"
                       " not known)",
                       "DNS is not configured for this machine, does not answer, or gives a wrong answer:"
                       f" check /etc/resolv.conf and `getent hosts {host}`; fix the DNS server or the host name"
                       " in the settings")
    return None


def check_tcp(subject: str, host: str, port: int, timeout: float = TIMEOUT) -> Finding | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return Finding(PROBLEM, subject, f"connection refused by {host}:{port} (nothing listens there,"
                       " or a firewall rejects us)",
                       "check the port in the settings; if it is right, the provider's server is down or"
                       " blocks this machine's IP address — contact the provider")
    except TimeoutError:
        return Finding(PROBLEM, subject, f"no answer from {host}:{port} within {timeout:.0f} s",
                       "a firewall drops the connection, or the server is down: check outgoing rules for"
                       " this port, then contact the provider")
    except OSError as exc:
        return Finding(PROBLEM, subject, f"cannot connect to {host}:{port}: {exc.strerror or exc}",
                       "check the network route and the address in the settings")


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """A client TLS context for requests-style ``verify`` (a path = that CA bundle); OSError or
    ssl.SSLError when the bundle cannot be loaded."""
    ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def certificate_findings(subject: str, host: str, cert: dict[str, Any] | None,
                         now: dt.datetime | None = None) -> list[Finding]:
    """Expiry of a verified peer certificate."""
    if not cert or "notAfter" not in cert:
        return []
    expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)
    left = expires - (now or dt.datetime.now(dt.UTC))
    if left.days < EXPIRY_WARN_DAYS:
        return [Finding(WARN, subject, f"the TLS certificate of {host} expires on {expires:%Y-%m-%d}"
                        f" ({max(left.days, 0)} days left)",
                        "ask the provider to renew it; msgd will refuse the server once it has expired")]
    return [Finding(OK, subject, f"TLS certificate valid for {host} until {expires:%Y-%m-%d}")]


def certificate_problem(subject: str, host: str, exc: ssl.SSLError) -> Finding:
    reason = getattr(exc, "verify_message", "") or getattr(exc, "reason", "") or str(exc)
    return Finding(PROBLEM, subject, f"SSL certificate problem with {host}: {reason}",
                   "the server's certificate is not trusted for this name (self-signed, expired, wrong"
                   " host or a missing intermediate): fix the certificate on the server, or name its CA"
                   " with ca_bundle in the channel settings; update the system CA store"
                   " (apt-get install --reinstall ca-certificates) if a well-known CA is not trusted")


def check_tls(subject: str, host: str, port: int, verify: bool | str = True,
              timeout: float = TIMEOUT) -> list[Finding]:
    """``verify`` as requests takes it: on, off, or the path of a CA bundle to trust."""
    try:
        ctx = tls_context(verify)
    except (OSError, ssl.SSLError) as exc:
        return [Finding(PROBLEM, subject, f"cannot load ca_bundle {verify!r}: {exc}",
                        "point ca_bundle at a readable PEM file")]
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return [certificate_problem(subject, host, exc)]
    except ssl.SSLError as exc:
        return [Finding(PROBLEM, subject, f"TLS handshake with {host}:{port} failed: {exc.reason or exc}",
                        "the port may not speak TLS (plain or STARTTLS port?): check port and security")]
    except OSError as exc:
        return [Finding(PROBLEM, subject, f"TLS connection to {host}:{port} failed: {exc}", "")]
    if not verify:
        return [Finding(WARN, subject, "certificate checking is switched off (verify: false)",
                        "use ca_bundle instead, so a man in the middle cannot read the messages")]
    return certificate_findings(subject, host, cert)


def check_endpoint(subject: str, host: str, port: int, tls: bool, verify: bool | str = True) -> list[Finding]:
    """DNS, TCP and (for TLS) the certificate; an empty problem list means reachable."""
    for step in (check_dns(subject, host), check_tcp(subject, host, port)):
        if step is not None:
            return [step]
    if tls:
        return check_tls(subject, host, port, verify)
    return []


def check_http(subject: str, url: str, verify: bool | str = True, unchecked: str = "") -> list[Finding]:
    """An HTTP gateway's address: DNS, TCP and (https) its certificate, ``verify`` as requests
    takes it. Reaching it only means it accepts connections: an ``ok`` when the caller goes on to
    ask the gateway something; with ``unchecked`` (why nothing more is asked) a ``note`` that says
    the answers and credentials are not checked."""
    parts: SplitResult | None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # "http://[bad", or a port that is not a number
        parts, host, port = None, None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        return [Finding(PROBLEM, subject, f"the address {url!r} is not an http(s) URL",
                        "set url to the gateway's address, e.g. https://smsc.ru/sys/send.php")]
    port = port or (443 if parts.scheme == "https" else 80)
    found = check_endpoint(subject, host, port, parts.scheme == "https", verify)
    if not any(f.level == PROBLEM for f in found):
        reached = f"{host}:{port} accepts {'TLS' if parts.scheme == 'https' else 'TCP'} connections"
        found.append(Finding(NOTE, subject, f"{reached}; its answers and credentials are not checked: {unchecked}",
                             "the first message will tell: send one to yourself and read its status in `msgd log`")
                     if unchecked else Finding(OK, subject, reached))
    return found
