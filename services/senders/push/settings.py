"""The web push channel's settings: one model for the config file, the admin, doctor and the sender.

The VAPID private key is checked when the settings are loaded (services/senders/push/vapid.py), so a
key that cannot sign is refused by ``msgd config load`` and the admin, not by the first message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import Field

from services.senders.model import HttpSettings, Problem, Secret, Whole
from services.senders.push.vapid import is_public_key_of, load_private_key

DEFAULT_TTL = 86400
SUBJECT_RE = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+.*)$", re.IGNORECASE)


class PushSettings(HttpSettings):
    """Web push (RFC 8030) with VAPID (RFC 8292) to the browser subscriptions of the personal cabinet."""

    vapid_private_key: Secret | None = Field(
        None, title="VAPID private key",
        description="the application server's P-256 key: PEM text, or the base64url key that"
                    " web-push generate-vapid-keys prints",
    )
    vapid_public_key: str | None = Field(
        None, title="VAPID public key",
        description="optional check: the applicationServerKey the cabinet subscribed with (must be the"
                    " private key's pair)",
    )
    vapid_subject: str | None = Field(None, title="VAPID subject",
                                      description="mailto:admin@your.domain or an https:// URL of the operator")
    ttl: Whole = Field(DEFAULT_TTL, ge=0, title="TTL",
                     description="seconds a push service keeps a message for an offline browser")

    def problems(self, outbox: bool) -> Iterator[Problem]:
        private = self.vapid_private_key.get_secret_value() if self.vapid_private_key is not None else ""
        if private:
            try:
                key = load_private_key(private)
            except ValueError as exc:
                yield Problem(("vapid_private_key",), str(exc))
            else:
                if self.vapid_public_key and not is_public_key_of(self.vapid_public_key, key):
                    yield Problem(("vapid_public_key",), "does not belong to vapid_private_key — browsers"
                                  " subscribed with the public key, so both must come from one key pair")
        elif not outbox:
            yield Problem(("vapid_private_key",), "is required: the key browsers' subscriptions are signed with")
        if self.vapid_subject and not SUBJECT_RE.match(self.vapid_subject):
            yield Problem(("vapid_subject",), f"{self.vapid_subject!r} must be mailto:admin@your.domain or an"
                                              " https:// URL")
        elif not self.vapid_subject and not outbox:
            yield Problem(("vapid_subject",), "is required: mailto:admin@your.domain or an https:// URL")
