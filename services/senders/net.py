"""What every HTTP channel shares: settings read the same way, network failures in the same
plain words (where, and what wrapped what), and per-thread sessions."""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import ssl
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from msgd.redact import redact_text
from msgd.settings import Settings
from services.senders.base import (
    ChannelSender,
    PermanentError,
    PerThread,
    SendError,
    TransientError,
)

# -- settings -------------------------------------------------------------------------------


def as_bool(value: Any, default: bool = False) -> bool:
    """Settings forms store booleans as bools, 0/1 or strings."""
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(value)


def timeout_setting(params: Mapping[str, Any], default: float, label: str) -> float:
    """The ``timeout`` setting in seconds (``default`` when empty); PermanentError naming the
    setting unless it is a positive number (a negative one would make requests raise ValueError)."""
    value = params.get("timeout")
    if value is None or (isinstance(value, str) and not value.strip()):
        return float(default)
    try:
        timeout = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        timeout = math.nan
    if not (timeout > 0 and math.isfinite(timeout)):
        raise PermanentError(
            f"{label} timeout {value!r} is not a positive number of seconds — set timeout to the"
            f" seconds to wait for an answer (e.g. 10), or leave it empty for the default ({default:g} s)"
        )
    return timeout


def verify_setting(params: Mapping[str, Any], label: str) -> bool | str:
    """What requests' ``verify`` gets: ``verify`` (default on) and ``ca_bundle`` (a PEM file)."""
    verify: bool | str = as_bool(params.get("verify"), True)
    bundle = str(params.get("ca_bundle") or "").strip()
    if verify and bundle:
        if not os.path.exists(bundle):
            raise PermanentError(
                f"{label} ca_bundle file {bundle!r} does not exist — set ca_bundle to the path of a PEM"
                " file with the CA certificate to trust, or leave it empty for the system's CAs"
            )
        verify = bundle
    return verify


def http_options(params: Mapping[str, Any], default_timeout: float, label: str) -> tuple[float, bool | str]:
    """(timeout, verify) from a channel's ``timeout``, ``verify`` and ``ca_bundle`` settings;
    PermanentError naming the setting when one is unusable. ``label`` names the channel."""
    return timeout_setting(params, default_timeout, label), verify_setting(params, label)


# -- plain words ----------------------------------------------------------------------------


def excerpt(text: str, limit: int = 200) -> str:
    """A far side's answer on one line, shortened: what reasons quote."""
    return " ".join(text.split())[:limit]


