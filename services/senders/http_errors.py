"""HTTP failures (requests, and urllib3, http.client, ssl and socket under it) in plain words,
and whether the request may have reached the far side.

A failure *before* the request was written — DNS, a refused or timed-out connection, the TLS
handshake, the proxy, an unusable address or header — never reached the gateway: a
``TransientError`` (retrying is safe) or a ``PermanentError`` (a setting to fix).

A failure *after* it was written — no answer within the timeout, the connection closed or reset
without an answer or in the middle of one, an answer that is not HTTP or cannot be decoded —
may have been acted on: ``MaybeSent``, and the sender stage applies the channel's
``on_timeout`` (services/senders/stage.py) instead of retrying blindly.

How requests reports each (requests/adapters.py ``HTTPAdapter.send``, requests/models.py
``Response.iter_content``): connection failures come as ``ConnectionError`` wrapping urllib3's
``MaxRetryError(reason=NewConnectionError | NameResolutionError)``, a handshake failure as
``SSLError`` wrapping ``MaxRetryError(reason=SSLError)``, a connect timeout as
``ConnectTimeout``; after the request: ``ReadTimeout`` (no status line in time),
``ConnectionError(ProtocolError(..., RemoteDisconnected | ConnectionResetError |
BadStatusLine ...))``, ``ChunkedEncodingError(ProtocolError(IncompleteRead))`` (body cut),
``ContentDecodingError(DecodeError)``, ``ConnectionError(ReadTimeoutError)`` (body too slow).

Reasons name host:port (or scheme://host) only, never a URL's path or query, and never an
exception's class name: each case is worded with what happened and what to do.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl

import requests
import urllib3.exceptions as u3

from services.senders.base import MaybeSent, PermanentError, SendError, TransientError
from services.senders.model import scheme_host
from services.senders.net import causes, find, host_port

RX = requests.exceptions
# Before the request left: the connection was never made (NameResolutionError is a NewConnectionError).
_CONNECTING = (u3.NewConnectionError, u3.ConnectTimeoutError)


def network_error(exc: BaseException, service: str, url: str, timeout: float, proxy: str = "",
                  tls_hint: str = "fix the certificate or set ca_bundle", host_label: str = "") -> SendError:
    """A failure of one HTTP request as a plain-words outcome (see the module doc).

    ``exc``: what ``Session.request`` raised (a ``requests.RequestException``, or a
    ``ValueError``/``UnicodeError`` from building the request); ``service`` names the far side
    ("SMS gateway"); ``url``/``proxy`` the addresses used; ``timeout`` in seconds;
    ``host_label`` is how a DNS failure names its host (default "the <service> host")."""
    where = host_port(url)
    return (_settings(exc, service, url, proxy)
            or _connecting(exc, service, where, timeout, proxy, tls_hint, host_label)
            or _after_sending(exc, service, where, timeout))


# -- nothing was sent: a setting is unusable ------------------------------------------------------


def _settings(exc: BaseException, service: str, url: str, proxy: str) -> SendError | None:
    shown = scheme_host(url)
    address = f"{service} address {shown!r}" if shown else f"{service} address"
    if isinstance(exc, RX.InvalidSchema) and "SOCKS" in str(exc):
        return PermanentError("a SOCKS proxy needs PySocks (pip install 'requests[socks]')", code="gateway.bad_setting")
    if isinstance(exc, RX.InvalidProxyURL) or (proxy and isinstance(exc, RX.InvalidURL) and "proxy" in str(exc).lower()):
        return PermanentError(f"the proxy setting {host_port(proxy) if proxy else ''} is not a usable proxy URL"
                              " — write it as http://host:port or socks5h://host:port", code="gateway.bad_setting")
    if isinstance(exc, RX.InvalidURL | RX.MissingSchema | RX.InvalidSchema | RX.URLRequired
                  | u3.LocationValueError | http.client.InvalidURL):
        if proxy:
            return PermanentError(f"the {address} or the proxy is not a valid URL — check both settings", code="gateway.bad_setting")
        if not shown:
            return PermanentError(f"{address} is not a valid http(s) URL: it must start with http://"
                                  " or https:// and a host", code="gateway.bad_setting")
        if isinstance(exc, RX.InvalidSchema):
            return PermanentError(f"{address} is not a valid http(s) URL", code="gateway.bad_setting")
        return PermanentError(f"{address} is not a valid URL — check it for spaces or stray characters", code="gateway.bad_setting")
    if isinstance(exc, RX.TooManyRedirects):
        return PermanentError(f"{service} {host_port(url)} redirects in a loop — check the address", code="gateway.bad_setting")
    if isinstance(exc, RX.InvalidHeader | u3.InvalidHeader):
        return PermanentError(f"a header of the request to the {service} is not valid: a setting sent as a"
                              " header (login, password, API key, sender name) has a line break or stray spaces", code="gateway.bad_setting")
    if isinstance(exc, RX.UnrewindableBodyError | u3.UnrewindableBodyError):
        return PermanentError(f"the {service} {host_port(url)} redirected the request elsewhere and its body"
                              " could not be sent again — set the address the gateway redirects to", code="gateway.bad_setting")
    if isinstance(exc, RX.InvalidJSONError) and not isinstance(exc, RX.JSONDecodeError):
        return PermanentError(f"the request to the {service} could not be written as JSON — check the JSON"
                              " in the parameter settings", code="gateway.bad_setting")
    if isinstance(exc, UnicodeError) and not isinstance(exc, RX.RequestException):
        return PermanentError(f"the request to the {service} has characters HTTP headers cannot carry"
                              " (a login, password or key with letters outside Latin-1?) — check those settings", code="gateway.bad_setting")
    if isinstance(exc, ValueError) and not isinstance(exc, RX.RequestException | u3.HTTPError):
        return PermanentError(f"the request to the {service} could not be built (a setting has a"
                              " character a URL or header cannot carry) — check the address and credentials", code="gateway.bad_setting")
    return None


# -- nothing was sent: the connection failed -------------------------------------------------------


def _connecting(exc: BaseException, service: str, where: str, timeout: float, proxy: str,
                tls_hint: str, host_label: str) -> SendError | None:
    host = where.rsplit(":", 1)[0]
    if isinstance(exc, RX.SSLError) and find(exc, u3.MaxRetryError):
        return handshake_error(exc, service, where, tls_hint)
    if isinstance(exc, RX.ProxyError):
        return _proxy(exc, service, where, proxy)
    if isinstance(exc, RX.RetryError):
        return TransientError(f"{service} {where} kept answering with errors — it is probably overloaded; retried later", code="transient.unavailable")
    if not (isinstance(exc, RX.ConnectTimeout) or find(exc, _CONNECTING)):
        return None
    if proxy.lower().startswith("socks") and not isinstance(exc, RX.ConnectTimeout):
        # PySocks failures (the proxy unreachable, or it could not reach the far side) come as
        # plain connection errors that name the far side, not the proxy.
        return TransientError(f"cannot reach the {service} {where} through the SOCKS proxy"
                              f" {host_port(proxy)} ({os_words(exc)}) — check the proxy setting", code="transient.proxy")
    dns = find(exc, socket.gaierror)
    if isinstance(dns, socket.gaierror):
        return TransientError(f"cannot resolve {host_label or f'the {service} host'} '{host}'"
                              f" (DNS: {dns.strerror or 'no answer'}) — check the DNS settings", code="transient.dns")
    if find(exc, ConnectionRefusedError):
        return TransientError(f"{service} {where} refused the connection (is it running? firewall?)", code="transient.connection_refused")
    if isinstance(exc, RX.ConnectTimeout) or find(exc, u3.ConnectTimeoutError) and not find(exc, OSError) \
            or find(exc, TimeoutError):
        return TransientError(f"{service} {where} did not accept a connection within {timeout:g} s"
                              " — check the address, the port and the firewall", code="transient.timeout")
    return TransientError(f"cannot connect to the {service} {where}: {os_words(exc)}"
                          " — check the address and the network", code="transient.network")


def handshake_error(exc: BaseException, service: str, where: str, tls_hint: str) -> SendError:
    """A failed TLS handshake with ``service`` at ``where``: an untrusted certificate (PermanentError
    with ``tls_hint``), a connection closed during it (TransientError), no protocol in common."""
    cert = find(exc, ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        detail = getattr(cert, "verify_message", None) or "the certificate is not trusted"
        return PermanentError(f"TLS certificate of the {service} {where} could not be verified: {detail} — {tls_hint}", code="gateway.tls")
    if find(exc, ssl.SSLEOFError) or find(exc, ssl.SSLZeroReturnError) or find(exc, ConnectionResetError):
        return TransientError(f"{service} {where} closed the connection during the TLS handshake", code="transient.network")
    inner = find(exc, ssl.SSLError)
    detail = getattr(inner, "reason", None) or "the two sides found no protocol in common"
    return PermanentError(f"TLS handshake with the {service} {where} failed ({_words(str(detail))})"
                          " — check http/https and the port in the address", code="gateway.tls")


def _proxy(exc: BaseException, service: str, where: str, proxy: str) -> SendError:
    shown = host_port(proxy) if proxy else "the proxy"
    dns = find(exc, socket.gaierror)
    if isinstance(dns, socket.gaierror):
        return TransientError(f"cannot resolve the proxy host {shown} (DNS: {dns.strerror or 'no answer'})"
                              " — check the proxy setting and DNS", code="transient.proxy")
    if find(exc, ConnectionRefusedError):
        return TransientError(f"proxy {shown} refused the connection — check the proxy setting", code="transient.proxy")
    said = re.search(r"Tunnel connection failed: ([^'\")]+)", str(exc))
    detail = f"it answered {said[1].strip()}" if said else os_words(exc)
    return TransientError(f"cannot reach the {service} {where} through the proxy {shown} ({detail})"
                          " — check the proxy setting", code="transient.proxy")


# -- the request was written: the far side may have acted on it ------------------------------------

_MAYBE = " — it may have been delivered"


def _after_sending(exc: BaseException, service: str, where: str, timeout: float) -> SendError:
    if isinstance(exc, RX.ReadTimeout) or find(exc, u3.ReadTimeoutError) or find(exc, TimeoutError):
        what = f"did not answer within {timeout:g} s after the request was sent"
    elif isinstance(exc, RX.ChunkedEncodingError) or find(exc, http.client.IncompleteRead):
        what = "closed the connection in the middle of its answer"
    elif isinstance(exc, RX.ContentDecodingError) or find(exc, u3.DecodeError):
        what = "sent an answer that cannot be decoded (its compression is broken)"
    elif find(exc, http.client.RemoteDisconnected):  # before BadStatusLine: it is one
        what = "closed the connection without an answer"
    elif find(exc, http.client.BadStatusLine) or find(exc, http.client.LineTooLong) \
            or find(exc, u3.HeaderParsingError):
        what = "answered with something that is not HTTP (check http/https and the port in the address)"
    elif find(exc, ConnectionResetError) or find(exc, ConnectionAbortedError):
        what = "reset the connection before answering"
    elif find(exc, BrokenPipeError):
        what = "closed the connection while the request was being sent"
    elif isinstance(exc, RX.SSLError) or find(exc, ssl.SSLError):
        what = "broke the TLS connection before its answer was complete"
    else:
        what = f"did not complete the exchange ({os_words(exc)})"
    return MaybeSent(f"{service} {where} {what}{_MAYBE}")


# -- detail words -----------------------------------------------------------------------------------

_CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception|Exit|Warning|Timeout|Disconnected|Read|Line)\b"
                         r"|<[^>]*>|\w+\(")


def _words(text: str) -> str:
    """Detail text without class names, object reprs or call syntax (they say nothing to an operator)."""
    clean = " ".join(_CLASS_NAME.sub(" ", text).replace("'", " ").replace('"', " ").split()).strip(" :,.()[]")
    return clean[:200]


def os_words(exc: BaseException) -> str:
    """The operating system's words for the failure inside ``exc`` ("Network is unreachable")."""
    for cur in causes(exc):
        strerror = getattr(cur, "strerror", None)
        if isinstance(strerror, str) and strerror.strip():
            return strerror.strip()
    return "the network connection failed"

