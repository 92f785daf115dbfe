"""``msgd doctor`` for an SMS gateway: its settings as the sender reads them, then its address
(DNS, TCP, TLS certificate). Nothing is sent."""

from __future__ import annotations

from services.senders.base import PermanentError
from services.senders.model import SettingsInvalid
from services.senders.net import verify_setting
from services.senders.probe import Finding, ProbeRequest, check_http, invalid
from services.senders.sms.settings import SmsSettings


def probe(req: ProbeRequest) -> list[Finding]:
    try:
        s = SmsSettings.parse(req.values)
        verify = verify_setting(s, "SMS")
    except (SettingsInvalid, PermanentError) as exc:
        return [invalid(req.subject, exc)]
    return check_http(req.subject, str(s.effective()["url"]), verify)
