"""The e-mail channel's settings: one model for the config file, the admin, doctor and the sender.

SMTP through a local relay (the default: ``localhost:25`` without TLS) or a third-party server.
Field titles are the original manual's labels where it has them ("Адрес сервера", "Порт",
"SMTP Шифрование SSL/TSL", "Расширенное логирование").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from services.senders.model import HttpSettings, Problem, Secret, Whole, server_host

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
DEFAULT_MAX_BYTES = 1024 * 1024
# "tls" is deliberately not an alias: some tools mean implicit TLS by it, others STARTTLS.
SECURITY_ALIASES = {"smtps": "ssl", "plain": "none", "off": "none"}


def _security(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text == "tls":
        raise ValueError("'tls' is ambiguous: say ssl (implicit TLS, usually port 465) or starttls (port 587)")
    return SECURITY_ALIASES.get(text, text)


def _port(value: Any) -> Any:
    """A TCP port: 1..65535 (YAML may give it as text: "465")."""
    try:
        port = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else 0
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"must be a port number 1..65535, got {value!r}")
    return port


Security = Annotated[Literal["none", "ssl", "starttls"], BeforeValidator(_security)]


class EmailSettings(HttpSettings):
    """An SMTP server (``timeout``, ``verify``, ``ca_bundle`` and ``on_timeout`` as for HTTP channels)."""

    host: Annotated[str, AfterValidator(server_host)] = Field("localhost", title="Server address",
                      description="the SMTP server; default the relay on this machine")
    port: Annotated[int | None, BeforeValidator(_port)] = Field(None, title="Port",
                             description="default by security: 465 (ssl), 587 (starttls), 25 (none)")
    security: Security = Field("none", title="SMTP encryption",
                               description="none, ssl (implicit TLS, the manual's SSL) or starttls (the manual's TSL)")
    login: Secret | None = Field(None, title="Login", description="SMTP login (AUTH); empty = send without logging in")
    password: Secret | None = Field(None, title="Password", description="SMTP password (an app password for some providers)")
    extended_logging: bool = Field(False, title="Extended logging",
                                   description="log the SMTP dialogue (passwords masked, message content left out)")
    max_bytes: Whole = Field(DEFAULT_MAX_BYTES, ge=1, title="Max message size",
                           description="bytes of the built message; a larger one fails before connecting")

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    def problems(self, outbox: bool) -> Iterator[Problem]:
        if not outbox and self.login is not None and self.password is None:
            yield Problem(("password",), "is required with a login (the server would refuse an empty password)")