def host_port(url: str) -> str:
    """host:port of a URL: never its path or query, which may carry a password or a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def scheme_host(url: str) -> str:
    """scheme://host[:port] of a URL, "" when it has no scheme or host: never its user,
    password, path or query (a gateway may carry an API key in any of them)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return ""
    if not parts.scheme or not host:
        return ""
    try:
        port = parts.port
    except ValueError:
        port = None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (args, __cause__, urllib3's .reason)."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nested = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))


def find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` inside ``exc``."""
    return next((e for e in causes(exc) if isinstance(e, kind)), None)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def network_error(exc: requests.RequestException, service: str, url: str, timeout: float,
                  proxy: str = "", tls_hint: str = "fix the certificate or set ca_bundle",
                  host_label: str = "") -> SendError:
    """A requests failure as a plain-words outcome; names host:port (or scheme://host) only,
    never the URL's path or query.  ``service`` names the far side ("SMS gateway");
    ``host_label`` is how a DNS failure names its host (default "the <service> host")."""
    where = host_port(url)
    host = where.rsplit(":", 1)[0]
    if isinstance(exc, requests.exceptions.SSLError):
        cert = find(exc, ssl.SSLCertVerificationError)
        if isinstance(cert, ssl.SSLCertVerificationError):
            detail = cert.verify_message or str(cert)
            return PermanentError(
                f"TLS certificate of the {service} {where} could not be verified: {detail} — {tls_hint}"
            )
        if find(exc, ssl.SSLEOFError) or find(exc, ssl.SSLZeroReturnError):
            return TransientError(f"{service} {where} closed the connection during the TLS handshake")
        inner = find(exc, ssl.SSLError)
        detail = getattr(inner, "reason", None) or type(inner or exc).__name__
        return PermanentError(f"TLS handshake with the {service} {where} failed ({detail})"
                              " — check http/https and the port in the address")
    if isinstance(exc, requests.exceptions.ProxyError):
        shown = host_port(proxy) if proxy else "the proxy"
        dns = find(exc, socket.gaierror)
        if isinstance(dns, socket.gaierror):
            return TransientError(f"cannot resolve the proxy host {shown} (DNS: {dns.strerror or dns})"
                                  " — check the proxy setting and DNS")
        if find(exc, ConnectionRefusedError):
            return TransientError(f"proxy {shown} refused the connection — check the proxy setting")
        said = re.search(r"Tunnel connection failed: ([^'\")]+)", str(exc))
        detail = said[1].strip() if said else type(find(exc, OSError) or exc).__name__
        return TransientError(f"cannot reach the {service} {where} through the proxy {shown} ({detail})")
    if proxy.lower().startswith("socks") and isinstance(exc, requests.exceptions.ConnectionError) \
            and not isinstance(exc, requests.exceptions.Timeout):
        # PySocks failures (the proxy unreachable, or it could not reach the far side) come as
        # plain connection errors that name the far side, not the proxy.
        said = re.search(r"Failed to establish a new connection: ([^\"')]+)", str(exc))
        detail = said[1].strip() if said else type(find(exc, OSError) or exc).__name__
        return TransientError(f"cannot reach the {service} {where} through the SOCKS proxy"
                              f" {host_port(proxy)} ({detail}) — check the proxy setting")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"{service} {where} did not accept a connection within {timeout:g} s")
    if isinstance(exc, requests.exceptions.Timeout):
        return TransientError(f"{service} {where} did not answer within {timeout:g} s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        dns = find(exc, socket.gaierror)
        if isinstance(dns, socket.gaierror):
            return TransientError(f"cannot resolve {host_label or f'the {service} host'} '{host}'"
                                  f" (DNS: {dns.strerror or dns}) — check the DNS settings")
        if find(exc, ConnectionRefusedError):
            return TransientError(f"{service} {where} refused the connection (is it running? firewall?)")
        if find(exc, TimeoutError):
            return TransientError(f"{service} {where} did not answer within {timeout:g} s")
        if find(exc, ConnectionResetError) or "RemoteDisconnected" in repr(exc):
            return TransientError(f"{service} {where} closed the connection without an answer")
        os_err = find(exc, OSError)
        detail = getattr(os_err, "strerror", None) or type(os_err or exc).__name__
        return TransientError(f"cannot connect to the {service} {where}: {detail}")
    if isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in str(exc):
        return PermanentError("a SOCKS proxy needs PySocks (pip install 'requests[socks]')")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema | requests.exceptions.URLRequired):
        shown = scheme_host(url)
        address = f"{service} address {shown!r}" if shown else f"{service} address"
        if proxy or isinstance(exc, requests.exceptions.InvalidProxyURL):
            return PermanentError(f"the {address} or the proxy is not a valid URL ({type(exc).__name__})")
        if not shown:
            return PermanentError(f"{address} is not a valid http(s) URL: it must start with http://"
                                  " or https:// and a host")
        return PermanentError(f"{address} is not a valid http(s) URL")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return PermanentError(f"{service} {where} redirects in a loop — check the address")
    return TransientError(f"request to the {service} {where} failed: {type(exc).__name__}")


class Sessions:
    """One requests.Session per worker thread (and key): connection reuse without sharing a
    session across threads. Only the operator's settings decide proxies, CA bundles and
    credentials, never the environment (trust_env off)."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._per_thread: PerThread[str, requests.Session] = PerThread(lambda s: s.close())

    def get(self, key: str = "", verify: bool | str | None = None) -> requests.Session:
        session = self._per_thread.get(key)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.headers["User-Agent"] = self.user_agent
            if verify is not None:
                session.verify = verify
            self._per_thread.put(key, session)
        return session

    def __len__(self) -> int:
        return len(self._per_thread)

    def close_all(self) -> None:
        self._per_thread.close_all()


class HttpSender(ChannelSender):
    """A channel that talks HTTP: per-thread sessions named by ``user_agent``, closed on stop."""

    user_agent: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._sessions = Sessions(self.user_agent)

    def close(self) -> None:
        self._sessions.close_all()


# -- secrets in urllib3's DEBUG lines ---------------------------------------------------------------
class _RedactUrls(logging.Filter):
    """urllib3 logs request URLs (a bot token in the path, ``psw=`` in a GET gateway's query) at
    DEBUG level. msgd's log handler masks them anyway; this masks them in the record itself, for
    any other handler an operator attaches."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = redact_text(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactUrls) for f in _logger.filters):
        _logger.addFilter(_RedactUrls())
