"""Secrets in dumps: masked the same way in every process, and a masked value read back as the
stored one.

Secret settings (the channel model's ``SecretStr`` fields) are dumped as ``***``; so are secret
values written inside other texts (``psw=...`` in an SMS parameter string, a password in a proxy
URL). Loading ``***`` (or a text masked the same way) keeps the stored value.
"""

from __future__ import annotations

import re
from typing import Any

from msgd.redact import MASK, is_secret_key

_URL_PASSWORD_RE = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+@", re.IGNORECASE)


def _is_secret_pair(key: str, value: str) -> bool:
    """psw=..., apikey=..., token=... (but not a %placeholder%)."""
    return is_secret_key(key.strip()) and not value.strip("'\"").startswith("%") and value != MASK


def inline_secrets(text: str) -> list[str]:
    """Values of secret-looking keys inside a key=value&... string."""
    found = []
    for pair in text.split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and _is_secret_pair(key, value):
            found += [value, value.strip("'\"")]
    return [v for v in found if v]


def mask(value: Any) -> Any:
    """Deterministic masking for dumps (the same in every process, so a reload can recognise a
    masked value): key=value pairs with secret keys, passwords in URLs, secret keys of mappings."""
    if isinstance(value, str):
        pairs = []
        for pair in value.split("&"):
            key, sep, val = pair.partition("=")
            if sep and val and _is_secret_pair(key, val):
                pair = f"{key}={MASK}"
            pairs.append(pair)
        return _URL_PASSWORD_RE.sub(lambda m: f"{m['head']}{MASK}@", "&".join(pairs))
    if isinstance(value, dict):
        return {k: MASK if is_secret_key(k) and v not in (None, "") else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def keep_masked(new: Any, old: Any) -> Any:
    """A value shown masked in a dump stands for the stored value."""
    if new == MASK and old is not None:
        return old
    if isinstance(new, str) and MASK in new and isinstance(old, str) and mask(old) == new:
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: keep_masked(v, old.get(k)) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [keep_masked(n, o) for n, o in zip(new, old, strict=True)]
    return new


def still_masked(value: Any) -> bool:
    """A masked placeholder that was not resolved to a stored value."""
    if isinstance(value, dict):
        return any(still_masked(v) for v in value.values())
    if isinstance(value, list):
        return any(still_masked(v) for v in value)
    if not isinstance(value, str) or MASK not in value:
        return False
    if value == MASK or f":{MASK}@" in value:
        return True
    return any(
        val == MASK and is_secret_key(key.strip())
        for key, _, val in (pair.partition("=") for pair in value.split("&"))
    )
