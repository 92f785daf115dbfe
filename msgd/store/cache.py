"""In-memory snapshot of the configuration, reloaded when its revision changes.

Stages read operators, channel settings and templates on every message; the
snapshot makes that free, and a change in the store (CLI, admin) is seen
within ``config_refresh_seconds`` without a restart.  One snapshot may serve
several threads (a sender process's consumers): a reload happens under a lock,
and no reader sees the snapshot as fresh before it has been loaded.  A change
saved by this very process (the admin, a test, ``msgd config load``) is seen at
once: the save signals bump ``_changes`` (msgd/store/signals.py) and every
snapshot of the process reloads on its next read.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from msgd.redact import is_secret_key, register_secrets


def _zone(code: str, name: str) -> ZoneInfo:
    """The operator's zone; a name this machine does not know (a row written before the admin
    checked it, or by hand) gives UTC with an error in the log rather than stopping every stage."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        structlog.get_logger("msgd.config").error(
            "unknown time zone: quiet hours are kept in UTC until it is corrected", operator=code, timezone=name)
        return ZoneInfo("UTC")


@dataclass
class ChannelConfig:
    """One operator's settings for one channel, as stored (params + secrets): what a sender gets.

    ``params`` and ``secrets`` are what the channel's settings model stored (services/senders/
    <channel>/settings.py); the channel parses them again (``ChannelSender.settings_of``)."""

    channel: str
    params: dict[str, Any]
    secrets: dict[str, Any]
    outbox: bool = False
    position: int = 1
    id: int | None = None  # the stored slot (ChannelSettings.id): delivery reports name it
    # What a sender derives from these settings once (they are replaced, not
    # changed, when the configuration is reloaded, so the memo never goes stale).
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OperatorView:
    id: int
    code: str
    name: str
    email: str
    timezone: ZoneInfo
    quiet_start: dt.time | None
    quiet_end: dt.time | None
    attempts: int
    default_subject: str
    warn_days: int | None
    channels: dict[str, list[ChannelConfig]] = field(default_factory=dict)
    feedback_messages: bool = False  # publish every final state on msgd.feedback too

    def as_context(self) -> dict[str, object]:
        return {
            "id": self.id, "code": self.code, "name": self.name, "email": self.email,
            "timezone": str(self.timezone), "default_subject": self.default_subject,
            "warn_days": self.warn_days,
        }


@dataclass(frozen=True)
class TemplateView:
    id: int
    owner_id: int | None
    owner_code: str | None
    name: str
    event_type: str
    channel: str | None
    subject: str
    body: str
    enabled: bool
    every_day: bool
    status_filter: tuple[str, ...]
    contract_type: str | None
    use_django: bool


_changes = [0]  # configuration saves made by this process (msgd/store/signals.py)


def changed_here() -> None:
    """This process saved a configuration change: its snapshots reload on their next read."""
    _changes[0] += 1


class ConfigCache:
    def __init__(self, refresh_seconds: float = 2.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._checked_at: float | None = None  # never checked (monotonic time starts at boot)
        self._revision = -1
        self._operators: dict[str, OperatorView] = {}
        self._by_type: dict[str, list[TemplateView]] = {}
        self._by_id: dict[int, TemplateView] = {}
        self._lock = threading.Lock()
        self._seen_changes = _changes[0]

    def _fresh(self) -> bool:
        checked = self._checked_at
        return (checked is not None and self._seen_changes == _changes[0]
                and time.monotonic() - checked < self.refresh_seconds)

    def refresh(self, force: bool = False) -> None:
        if not force and self._fresh():
            return
        from msgd.store.models import Revision

        with self._lock:
            if not force and self._fresh():  # another thread reloaded while this one waited
                return
            now, changes = time.monotonic(), _changes[0]
            revision = Revision.current()
            if revision != self._revision or force or changes != self._seen_changes:
                self._load()
                self._revision = revision
            self._checked_at, self._seen_changes = now, changes

    def _load(self) -> None:
        from msgd.store.models import ChannelSettings, Operator, Template

        channels: dict[int, dict[str, list[ChannelConfig]]] = defaultdict(lambda: defaultdict(list))
        for cs in ChannelSettings.objects.filter(enabled=True).order_by("position"):
            # A login is not a secret (it often is the sender address); passwords, keys, tokens are.
            register_secrets(v for k, v in (cs.secrets or {}).items() if is_secret_key(k) and isinstance(v, str | int))
            channels[cs.operator_id][cs.channel].append(
                ChannelConfig(cs.channel, dict(cs.params or {}), dict(cs.secrets or {}), cs.outbox, cs.position,
                              cs.id)
            )
        operators = {}
        codes: dict[int, str] = {}
        for op in Operator.objects.all():
            codes[op.id] = op.code
            operators[op.code] = OperatorView(
                id=op.id, code=op.code, name=op.name, email=op.email,
                timezone=_zone(op.code, op.timezone), quiet_start=op.quiet_start,
                quiet_end=op.quiet_end, attempts=max(1, op.attempts), default_subject=op.default_subject,
                warn_days=op.warn_days, channels={k: list(v) for k, v in channels[op.id].items()},
                feedback_messages=op.feedback_messages,
            )
        by_type: dict[str, list[TemplateView]] = defaultdict(list)
        by_id = {}
        for t in Template.objects.all().order_by("id"):
            view = TemplateView(
                id=t.id, owner_id=t.owner_id, owner_code=codes.get(t.owner_id) if t.owner_id else None,
                name=t.name, event_type=t.event_type, channel=t.channel or None, subject=t.subject,
                body=t.body, enabled=t.enabled, every_day=t.every_day,
                status_filter=tuple(str(s) for s in (t.status_filter or [])),
                contract_type=t.contract_type or None, use_django=t.use_django,
            )
            by_type[t.event_type].append(view)
            by_id[t.id] = view
        self._operators, self._by_type, self._by_id = operators, dict(by_type), by_id

    def operators(self) -> list[OperatorView]:
        """Every operator of the snapshot."""
        self.refresh()
        return list(self._operators.values())

    def operator(self, code: str) -> OperatorView | None:
        self.refresh()
        return self._operators.get(code)

    def templates_for(self, event_type: str) -> list[TemplateView]:
        self.refresh()
        return self._by_type.get(event_type, [])

    def template(self, template_id: int) -> TemplateView | None:
        self.refresh()
        return self._by_id.get(template_id)
