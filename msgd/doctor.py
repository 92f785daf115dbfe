"""``msgd doctor``: check the broker, the database and every configured gateway, in plain words.

The manual's debugging section as a command: "SSL certificate problem",
"Connection refused", "Name or service not known", SMTP 550/553 and "chat
not found" each become a finding that says what is wrong and what to do.
Nothing is sent to a subscriber: SMTP goes as far as MAIL FROM (then RSET),
Telegram is asked getMe.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from msgd.redact import redact_text, redact_url, register_secrets
from msgd.settings import Settings
from services.senders.base import PermanentError, SendError

OK, WARN, PROBLEM = "ok", "warning", "problem"
EXPIRY_WARN_DAYS = 14
TIMEOUT = 5.0


@dataclass
class Finding:
    level: str  # ok | warning | problem
    subject: str  # what was checked: "broker", "operator best: sms gateway smsc.ru:443"
    text: str  # what was found, in plain words
    fix: str = ""  # what to do about it

    def render(self) -> str:
        mark = {OK: "ok     ", WARN: "WARNING", PROBLEM: "PROBLEM"}[self.level]
        line = f"{mark} {self.subject}: {redact_text(self.text)}"
        return line + (f"\n        → {redact_text(self.fix)}" if self.fix else "")


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


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """The e-mail sender's TLS context for requests-style ``verify`` (a path = that CA bundle);
    PermanentError when the bundle cannot be loaded."""
    from services.senders.email.sender import _Target, _tls_context

    ca_bundle = verify if isinstance(verify, str) else ""
    return _tls_context(_Target(host="", port=0, security="ssl", login="", password="", timeout=TIMEOUT,
                                verify=bool(verify), ca_bundle=ca_bundle, dialogue=False))


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
        ctx = _tls_context(verify)
    except PermanentError as exc:
        return [Finding(PROBLEM, subject, exc.reason, "point ca_bundle at a readable PEM file")]
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


# -- channels: settings are read by the senders' own code, so doctor checks what they would use --
SETTINGS_FIX = ("fix this channel's settings (in the config file, then `msgd config load`, or in the web"
                " admin) and run `msgd doctor` again")


def invalid(subject: str, exc: BaseException) -> Finding:
    """The sender would refuse these settings (its PermanentError, or a ValueError)."""
    reason = exc.reason if isinstance(exc, SendError) else str(exc.args[0] if exc.args else exc)
    return Finding(PROBLEM, subject, f"settings are invalid: {reason}", SETTINGS_FIX)


def _quick_settings(settings: Settings | None) -> Settings:
    # domain given: the default would look up this machine's FQDN, which the resolvers do not read.
    return settings if settings is not None else Settings(domain="localhost")


def check_http(subject: str, url: str, params: dict[str, Any]) -> list[Finding]:
    """An HTTP gateway: ``params`` give ``verify`` / ``ca_bundle`` as the HTTP senders read them."""
    from services.senders.net import verify_setting

    parts: SplitResult | None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # "http://[bad", or a port that is not a number
        parts, host, port = None, None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        return [Finding(PROBLEM, subject, f"the address {url!r} is not an http(s) URL",
                        "set url to the gateway's address, e.g. https://smsc.ru/sys/send.php")]
    try:
        verify = verify_setting(params, "SMS")
    except PermanentError as exc:
        return [invalid(subject, exc)]
    port = port or (443 if parts.scheme == "https" else 80)
    found = check_endpoint(subject, host, port, parts.scheme == "https", verify)
    if not any(f.level == PROBLEM for f in found):
        found.append(Finding(OK, subject, f"{host}:{port} is reachable"))
    return found


def check_sms(subject: str, params: dict[str, Any]) -> list[Finding]:
    from services.senders.net import http_options
    from services.senders.sms.presets import effective_settings

    try:
        merged = effective_settings(params)
        http_options(merged, TIMEOUT, "SMS")  # the sender refuses a bad timeout, verify or ca_bundle
    except (SendError, ValueError) as exc:
        return [invalid(subject, exc)]
    url = str(merged.get("url") or "").strip()
    if not url:
        return [Finding(PROBLEM, subject, "no gateway address (url) is set", "set url, or a preset")]
    return check_http(subject, url, merged)


def check_smtp(subject: str, params: dict[str, Any], secrets: dict[str, Any], sender: str = "",
               settings: Settings | None = None) -> list[Finding]:
    from services.senders.base import ChannelConfig
    from services.senders.email.sender import _target, _tls_context

    # As the sender does: every secret but the login (often the sender address) is masked.
    register_secrets(v for k, v in secrets.items() if k != "login")
    try:
        t = _target(ChannelConfig("email", params, secrets), _quick_settings(settings))
        ctx = _tls_context(t) if t.security != "none" else None
    except (SendError, ValueError) as exc:
        return [invalid(subject, exc)]
    host, port, security, login = t.host, t.port, t.security, t.login
    found: list[Finding] = []
    if not str(params.get("host") or "").strip():
        found.append(Finding(WARN, subject, f"no SMTP server (host) is set: the sender uses {t.where}",
                             "set host, port and security, unless a mail relay on this machine is meant"))
    if params.get("login") and not login:
        found.append(Finding(WARN, subject, "login is among the plain settings, where the sender does not"
                             " read it: it sends without logging in",
                             "give login as a secret (msgd config load and the web admin store it so)"))
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


def check_telegram(subject: str, params: dict[str, Any], secrets: dict[str, Any],
                   settings: Settings | None = None) -> list[Finding]:
    import requests

    from services.senders.base import ChannelConfig
    from services.senders.telegram.sender import _secrets, _target

    config = ChannelConfig("telegram", params, secrets)
    register_secrets(_secrets(config))
    try:
        t = _target(config, _quick_settings(settings))
    except (SendError, ValueError) as exc:
        return [invalid(subject, exc)]
    register_secrets([t.token.split(":")[-1]])
    found: list[Finding] = []
    if not t.proxy:  # through a proxy, only the proxy's view of the network matters
        parts = urlsplit(t.api_url)
        found = check_endpoint(subject, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80),
                               parts.scheme == "https", t.verify)
        if any(f.level == PROBLEM for f in found):
            return found
    try:
        with requests.Session() as session:
            session.trust_env = False  # as the sender: only the settings choose a proxy
            resp = session.post(t.url("getMe"), timeout=TIMEOUT, verify=t.verify, proxies=t.proxies)
        data = resp.json()
    except (requests.RequestException, ValueError) as exc:
        return [*found, Finding(PROBLEM, subject, f"getMe failed: {type(exc).__name__}: {exc}",
                                "check api_url and proxy")]
    if resp.status_code == 401 or not data.get("ok"):
        return [*found, Finding(PROBLEM, subject, f"Telegram refuses the token ({resp.status_code}"
                                f" {data.get('description', '')})",
                                "the token is wrong or revoked: get it again from @BotFather")]
    bot = (data.get("result") or {}).get("username", "?")
    return [*found, Finding(OK, subject, f"bot @{bot} answers getMe; subscribers must press Start in"
                            f" @{bot} first, or messages fail with \"chat not found\"")]


# -- broker, database, configuration -----------------------------------------------------------------
def check_broker(settings: Settings) -> list[Finding]:
    from msgd import metrics, topology
    from services.senders import live_channels

    ns = settings.namespace
    queues = [*topology.router_queues(ns), *topology.render_queues(ns), topology.status_queue(ns)]
    for ch in live_channels():
        queues += topology.sender_queues(ns, ch)
    parking = topology.parking_queue(ns)
    subject = "broker"
    try:
        broker = metrics.quick_broker(settings)
    except Exception as exc:  # noqa: BLE001
        return [Finding(PROBLEM, subject, f"cannot use MSGD_BROKER_URL: {exc}", "check MSGD_BROKER_URL")]
    found: list[Finding] = []
    try:
        missing: list[str] = []
        for q in [*queues, parking]:
            try:
                depth = broker.queue_depths([q])[q]
            except Exception as exc:  # noqa: BLE001
                if not found and not missing and _is_connection_error(exc):
                    return [Finding(PROBLEM, subject, f"cannot connect to {broker.describe()}: {exc}",
                                    "start RabbitMQ, or fix host, port, user, password and vhost in"
                                    " MSGD_BROKER_URL")]
                missing.append(q)
                continue
            if q == parking and depth:
                found.append(Finding(WARN, subject, f"{depth} message(s) are parked in {parking}",
                                     "read why (msgd parking list, or the x-msgd-reason header in the"
                                     " RabbitMQ console), fix the cause, then replay them"))
        if missing:
            found.append(Finding(PROBLEM, subject, f"queues missing: {', '.join(missing)}",
                                 "run `msgd setup` (declares exchanges and queues)"))
        if not any(f.level == PROBLEM for f in found):
            found.insert(0, Finding(OK, subject, f"connected to {broker.describe()}; {len(queues) + 1} queues"
                                    " present"))
        if len(settings.broker_urls) > 1:
            from msgd.broker.nodes import unreachable_nodes

            found += [Finding(WARN, subject, f"node {url} does not answer ({why}); the stages use the others",
                              "start that node again, or take it off MSGD_BROKER_URL if it left the cluster")
                      for url, why in unreachable_nodes(settings)]
    finally:
        broker.close()
    return found


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or "connect" in type(exc).__name__.lower() or "connection" in str(exc).lower()


def check_database(settings: Settings) -> list[Finding]:
    from msgd import store

    subject = "database"
    where = redact_url(settings.effective_database_url)
    try:
        store.setup(settings.effective_database_url)
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return [Finding(PROBLEM, subject, f"cannot connect to {where}: {exc}",
                        "start the database, or fix MSGD_DATABASE_URL")]
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return [Finding(PROBLEM, subject, f"{len(plan)} migration(s) not applied ({names}…)",
                        "run `msgd migrate` (or `msgd setup`) before starting the stages")]
    return [Finding(OK, subject, f"connected to {where}; migrations applied")]


def check_web(settings: Settings) -> list[Finding]:
    """With a real broker this is a production install: the admin's sessions must not be signed
    with the key every msgd checkout shares."""
    from django.conf import settings as django

    from msgd.store.django_settings import DEV_SECRET_KEY

    if settings.embedded or django.SECRET_KEY != DEV_SECRET_KEY:
        return []
    return [Finding(WARN, "web admin", "MSGD_SECRET_KEY is not set: sessions are signed with the"
                    " development key every msgd install shares",
                    "set MSGD_SECRET_KEY to a long random string (python3 -c 'import secrets;"
                    " print(secrets.token_urlsafe(50))') for every msgd process")]


def check_channels(settings: Settings) -> Iterator[Finding]:
    from msgd.store.cache import ConfigCache

    cache = ConfigCache(0)
    cache.refresh()
    for op in sorted(cache._operators.values(), key=lambda o: o.code):
        for channel, configs in sorted(op.channels.items()):
            for cfg in configs:
                subject = f"operator {op.code}: {channel}" + (f" #{cfg.position}" if len(configs) > 1 else "")
                if cfg.outbox:
                    yield Finding(WARN, subject, f"writes to {settings.outbox_dir} (outbox) instead of sending",
                                  "set outbox: false and fill in the gateway to send for real")
                elif channel == "sms":
                    yield from check_sms(subject, cfg.params)
                elif channel == "email":
                    yield from check_smtp(subject, cfg.params, cfg.secrets, op.email or "", settings)
                elif channel == "telegram":
                    yield from check_telegram(subject, cfg.params, cfg.secrets, settings)


def run(settings: Settings, gateways: bool = True) -> list[Finding]:
    found = [*check_broker(settings)]
    db = check_database(settings)
    found += db
    if any(f.level == PROBLEM for f in db):
        return found  # the rest reads the store
    found += check_web(settings)
    if gateways:
        found += list(check_channels(settings))
    return found


def report(findings: list[Finding]) -> tuple[str, int]:
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARN for f in findings)
    text = "\n".join(f.render() for f in findings)
    summary = (f"{problems} problem(s), {warnings} warning(s)" if problems or warnings
               else "everything msgd needs answers")
    return f"{text}\n\n{summary}\n", 1 if problems else 0
