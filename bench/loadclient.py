"""An HTTP load client for ``POST /api/v1/events``: aiohttp, every client a coroutine of one process.

``python -m bench.loadclient URL TOKEN --clients 8 --batch 1 --seconds 15`` runs ``clients``
loops, each POSTing one request at a time over its own keep-alive connection (a request is
one event, or a list of ``batch`` events, unique ``event_id`` each), for ``seconds`` after a
one-second warm-up that is not counted. It prints one JSON object: requests, accepted (202),
other statuses, errors, seconds from the warm-up's end to the last counted answer, latencies p50/p99 (s) and this process's CPU seconds.
One async process keeps the client's own CPU small and visible (it is printed beside the
figures), where a thread per client would compete with the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter
from typing import Any

from bench.events import event
from bench.report import pct


def _body_template(batch: int) -> tuple[str, str]:
    """(JSON with a placeholder for the running number, the placeholder)."""
    mark = "@@N@@"
    items = []
    for i in range(batch):
        e = event("ingest", 0)
        e["event_id"] = f"ingest-{uuid.uuid4().hex[:8]}-{mark}-{i}"
        items.append(e)
    return json.dumps(items[0] if batch == 1 else items, ensure_ascii=False), mark


async def run(url: str, token: str, clients: int, batch: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    template, mark = _body_template(batch)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    last = [0.0]  # when the last counted request completed
    counter = iter(range(10**12))
    t_warm = time.monotonic() + 1.0
    t_end = t_warm + seconds

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            while (now := time.monotonic()) < t_end:
                body = template.replace(mark, str(next(counter))).encode()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    if now >= t_warm:
                        errors[type(exc).__name__] += 1
                    continue
                if now >= t_warm:
                    statuses[status] += 1
                    last[0] = time.monotonic()
                    latencies.append(last[0] - now)

    cpu0 = os.times()
    await asyncio.gather(*(client() for _ in range(clients)))
    cpu1 = os.times()
    return {
        "requests": sum(statuses.values()), "accepted": statuses.get(202, 0),
        "statuses": {str(k): v for k, v in statuses.items()}, "errors": dict(errors),
        "seconds": max(last[0] - t_warm, 1e-9), "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
        "batch": batch, "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
    }


def main() -> None:
    """Command line: run the load and print the result as one JSON object."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, default=15.0)
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.url, a.token, a.clients, a.batch, a.seconds))))


if __name__ == "__main__":
    main()
