"""Retry policy in one place: exponential backoff with jitter, Retry-After honoured."""

from __future__ import annotations

import random


def backoff(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Delay before attempt ``attempt + 1`` after attempt ``attempt`` failed transiently."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    delay *= random.uniform(0.8, 1.2)  # spread a failed burst so it does not return at once
    if retry_after is not None:
        delay = max(delay, retry_after)
    return float(max(1.0, delay))
