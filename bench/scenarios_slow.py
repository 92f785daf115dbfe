"""Slow gateways: one SMS sender process against a gateway that answers in 100 ms.

The router, renderer and recorder fill the sender's queue first (no sender running), so what
is measured is the sender alone, not the stages before it: then one ``msgd run sender
--channel sms`` starts, and the gateway's receive times give the rate (first to last
request). ``MSGD_SENDER_CONCURRENCY`` is 200 (the bound on requests in flight; 100 ms per
request needs >= 100 in flight for 1,000/s).

Then the same with ``rate_limit: 50`` on the operator's SMS gateway: the requests/s the
gateway receives (goal 50 +- 5), over the whole run and per second.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from bench.gateway import Gateway, Received
from bench.msgd_run import MsgdRun
from bench.report import Goal, figure, say
from bench.services import Services

LATENCY = 0.1
CONCURRENCY = 200


def _fill_and_send(services: Services, n: int, rate_limit: float | None) -> tuple[list[Received], bool]:
    """Queue ``n`` rendered SMS, then start one sender; every request the gateway got."""
    with tempfile.TemporaryDirectory(prefix="msgd-bench-slow-") as tmp:
        gateway = Gateway(Path(tmp), latency=LATENCY).start()
        run = MsgdRun(services, Path(tmp), gateway, rate_limit=rate_limit, sender_concurrency=CONCURRENCY)
        try:
            run.prepare()
            run.start("router", "renderer", "recorder")
            run.publish(range(n))
            if not run.wait_queued(n, 120 + n / 20):
                raise RuntimeError(f"slow: the sender's queue did not fill; see {tmp}")
            run.start("sender sms")
            complete = gateway.wait(n, 120 + (n / rate_limit if rate_limit else n / 50))
        finally:
            rows = gateway.stop()
            run.stop()
    return rows, complete


def _rate(rows: list[Received]) -> float:
    if len(rows) < 2:
        return 0.0
    return (len(rows) - 1) / (rows[-1].at - rows[0].at)


def slow_scenario(services: Services, n: int, limited_n: int = 1000) -> None:
    """One sender against the 100 ms gateway with ``n`` SMS, then ``limited_n`` SMS at
    ``rate_limit: 50``; print msg/s and requests/s with their goals."""
    say(f"\n== slow gateway: one SMS sender, gateway answering in {LATENCY * 1000:.0f} ms ==")
    rows, complete = _fill_and_send(services, n, None)
    rate = _rate(rows)
    figure("one sender, 100 ms gateway", rate,
           f"{len(rows):,}/{n:,} SMS at {rate:,.0f} msg/s" + ("" if complete else " [INCOMPLETE]"),
           Goal(">= 1,000 msg/s", low=1000), f"{CONCURRENCY} in flight at most")
    rows, complete = _fill_and_send(services, limited_n, 50.0)
    rate = _rate(rows)
    per_second = Counter(int(r.at - rows[0].at) for r in rows) if rows else Counter()
    full = [per_second[s] for s in range(1, max(per_second, default=0))]  # whole seconds, not the edges
    spread = f"per second {min(full)}..{max(full)}" if full else "too short for per-second counts"
    figure("rate_limit 50, requests/s at the gateway", rate,
           f"{len(rows):,}/{limited_n:,} requests at {rate:.1f}/s ({spread})" + ("" if complete else " [INCOMPLETE]"),
           Goal("50 +- 5", low=45, high=55))
