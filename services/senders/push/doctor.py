"""``msgd doctor`` for web push: the settings and the VAPID key pair. Push services are the
browsers' (one per subscription), so there is no gateway to reach in advance."""

from __future__ import annotations

from services.senders.model import SettingsInvalid
from services.senders.probe import OK, Finding, ProbeRequest, invalid
from services.senders.push.settings import PushSettings


def probe(req: ProbeRequest) -> list[Finding]:
    try:
        s = PushSettings.parse(req.values)
    except SettingsInvalid as exc:
        return [invalid(req.subject, exc)]
    return [Finding(OK, req.subject, f"VAPID key and subject {s.vapid_subject} are usable; each browser's push"
                                     " service is reached when a message goes to it")]
