"""``msgd config dump``: the store's operators, channel slots and templates in the file format.

Channel settings are written as their channel's model stores them (normalised: ``true``, not
``yes``), secrets as ``***`` (also inside texts: ``psw=***``, a proxy's password) unless asked
for; loading the dump back changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from msgd.config.entries import FORMAT_VERSION
from msgd.config.masking import mask
from msgd.config.yamlio import dump_yaml
from msgd.redact import MASK
from services.senders.model import SettingsInvalid
from services.senders.registry import channel_specs

HEADER = """\
# msgd configuration: operators, channel settings, templates.
# Load with `msgd config load FILE` (all or nothing; loading twice changes nothing).
# Secrets are shown as "***"; loading "***" keeps the stored value.
# Format: see examples/config.yaml and `msgd config schema`.
"""


def _time(value: dt.time | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def dump_config(include_secrets: bool = False) -> str:
    """The store's operators, channel settings and templates in the load_config format."""
    from msgd.store.models import ChannelSettings, Operator, Template

    operators = []
    for op in Operator.objects.order_by("code"):
        entry: dict[str, Any] = {
            "code": op.code,
            "name": op.name,
            "email": op.email,
            "timezone": op.timezone,
            "quiet_hours": (
                {"start": _time(op.quiet_start), "end": _time(op.quiet_end)}
                if op.quiet_start is not None and op.quiet_end is not None
                else None
            ),
            "attempts": op.attempts,
            "default_subject": op.default_subject,
            "warn_days": op.warn_days,
            "feedback_messages": op.feedback_messages,
        }
        rows = list(ChannelSettings.objects.filter(operator=op).order_by("channel", "position"))
        channels: dict[str, Any] = {}
        for name in dict.fromkeys(r.channel for r in rows):
            mine = [r for r in rows if r.channel == name]
            items = [_dump_slot(r, i + 1, include_secrets) for i, r in enumerate(mine)]
            channels[name] = items[0] if len(mine) == 1 and mine[0].position == 1 else items
        entry["channels"] = channels
        operators.append(entry)

    templates = []
    rows = sorted(
        Template.objects.select_related("owner"),
        key=lambda t: (t.owner.code if t.owner else "", t.event_type, t.channel or "", t.name, t.id),
    )
    for t in rows:
        templates.append({
            "owner": t.owner.code if t.owner else None,
            "name": t.name or f"{t.event_type}/{t.channel or 'any'}",
            "event": t.event_type,
            "channel": t.channel or None,
            "subject": t.subject,
            "body": t.body,
            "enabled": t.enabled,
            "every_day": t.every_day,
            "status_filter": list(t.status_filter or []),
            "contract_type": t.contract_type or None,
            "django": t.use_django,
        })
    doc = {"version": FORMAT_VERSION, "operators": operators, "templates": templates}
    return HEADER + dump_yaml(doc)


def _normalised(row: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The slot's settings as its model stores them; as stored when the model refuses them (the
    dump then shows what a load will refuse, with its place)."""
    params, secrets = dict(row.params or {}), dict(row.secrets or {})
    spec = channel_specs().get(row.channel)
    if spec is None:
        return params, secrets
    try:
        return spec.settings.parse({**params, **secrets}, outbox=row.outbox).storage()
    except SettingsInvalid:
        return params, secrets


def _dump_slot(row: Any, index: int, include_secrets: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.position != index:
        out["position"] = row.position
    if not row.enabled:
        out["enabled"] = False
    out["outbox"] = row.outbox
    params, secrets = _normalised(row)
    out.update(params if include_secrets else {k: mask(v) for k, v in params.items()})
    for key, value in secrets.items():
        out[key] = value if include_secrets or value in (None, "") else MASK
    return out
