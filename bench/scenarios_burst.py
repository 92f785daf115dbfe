"""The burst: N low-balance events published at once, the Celery reference against msgd.

Both get the same gateway (zero latency), the same servers, the same N. Throughput is the
delivered count over the time from the first event's publish to the last SMS at the gateway;
latency is gateway receive minus publish (it includes waiting behind the burst). The CPU
table is the CPU each process spent between the end of the warm-up and the last delivery,
per delivered SMS.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu
from bench.gateway import Gateway, Received
from bench.msgd_run import MsgdRun
from bench.profile import Profiler, as_text
from bench.reference_run import ReferenceRun
from bench.report import Goal, figure, ms, pct, say
from bench.services import Services

WARMUP = 200
FIRST = 1000  # event numbers of the burst start here (the warm-up's are 0..199)
# The steady run: at most 200 events/s and at most half the burst's rate (below capacity, so the
# latency is the pipeline's own, not the queue's).
PACED_RATE, PACED_N, PACED_FIRST = 200.0, 1000, 5_000_000
#: Rows of the CPU table: (label, msgd role, Celery role)
ROWS = [("route", "router", "celery route"), ("render", "renderer", "celery render"),
        ("send", "sender sms", "celery send"), ("record", "recorder", None),
        ("rabbitmq", "rabbitmq", "rabbitmq"), ("postgresql", "postgresql", "postgresql")]
OUTSIDE = ("gateway", "publisher")  # stand-ins for the SMS gateway and billing: not in the total


@dataclass
class Burst:
    """One burst run's figures."""

    kind: str
    n: int
    got: int = 0
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    complete: bool = False
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per role

    def per_message_us(self, role: str | None) -> float:
        """CPU of ``role`` per delivered message in µs (NaN when the run has no such role)."""
        if role is None or role not in self.cpu:
            return float("nan")
        return self.cpu[role] / max(self.got, 1) * 1e6

    def total_us(self) -> float:
        """CPU per delivered message of everything but the gateway and the publisher (µs)."""
        return sum(v for k, v in self.cpu.items() if k not in OUTSIDE) / max(self.got, 1) * 1e6


def analyse(rows: list[Received], first: int, last: int) -> tuple[int, float, float, float]:
    """(count, msg/s from first publish to last receipt, p50, p99 latency in s) of events [first, last)."""
    picked = [r for r in rows if first <= r.n < last]
    if not picked:
        return 0, 0.0, float("nan"), float("nan")
    span = max(r.at for r in picked) - min(r.t0 for r in picked)
    lat = [r.at - r.t0 for r in picked]
    return len(picked), len(picked) / span if span > 0 else 0.0, pct(lat, 0.5), pct(lat, 0.99)


def run_burst(services: Services, kind: str, n: int, *, paced: bool = False, profile_to: Path | None = None,
              celery_pool: str = "prefork") -> Burst:
    """One burst of ``n`` events through ``kind`` ('msgd' or 'celery'); prints its line."""
    result = Burst(kind, n)
    paced_rate = PACED_RATE
    with tempfile.TemporaryDirectory(prefix=f"msgd-bench-{kind}-") as tmp:
        folder = Path(tmp)
        gateway = Gateway(folder).start()
        run: Any = (MsgdRun(services, folder, gateway) if kind == "msgd"
                    else ReferenceRun(services, folder, gateway, pool=celery_pool))
        profiler = None
        try:
            run.prepare()
            run.start(*(["router", "renderer", "recorder", "sender sms"] if kind == "msgd" else []))
            run.publish(range(WARMUP))
            if not gateway.wait(WARMUP, 180):
                raise RuntimeError(f"{kind}: the warm-up did not reach the gateway; see {tmp}")
            roles = run.roles()
            if profile_to is not None:
                profiler = Profiler(folder)
                profiler.start({name: p.pid for name, p in run.procs.items()})
            before, self_before = roles.cpu(), cpu.self_cpu()
            t_burst = time.time()
            run.publish(range(FIRST, FIRST + n))
            result.complete = gateway.wait(WARMUP + n, 120 + n / 20)
            result.cpu = cpu.diff(roles.cpu(), before)
            result.cpu["publisher"] = cpu.self_cpu() - self_before
            if profiler is not None and profile_to is not None:
                text = as_text(profiler.stop())
                profile_to.write_text(f"## msgd burst of {n:,} events, one process per stage\n\n" + text)
                profiler = None
            if paced and result.complete:
                paced_rate = min(PACED_RATE, n / (time.time() - t_burst) / 2)
                t_begin = time.time()
                for i in range(0, PACED_N, 4):
                    run.publish(range(PACED_FIRST + i, PACED_FIRST + i + 4))
                    time.sleep(max(0.0, t_begin + (i + 4) / paced_rate - time.time()))
                gateway.wait(WARMUP + n + PACED_N, 120 + PACED_N / paced_rate)
        finally:
            if profiler is not None:
                profiler.stop()
            rows = gateway.stop()
            run.stop()
    result.got, result.rate, result.p50, result.p99 = analyse(rows, FIRST, FIRST + n)
    label = "msgd" if kind == "msgd" else "Celery reference"
    say(f"  {label}: {result.got:,}/{n:,} SMS delivered at {result.rate:,.0f} msg/s; latency p50"
        f" {ms(result.p50)}, p99 {ms(result.p99)} (includes waiting behind the burst)"
        + ("" if result.complete else "  [INCOMPLETE]"))
    if paced and kind == "msgd":
        got, _, p50, p99 = analyse(rows, PACED_FIRST, PACED_FIRST + PACED_N)
        figure(f"msgd steady {paced_rate:.0f} events/s (half the burst's rate, at most 200), latency", p99,
               f"{got:,}/{PACED_N:,} delivered; p50 {ms(p50)}, p99 {ms(p99)}")
    return result


