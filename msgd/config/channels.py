"""An operator's channel slots, validated by each channel's own settings model.

One function, :func:`settle`, turns what a person typed (a config file's mapping, the admin's
form) into what the store keeps (``ChannelSettings.params`` and ``.secrets``): masked values
(``***``) resolved to the stored ones, then the channel's model (services/senders/<channel>/
settings.py) validates and normalises them. ``msgd config load`` and the web admin both call it,
so a slot the admin saved always dumps and loads back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BeforeValidator, Field, ValidationError

from msgd.config.entries import Entry
from msgd.config.masking import inline_secrets, keep_masked, still_masked
from msgd.config.problems import Problems
from msgd.config.yamlio import Path_
from msgd.redact import MASK
from services.senders.model import Problem, SettingsInvalid, did_you_mean, no_bool, plain_words
from services.senders.registry import channel_specs, legacy_channels, normalize_channel
from services.senders.spec import ChannelSpec

SLOT_KEYS = ("outbox", "enabled", "position")
Stored = Callable[[str, int], "tuple[dict[str, Any], dict[str, Any]] | None"]
"""(channel, position) -> the stored (params, secrets) of that slot of the operator, or None."""


class SlotKeys(Entry):
    """What a slot is besides its settings (ChannelSettings columns)."""

    outbox: bool = Field(False, title="Outbox", description="write messages to files in var/outbox instead of"
                                                           " sending (the gateway's settings may be left out)")
    enabled: bool = Field(True, title="Enabled")
    position: Annotated[int, Ge(1), Le(9), BeforeValidator(no_bool)] | None = Field(None, title="Position",
                                   description="1 = main gateway, 2... = fallbacks (default: the place in the list)")


@dataclass
class Slot:
    """One channel slot of an operator as it will be stored."""

    path: Path_
    channel: str
    position: int
    enabled: bool
    outbox: bool
    params: dict[str, Any]
    secrets: dict[str, Any]


def settle(spec: ChannelSpec, values: Mapping[str, Any], *, outbox: bool,
           stored: tuple[dict[str, Any], dict[str, Any]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, secrets) to store for ``values`` of ``spec``'s channel: ``***`` (and texts masked
    the same way) stand for the ``stored`` (params, secrets) of the slot, then the channel's model
    checks everything (``outbox``: gateway settings may be left out). SettingsInvalid naming every
    problem by the setting's key."""
    old_params, old_secrets = stored or ({}, {})
    secret_names = set(spec.settings.secret_fields())
    problems: list[Problem] = []
    resolved: dict[str, Any] = {}
    for key, value in values.items():
        if key in secret_names and value == MASK:
            if key in old_secrets:
                value = old_secrets[key]
            else:
                problems.append(Problem((key,), f"{MASK!r} means 'keep the stored secret', but none is stored"))
        elif key not in secret_names:
            value = keep_masked(value, old_params.get(key))
            if still_masked(value):
                problems.append(Problem((key,), f"holds a masked secret ({MASK!r}) that matches no stored value;"
                                                " write the real value"))
        resolved[key] = value
    try:
        model = spec.settings.parse(resolved, outbox=outbox)
    except SettingsInvalid as exc:
        problems += [p for p in exc.problems if p.loc[:1] not in {q.loc[:1] for q in problems}]
    if problems:
        raise SettingsInvalid(problems)
    return model.storage()


def check_channels(raw: Any, path: Path_, problems: Problems, stored: Stored | None,
                   notes: list[str]) -> list[Slot]:
    """The slots of one operator's ``channels:`` mapping; problems are added to ``problems``."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        problems.add(path, f"must be a mapping of channel name to settings, got {type(raw).__name__}")
        return []
    specs, legacy = channel_specs(), legacy_channels()
    slots: list[Slot] = []
    seen: dict[str, str] = {}
    for name, value in raw.items():
        place = (*path, name)
        channel = normalize_channel(str(name))
        if channel in legacy:
            problems.add(place, f"{channel!r} is a legacy channel: it takes no settings (its messages end as"
                                " unsupported)")
            continue
        if channel is None or channel not in specs:
            problems.add(place, f"unknown channel{did_you_mean(str(name).lower(), list(specs))}"
                                f" (known: {', '.join(specs)})")
            continue
        if channel in seen:
            problems.add(place, f"channel {channel!r} is already configured as {seen[channel]!r}")
            continue
        seen[channel] = str(name)
        items = value if isinstance(value, list) else [value]
        positions: set[int] = set()
        for i, item in enumerate(items):
            where = (*place, i) if isinstance(value, list) else place
            slot = _slot(specs[channel], item, where, i + 1, problems, stored, notes)
            if slot is None:
                continue
            if slot.position in positions:
                problems.add(where, f"position {slot.position} is given twice")
                continue
            positions.add(slot.position)
            slots.append(slot)
    return slots


def _slot(spec: ChannelSpec, raw: Any, where: Path_, default_position: int, problems: Problems,
          stored: Stored | None, notes: list[str]) -> Slot | None:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        problems.add(where, f"must be a mapping (key: value), got {type(raw).__name__}")
        return None
    try:
        keys = SlotKeys.model_validate({k: v for k, v in raw.items() if k in SLOT_KEYS and v is not None})
    except ValidationError as exc:
        for e in exc.errors():
            problems.add((*where, *e["loc"]), plain_words(e, SlotKeys))
        return None
    position = keys.position or default_position
    values = {k: v for k, v in raw.items() if k not in SLOT_KEYS}
    try:
        params, secrets = settle(spec, values, outbox=keys.outbox,
                                 stored=stored(spec.name, position) if stored else None)
    except SettingsInvalid as exc:
        for p in exc.problems:
            problems.add((*where, *p.loc), p.message)
        return None
    text = params.get("params")
    if isinstance(text, str) and inline_secrets(text):
        notes.append(f"{problems.place((*where, 'params'))}: holds secret values (password, key, token); they are"
                     f" stored as given and shown as {MASK} in dumps and logs")
    return Slot(where, spec.name, position, keys.enabled, keys.outbox, params, secrets)
