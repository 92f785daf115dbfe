"""Channel senders, discovered from the modules of this package.

Adding a channel means adding one module here that defines ``SENDER``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from services.senders.base import ChannelSender

# Names the original system accepted; messages for them end as "unsupported".
LEGACY_CHANNELS = ("agent", "winpop", "whatsapp")
_NOT_CHANNELS = {"net", "base", "stage", "outbox", "claims", "http_errors", "limits", "contacts"}


@cache
def registry() -> dict[str, type[ChannelSender]]:
    found: dict[str, type[ChannelSender]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_CHANNELS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}" + (".sender" if info.ispkg else ""))
        sender = getattr(module, "SENDER", None)
        if sender is not None:
            found[sender.channel] = sender
    return dict(sorted(found.items()))


def live_channels() -> list[str]:
    return list(registry())


def known_channels() -> list[str]:
    return [*registry(), *LEGACY_CHANNELS]


def normalize_channel(name: str | None) -> str | None:
    """Accept the original's spellings (SMS, Email, E-mail, Telegram, PUSH, Agent...)."""
    if name is None:
        return None
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key in {"", "---", "none", "any", "all"}:
        return None
    aliases = {"mail": "email", "smtp": "email", "tg": "telegram", "webpush": "push"}
    return aliases.get(key, key)