def cpu_table(bursts: list[Burst]) -> None:
    """CPU per delivered message (µs) per process, one column per run."""
    heads = [("celery" if b.kind == "celery" else "msgd") for b in bursts]
    say("  CPU per delivered message (µs), by process:")
    say("    " + f"{'':<12}" + "".join(f"{h:>10}" for h in heads))
    for label, mrole, crole in ROWS:
        cells = [b.per_message_us(mrole if b.kind == "msgd" else crole) for b in bursts]
        say("    " + f"{label:<12}" + "".join(f"{'-' if c != c else f'{c:,.0f}':>10}" for c in cells))
    say("    " + f"{'total':<12}" + "".join(f"{b.total_us():>10,.0f}" for b in bursts))
    for role in OUTSIDE:
        say("    " + f"({role})"[:12].ljust(12) + "".join(f"{b.per_message_us(role):>10,.0f}" for b in bursts))
    say("    (total: every process but the gateway and the publisher, which stand for the SMS gateway"
        " and billing)")


def burst_scenario(services: Services, n: int, rounds: int, profile_to: Path | None,
                   celery_pool: str = "prefork", reference: bool = True) -> float:
    """The reference and msgd, alternating, ``rounds`` times; prints the ratio and the CPU table.
    Returns msgd's burst msg/s as printed (the median over the rounds; the flood compares with it). ``reference=False``:
    msgd only (a quicker run while tuning; no ratio)."""
    say(f"\n== burst: {n:,} low-balance events at once, zero-latency gateway ==")
    runs: list[Burst] = []
    for r in range(rounds):
        if reference:
            runs.append(run_burst(services, "celery", n, celery_pool=celery_pool))
        runs.append(run_burst(services, "msgd", n, paced=r == rounds - 1))
    if profile_to is not None:
        say("  profiled msgd run (py-spy attached to every stage; not counted in the figures):")
        run_burst(services, "msgd", n, profile_to=profile_to)
        say(f"  profile summary written to {profile_to}")
    refs = [b.rate for b in runs if b.kind == "celery"]
    ours = [b.rate for b in runs if b.kind == "msgd"]
    if not refs:
        figure("msgd, burst", statistics.median(ours), f"{statistics.median(ours):,.0f} msg/s",
               note="no reference in this run: --no-reference")
        cpu_table(runs)
        total = statistics.median([b.total_us() for b in runs])
        figure("msgd CPU per delivered message, all processes", total / 1000, f"{total / 1000:.2f} ms",
               Goal("<= 2 ms", high=2.0), "stages + RabbitMQ + PostgreSQL")
        return float(statistics.median(ours))
    ratio = statistics.median(ours) / statistics.median(refs) if min(refs) > 0 else float("nan")
    per_round = ", ".join(f"{m / c:.1f}x" for c, m in zip(refs, ours, strict=True) if c > 0)
    figure("Celery reference, burst", statistics.median(refs), f"{statistics.median(refs):,.0f} msg/s"
           + (f" (median of {rounds})" if rounds > 1 else ""))
    figure("msgd, burst", statistics.median(ours), f"{statistics.median(ours):,.0f} msg/s"
           + (f" (median of {rounds})" if rounds > 1 else ""))
    figure("msgd / Celery reference, same run", ratio, f"{ratio:.2f}x", Goal(">= 4x", low=4.0),
           f"per round {per_round}" if rounds > 1 else "")
    cpu_table(runs)
    total = statistics.median([b.total_us() for b in runs if b.kind == "msgd"])
    figure("msgd CPU per delivered message, all processes", total / 1000, f"{total / 1000:.2f} ms",
           Goal("<= 2 ms", high=2.0), "stages + RabbitMQ + PostgreSQL")
    ref_total = statistics.median([b.total_us() for b in runs if b.kind == "celery"])
    figure("Celery reference CPU per message / msgd's", ref_total / total, f"{ref_total / total:.2f}x"
           f" ({ref_total / 1000:.2f} ms / {total / 1000:.2f} ms)", Goal(">= 4x", low=4.0),
           "the ratio as CPU: hardly moved by other load on the machine, unlike msg/s")
    return float(statistics.median(ours))
