"""Making a slot's delivery-report URL: the command line (``msgd dlr url``) and the admin share this.

The URL is ``<public base>/api/v1/dlr/<slot id>/<secret>``: the base is ``MSGD_PUBLIC_URL`` (what
the gateway can reach; default ``http://`` + ``MSGD_WEB_BIND``). Only the secret's SHA-256 is kept
for checking (``DlrKey``). A gateway that gets the URL with each message (Jasmin's ``dlr-url``,
Digital Direct's ``callbackUrl``: a slot whose parameters use ``%dlr_url%``, or Digital Direct
JSON) needs msgd to send it, so there it is also kept as the slot's ``dlr_url`` secret, like the
gateway's own password; for the others (smsc.ru's status handler, SMSPilot's callback) the
operator pastes it into the gateway's account, and it is shown once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DlrUrl:
    url: str
    stored: bool  # kept as the slot's dlr_url secret (sent with each message)


def public_base() -> str:
    base = os.environ.get("MSGD_PUBLIC_URL", "").strip()
    if not base:
        base = "http://" + (os.environ.get("MSGD_WEB_BIND", "").strip() or "127.0.0.1:8000")
    return base.rstrip("/")


def sends_url(params: dict[str, object]) -> bool:
    """Whether the slot's gateway gets the URL with each message."""
    from services.senders.sms.presets import DIGITAL_DIRECT_JSON, effective_settings
    from services.senders.sms.request import used_placeholders

    try:
        merged = effective_settings(dict(params))
    except ValueError:
        return False
    template = merged.get("params")
    return merged.get("request_type") == DIGITAL_DIRECT_JSON or (
        isinstance(template, str) and "dlr_url" in used_placeholders(template))


def make_url(settings_id: int, base: str | None = None) -> DlrUrl:
    """A new secret for the SMS slot ``settings_id`` (the old URL stops working at once); LookupError
    when there is no such SMS slot."""
    from django.db import transaction

    from msgd.store.models import ChannelSettings
    from msgd.web.models import DlrKey

    with transaction.atomic():
        slot = ChannelSettings.objects.select_for_update().filter(id=settings_id, channel="sms").first()
        if slot is None:
            raise LookupError(f"no SMS channel settings with id {settings_id}")
        secret = DlrKey.rotate(slot.id)
        url = f"{base.rstrip('/') if base else public_base()}/api/v1/dlr/{slot.id}/{secret}"
        stored = sends_url(dict(slot.params or {}))
        if stored:
            slot.secrets = {**(slot.secrets or {}), "dlr_url": url}
            slot.save(update_fields=["secrets", "updated_at"])
    return DlrUrl(url, stored)
