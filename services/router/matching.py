"""Which templates an event fires, on which channels, and why not (pure functions).

Owner rule: global templates serve every operator and an operator's own only
that operator; when both match the same event on the same channel, the
operator's own template wins and the global one is not sent there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from msgd.envelope import FILTERED, NO_CONTACT, UNSUPPORTED
from msgd.store.cache import OperatorView, TemplateView
from services.senders.base import ChannelSender
from services.senders.registry import legacy_channels, normalize_channel

RENDER = "render"
NDAYS = "days_before_block"
MANUAL = "manual"


@dataclass(frozen=True)
class Decision:
    """One (template, channel) outcome: render it, or record why not."""

    outcome: str
    template: TemplateView | None
    channel: str | None
    reason: str = ""


def _filter_reason(t: TemplateView, event: dict[str, Any], op: OperatorView) -> str | None:
    ab = event.get("abonent") or {}
    if not t.enabled:
        return f"template #{t.id} is disabled (\"send message\" is off)"
    if t.status_filter and str(ab.get("status", "")) not in t.status_filter:
        return (f"template #{t.id} is only for subscriber status {', '.join(t.status_filter)};"
                f" subscriber status is {ab.get('status', 'not given')!r}")
    if t.contract_type and ab.get("contract_type") != t.contract_type:
        return (f"template #{t.id} is only for contract type {t.contract_type};"
                f" subscriber has {ab.get('contract_type', 'none given')!r}")
    if t.event_type == NDAYS:
        return _ndays_reason(t, event, op)
    return None


def _ndays_reason(t: TemplateView, event: dict[str, Any], op: OperatorView) -> str | None:
    if op.warn_days is None:
        return f"operator {op.code} has no \"warn N days before blocking\" setting"
    days = (event.get("data") or {}).get("days_left")
    if not isinstance(days, int):
        return "event has no data.days_left"
    if days == op.warn_days or (t.every_day and 0 <= days < op.warn_days):
        return None
    every = " (or fewer: \"send every day\" is on)" if t.every_day else ""
    return f"days left is {days}; template #{t.id} sends at {op.warn_days}{every}"


def contact_channels(contacts: dict[str, Any], senders: dict[str, type[ChannelSender]]) -> list[str]:
    return [ch for ch, cls in senders.items() if cls.recipients(contacts)]


def decide(
    event: dict[str, Any],
    op: OperatorView,
    templates: Iterable[TemplateView],
    senders: dict[str, type[ChannelSender]],
) -> list[Decision]:
    contacts = (event.get("abonent") or {}).get("contacts") or {}
    manual = event.get("manual") or {}
    override = normalize_channel(manual.get("channel")) if event.get("type") == MANUAL else None
    visible = [t for t in templates if t.owner_id in (None, op.id)]

    if event.get("type") == MANUAL and manual.get("template_id") is not None:
        chosen = [t for t in visible if t.id == manual["template_id"]]
        if not chosen:
            return [Decision(FILTERED, None, override,
                             f"template #{manual['template_id']} does not exist or belongs to another operator")]
        # An explicitly chosen template is sent as chosen: the admin's choice
        # overrides "send message" and the subscriber filters.
        matched, decisions = chosen, list[Decision]()
    else:
        matched, decisions = [], []
        for t in visible:
            why = _filter_reason(t, event, op)
            if why:
                decisions.append(Decision(FILTERED, t, t.channel, why))
            else:
                matched.append(t)
        if not visible:
            owner = f" for operator {op.code}"
            return [Decision(FILTERED, None, None, f"no template for event type {event.get('type')!r}{owner}")]

    pairs: list[tuple[TemplateView, str]] = []
    for t in matched:
        channel = override or normalize_channel(t.channel)
        if channel is None:
            chans = contact_channels(contacts, senders)
            if not chans:
                decisions.append(Decision(NO_CONTACT, t, None,
                                          "subscriber has no contact for any channel (no SMS number, e-mail, ...)"))
            pairs.extend((t, ch) for ch in chans)
        else:
            pairs.append((t, channel))

    own_channels = {ch for t, ch in pairs if t.owner_id is not None}
    for t, ch in pairs:
        if t.owner_id is None and ch in own_channels:
            decisions.append(Decision(FILTERED, t, ch, f"replaced by operator {op.code}'s own template on {ch}"))
        elif ch in legacy_channels() or ch not in senders:
            what = "a legacy channel kept for compatibility" if ch in legacy_channels() else "not a known channel"
            decisions.append(Decision(UNSUPPORTED, t, ch, f"unsupported channel {ch!r}: {what}; nothing is sent"))
        elif not senders[ch].recipients(contacts):
            decisions.append(Decision(NO_CONTACT, t, ch, f"subscriber has no {senders[ch].contact_key} contact for {ch}"))
        else:
            decisions.append(Decision(RENDER, t, ch))
    return decisions
