"""``make bench-soak``: resident memory of each stage while a million events drain.

``python -m bench.soak [-n 1000000] [--interval 10]``: msgd's four stages on a private
RabbitMQ + PostgreSQL (as ``make bench``), a zero-latency gateway, ``n`` low-balance events
published at once (in confirmed batches; the stages drain while the rest is published). A
sampler reads every stage's RSS every ``interval`` seconds until the gateway has them all.
Printed: the RSS curve (about 20 samples spread over the run), each stage's peak (goal <= 150
MB) and whether it stays flat (goal: the peak of the last quarter of the run within 10 % of
the peak of the first quarter, i.e. no growth with the number of messages handled).
At about 400 msg/s on two cores a million events take some 45 minutes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.gateway import Gateway
from bench.msgd_run import MsgdRun
from bench.report import Goal, figure, say, summary
from bench.services import Services, exit_on_sigterm, private_possible

STAGES = ("router", "renderer", "sender sms", "recorder")
MB = 1024 * 1024


def soak(services: Services, n: int, interval: float) -> None:
    """Drain ``n`` events through msgd, sampling RSS every ``interval`` s; print the curve and
    each stage's peak and growth with their goals."""
    say(f"\n== soak: {n:,} low-balance events drain; RSS of every stage every {interval:.0f} s ==")
    samples: list[tuple[float, int, dict[str, int]]] = []  # (seconds, delivered, role -> bytes)
    with tempfile.TemporaryDirectory(prefix="msgd-bench-soak-") as tmp:
        gateway = Gateway(Path(tmp)).start()
        run = MsgdRun(services, Path(tmp), gateway)
        stop = threading.Event()
        try:
            run.prepare()
            run.start(*STAGES)
            run.publish(range(200))
            if not gateway.wait(200, 180):
                raise RuntimeError(f"soak: the warm-up did not reach the gateway; see {tmp}")
            roles = run.roles()
            start = time.monotonic()

            def take() -> None:
                rss = roles.rss()
                samples.append((time.monotonic() - start, gateway.count() - 200, {s: rss.get(s, 0) for s in STAGES}))

            def sample() -> None:
                while True:
                    take()
                    if stop.wait(interval):
                        return

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            for first in range(1000, 1000 + n, 10_000):
                run.publish(range(first, min(first + 10_000, 1000 + n)))
            say(f"  published {n:,} events in {time.monotonic() - start:,.0f} s")
            complete = gateway.wait(200 + n, 900 + n / 20)
            stop.set()
            sampler.join(interval + 30)
            take()  # the end of the drain
        finally:
            stop.set()
            gateway.stop()
            run.stop()
    elapsed = samples[-1][0] if samples else 0.0
    delivered = samples[-1][1] if samples else 0
    say(f"  {delivered:,}/{n:,} delivered in {elapsed:,.0f} s" + ("" if complete else "  [INCOMPLETE]"))
    say("  RSS (MB) while draining:")
    say("    " + f"{'s':>7}{'delivered':>11}" + "".join(f"{s:>12}" for s in STAGES))
    step = max(1, len(samples) // 20)
    for t, got, rss in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        say("    " + f"{t:>7,.0f}{got:>11,}" + "".join(f"{rss[s] / MB:>12.1f}" for s in STAGES))
    quarter = max(1, len(samples) // 4)
    for s in STAGES:
        peak = max((r[s] for _, _, r in samples), default=0) / MB
        figure(f"soak, peak RSS of {s}", peak, f"{peak:.1f} MB", Goal("<= 150 MB", high=150))
        first = max((r[s] for _, _, r in samples[:quarter]), default=0) / MB
        last = max((r[s] for _, _, r in samples[-quarter:]), default=0) / MB
        growth = last / first - 1 if first else float("nan")
        figure(f"soak, RSS growth of {s}", growth, f"{first:.1f} -> {last:.1f} MB ({growth:+.0%})",
               Goal("flat: within 10 %", high=0.10), "peak of the last quarter vs the first quarter")


def main() -> None:
    """Command line: ``python -m bench.soak``."""
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=int(os.environ.get("MSGD_BENCH_SOAK_N", "") or 1_000_000))
    p.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples (10)")
    p.add_argument("--shared", action="store_true", help="use the host's RabbitMQ and PostgreSQL")
    a = p.parse_args()
    exit_on_sigterm()
    with Services(a.shared or bool(private_possible())) as services:
        say(f"msgd soak {time.strftime('%Y-%m-%d %H:%M %Z')}: {os.cpu_count()} cores; {services.describe()}")
        soak(services, a.n, a.interval)
    summary()


if __name__ == "__main__":
    main()
