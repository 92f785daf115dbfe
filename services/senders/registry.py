"""The channels msgd knows: every entry point of the group ``msgd.channels`` (services/senders/spec.py).

msgd's own channels are registered by its pyproject.toml; any installed distribution may add
one the same way, without touching msgd (the Python packaging convention for plug-ins,
https://packaging.python.org/en/latest/specifications/entry-points/). A channel that cannot be
loaded (an import error, an object that is not a ChannelSpec, a name given twice) is left out
and reported by :func:`broken_channels` and ``msgd doctor``; the others work.

The legacy names of the original system (agent, winpop, whatsapp) are accepted in templates and
requests; their messages end as "unsupported" -- unless an installed channel takes the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

import structlog

from services.senders.base import ChannelSender
from services.senders.spec import ChannelSpec

GROUP = "msgd.channels"
LEGACY_CHANNELS = ("agent", "winpop", "whatsapp")
_ALIASES = {"mail": "email", "smtp": "email", "tg": "telegram", "webpush": "push"}

log = structlog.get_logger("msgd.channels")


@dataclass(frozen=True)
class BrokenChannel:
    """An entry point that did not give a usable channel: ``name``, where it points, and why."""

    name: str
    target: str
    reason: str


@dataclass(frozen=True)
class _Found:
    specs: dict[str, ChannelSpec]
    broken: tuple[BrokenChannel, ...]


@cache
def _found() -> _Found:
    specs: dict[str, ChannelSpec] = {}
    broken: list[BrokenChannel] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        try:
            spec = ep.load()
        except Exception as exc:  # noqa: BLE001 - one broken plug-in must not stop the others
            broken.append(BrokenChannel(ep.name, ep.value, f"cannot be loaded: {type(exc).__name__}: {exc}"))
            continue
        if not isinstance(spec, ChannelSpec):
            broken.append(BrokenChannel(ep.name, ep.value, f"is a {type(spec).__name__}, not a ChannelSpec"))
        elif spec.name != ep.name or normalize_channel(spec.name) != spec.name:
            broken.append(BrokenChannel(ep.name, ep.value, f"names itself {spec.name!r}: the entry point's name"
                                        " must be the channel's name, in lower-case letters and digits"))
        elif spec.name in specs:
            broken.append(BrokenChannel(ep.name, ep.value, "a channel of this name is already registered"))
        else:
            specs[spec.name] = spec
    for b in broken:
        log.warning("channel left out", channel=b.name, entry_point=b.target, reason=b.reason)
    if not specs:
        log.warning("no channels are registered: install msgd (pip install -e .) so its entry points"
                    f" ({GROUP}) are visible")
    return _Found(dict(sorted(specs.items())), tuple(broken))


def reload() -> None:
    """Look at the installed entry points again (after installing a plug-in in this process)."""
    _found.cache_clear()


def channel_specs() -> dict[str, ChannelSpec]:
    """Every usable channel by name, sorted."""
    return dict(_found().specs)


def channel_spec(name: str) -> ChannelSpec:
    """The channel called ``name`` (as normalised by :func:`normalize_channel`); KeyError if none."""
    return _found().specs[name]


def sender_classes() -> dict[str, type[ChannelSender]]:
    """The sender class of every channel, by name."""
    return {name: spec.sender for name, spec in _found().specs.items()}


def broken_channels() -> tuple[BrokenChannel, ...]:
    return _found().broken


def live_channels() -> list[str]:
    return list(_found().specs)


def legacy_channels() -> tuple[str, ...]:
    """The original's names that no installed channel provides: their messages are unsupported."""
    return tuple(name for name in LEGACY_CHANNELS if name not in _found().specs)


def known_channels() -> list[str]:
    return [*live_channels(), *legacy_channels()]


def normalize_channel(name: str | None) -> str | None:
    """Accept the original's spellings (SMS, Email, E-mail, Telegram, PUSH, Agent...); None for
    "no channel" ("", "---", none, any, all)."""
    if name is None:
        return None
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key in {"", "---", "none", "any", "all"}:
        return None
    return _ALIASES.get(key, key)
