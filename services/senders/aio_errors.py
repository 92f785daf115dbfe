"""aiohttp's and asyncio's failures of one HTTP request in plain words (services/senders/aio.py),
and whether the request may have reached the far side: the same verdicts and the same words as
services/senders/http_errors.py gives for requests.

Before the request was written — an unusable URL or header, DNS, a refused or timed-out
connection (``ClientConnectorError`` and its DNS, certificate and TLS kinds,
``ConnectionTimeoutError``), the proxy — nothing reached the gateway: ``TransientError`` (safe to
retry) or ``PermanentError`` (a setting to fix).

After it was written — no answer in time (``SocketTimeoutError``, a bare ``TimeoutError``), the
connection closed without an answer (``ServerDisconnectedError``) or reset (``ClientOSError``),
an answer cut short or undecodable (``ClientPayloadError``), one that is not HTTP
(``ClientResponseError`` from the parser) — the gateway may have acted on it: ``MaybeSent``.
Anything not recognised is taken as possibly sent: never sent again blindly.

Where aiohttp raises what: https://docs.aiohttp.org/en/stable/client_reference.html#client-exceptions
(the hierarchy), aiohttp/client_reqrep.py and aiohttp/connector.py (which wrap OSError,
ssl.SSLError and socket.gaierror as the connector errors).  Reasons name host:port only, never a
URL's path or query, and never an exception's class name.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
from aiohttp import http_exceptions as hx

from services.senders.base import MaybeSent, PermanentError, SendError, TransientError
from services.senders.http_errors import handshake_error, os_words
from services.senders.model import scheme_host
from services.senders.net import find, host_port

_MAYBE = " — it may have been delivered"


def aio_error(exc: BaseException, service: str, url: str, timeout: float, *, proxy: str = "",
              tls_hint: str = "fix the certificate or set ca_bundle", host_label: str = "") -> SendError:
    """A failure of one aiohttp request (``AioHttp.request``) as a plain-words outcome.

    ``service`` names the far side ("SMS gateway"), ``url`` the address used, ``timeout`` the
    seconds allowed; ``host_label`` is how a DNS failure names its host."""
    where = host_port(url)
    return (_settings(exc, service, url)
            or _connecting(exc, service, where, timeout, proxy, tls_hint, host_label)
            or _after_sending(exc, service, where, timeout))


def _settings(exc: BaseException, service: str, url: str) -> SendError | None:
    shown = scheme_host(url)
    address = f"{service} address {shown!r}" if shown else f"{service} address"
    if isinstance(exc, aiohttp.RedirectClientError):
        return PermanentError(f"the {service} {host_port(url)} redirects to an address that is not a usable"
                              " http(s) URL — set the address the gateway redirects to")
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return PermanentError(f"{address} is not a valid http(s) URL: it must start with http:// or https://"
                              " and a host")
    if isinstance(exc, aiohttp.InvalidURL):
        if not shown:
            return PermanentError(f"{address} is not a valid http(s) URL: it must start with http://"
                                  " or https:// and a host")
        return PermanentError(f"{address} is not a valid URL — check it for spaces, stray characters"
                              " and the port")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return PermanentError(f"{service} {host_port(url)} redirects in a loop — check the address")
    if isinstance(exc, UnicodeError):
        return PermanentError(f"the request to the {service} has characters HTTP headers cannot carry"
                              " (a login, password or key with letters outside Latin-1?) — check those settings")
    if isinstance(exc, ValueError | TypeError | hx.InvalidHeader) and not isinstance(exc, aiohttp.ClientError):
        return PermanentError(f"the request to the {service} could not be built (a setting has a"
                              " character a URL or header cannot carry) — check the address and credentials")
    return None


def _connecting(exc: BaseException, service: str, where: str, timeout: float, proxy: str, tls_hint: str,
                host_label: str) -> SendError | None:
    host = where.rsplit(":", 1)[0]
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return PermanentError(f"TLS certificate of the {service} {where} is not the one expected — {tls_hint}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return handshake_error(exc, service, where, tls_hint)
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        shown = f" {host_port(proxy)}" if proxy else ""
        return TransientError(f"cannot reach the {service} {where} through the proxy{shown}"
                              f" ({os_words(exc)}) — check the proxy setting")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransientError(f"{service} {where} did not accept a connection within {timeout:g} s"
                              " — check the address, the port and the firewall")
    if not isinstance(exc, aiohttp.ClientConnectorError):
        return None
    dns = find(exc, socket.gaierror)
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(dns, socket.gaierror):
        said = dns.strerror if isinstance(dns, socket.gaierror) and dns.strerror else "no answer"
        return TransientError(f"cannot resolve {host_label or f'the {service} host'} '{host}'"
                              f" (DNS: {said}) — check the DNS settings")
    if find(exc, ConnectionRefusedError):
        return TransientError(f"{service} {where} refused the connection (is it running? firewall?)")
    if find(exc, TimeoutError):
        return TransientError(f"{service} {where} did not accept a connection within {timeout:g} s"
                              " — check the address, the port and the firewall")
    return TransientError(f"cannot connect to the {service} {where}: {os_words(exc)}"
                          " — check the address and the network")


def _after_sending(exc: BaseException, service: str, where: str, timeout: float) -> SendError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or find(exc, TimeoutError):
        what = f"did not answer within {timeout:g} s after the request was sent"
    elif find(exc, (hx.ContentEncodingError, hx.DecompressSizeError)):
        what = "sent an answer that cannot be decoded (its compression is broken)"
    elif isinstance(exc, aiohttp.ClientPayloadError | asyncio.IncompleteReadError) \
            or find(exc, (hx.ContentLengthError, hx.TransferEncodingError, hx.PayloadEncodingError)):
        what = "closed the connection in the middle of its answer"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "closed the connection without an answer"
    elif isinstance(exc, aiohttp.ClientResponseError) or find(exc, hx.HttpProcessingError):
        what = "answered with something that is not HTTP (check http/https and the port in the address)"
    elif find(exc, ConnectionResetError) or find(exc, ConnectionAbortedError):
        what = "reset the connection before answering"
    elif find(exc, BrokenPipeError):
        what = "closed the connection while the request was being sent"
    elif find(exc, ssl.SSLError):
        what = "broke the TLS connection before its answer was complete"
    else:
        what = f"did not complete the exchange ({os_words(exc)})"
    return MaybeSent(f"{service} {where} {what}{_MAYBE}")
