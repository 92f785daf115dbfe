"""The fast lane under a flood: password resets while a bulk backlog drains.

msgd's stages start and warm up; then ``n`` low-balance (bulk lane) events are published at
once, and from the moment they are all queued a password reset (transactional lane) is
published every 0.2 s (5/s) until the bulk has drained. Printed: the resets' latency from
publish to the gateway (goal p99 <= 250 ms), and the bulk's throughput (first bulk publish to
last bulk SMS) against the burst's (goal >= 80 %): the fast lane must not cost the bulk much.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.gateway import Gateway
from bench.msgd_run import MsgdRun
from bench.report import Goal, figure, ms, pct, say
from bench.scenarios_burst import FIRST, WARMUP, analyse
from bench.services import Services

RESET_RATE = 5.0
RESET_FIRST = 9_000_000  # event numbers of the password resets


def flood_scenario(services: Services, n: int, burst_rate: float | None) -> None:
    """Run the flood and print the resets' latency and the bulk's share of ``burst_rate``
    (msg/s of the burst in the same run; None: printed without a comparison)."""
    say(f"\n== fast lane under a flood: {n:,} bulk events queued, password resets at {RESET_RATE:.0f}/s ==")
    with tempfile.TemporaryDirectory(prefix="msgd-bench-flood-") as tmp:
        gateway = Gateway(Path(tmp)).start()
        run = MsgdRun(services, Path(tmp), gateway)
        resets = 0
        try:
            run.prepare()
            run.start("router", "renderer", "recorder", "sender sms")
            run.publish(range(WARMUP))
            run.publish(range(RESET_FIRST - WARMUP, RESET_FIRST), etype="password_reset")
            if not gateway.wait(2 * WARMUP, 180):
                raise RuntimeError(f"flood: the warm-up did not reach the gateway; see {tmp}")
            t_pub = time.monotonic()
            run.publish(range(FIRST, FIRST + n))
            say(f"  {n:,} bulk events published in {time.monotonic() - t_pub:.1f} s; password resets start")
            start = time.time()
            deadline = time.monotonic() + 300 + n / 20
            drained = False
            while time.monotonic() < deadline:
                run.publish([RESET_FIRST + resets], etype="password_reset")
                resets += 1
                if resets % 5 == 0 and gateway.count() >= 2 * WARMUP + n + resets - 1:
                    drained = True
                    break
                time.sleep(max(0.0, start + resets / RESET_RATE - time.time()))
            gateway.wait(2 * WARMUP + n + resets, 60)
        finally:
            rows = gateway.stop()
            run.stop()
    got, bulk_rate, _, _ = analyse(rows, FIRST, FIRST + n)
    lat = [r.at - r.t0 for r in rows if RESET_FIRST <= r.n < RESET_FIRST + resets]
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    say(f"  bulk: {got:,}/{n:,} delivered at {bulk_rate:,.0f} msg/s" + ("" if drained else "  [NOT DRAINED]"))
    figure("password reset under a bulk flood, latency publish->gateway", p99,
           f"{len(lat):,}/{resets:,} delivered; p50 {ms(p50)}, p99 {ms(p99)}, max {ms(max(lat, default=float('nan')))}",
           Goal("p99 <= 250 ms", high=0.25))
    if burst_rate:
        share = bulk_rate / burst_rate
        figure("bulk throughput under the resets vs the burst", share,
               f"{bulk_rate:,.0f} msg/s = {share:.0%} of the burst's {burst_rate:,.0f} msg/s", Goal(">= 80 %", low=0.8))
    else:
        figure("bulk throughput under the resets", bulk_rate, f"{bulk_rate:,.0f} msg/s",
               note="no burst in this run to compare with (goal >= 80 % of the burst's)")
