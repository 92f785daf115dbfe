"""A per-gateway request rate limit shared by every worker thread of the process.

``acquire(key, rate)`` blocks until the caller may send one request so that
requests to ``key`` (the gateway URL) start at least ``1 / rate`` seconds
apart: a token bucket holding one token, refilled at ``rate`` per second.
Each caller reserves the next free slot under a lock and then sleeps outside
it, so waiting threads are served in the order they arrived and none fails:
a burst is smoothed out, never refused.  In any interval of T seconds at
most ``rate * T + 1`` requests start.

The limit is per process: N sender processes for one gateway may together
send N times the rate (set each to the gateway's limit divided by N).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        self._interval = 1.0 / rate
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0.0  # monotonic time of the next free slot

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    def set_rate(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        with self._lock:
            self._interval = 1.0 / rate

    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait for it (seconds)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now

    def acquire(self) -> float:
        """Wait for the next slot; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait


_lock = threading.Lock()
_limiters: dict[str, RateLimiter] = {}


def limiter(key: str, rate: float) -> RateLimiter:
    """The process-wide limiter for ``key``; a changed rate applies from the next request."""
    with _lock:
        found = _limiters.get(key)
        if found is None:
            found = _limiters[key] = RateLimiter(rate)
        elif abs(found.rate - rate) > 1e-9:
            found.set_rate(rate)
        return found


def acquire(key: str, rate: float) -> float:
    """Wait until one more request to ``key`` keeps within ``rate`` per second."""
    return limiter(key, rate).acquire()
