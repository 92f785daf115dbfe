"""``make bench``: msgd on RabbitMQ + PostgreSQL against the Celery reference and its own goals.

Scenarios (``--only`` picks some; each size is a flag or an ``MSGD_BENCH_*`` variable):

* burst   N low-balance events at once to a zero-latency gateway, the Celery reference and
          msgd alternating (``--rounds``): msg/s of each, the ratio, the CPU per delivered
          message of every process; then msgd's latency at a steady rate (half the
          burst's, at most 200 events/s);
* flood   ``--flood-n`` bulk events queued, then password resets at 5/s while they drain:
          the resets' latency and the bulk throughput against the burst's;
* slow    one SMS sender against a gateway answering in 100 ms: msg/s; then the same with
          ``rate_limit: 50``: the requests/s the gateway gets;
* ingest  ``POST /api/v1/events`` to gunicorn, single events and lists of 100;
* render  the renderer against raw compiled Django on the same template.

``make bench`` keeps the whole run under ten minutes on two busy cores: a flood of 20,000.
``make bench-full`` is the issue's size: a flood of 100,000 and two burst rounds (some 20
minutes). ``make bench-soak`` runs ``bench.soak`` (memory while a million events drain).
Every figure is printed with its goal (issue 14) and whether it is met; nothing is asserted.
The bench starts a private RabbitMQ node and PostgreSQL cluster (``bench/services.py``) unless
``--shared``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from bench.report import say, summary
from bench.services import Services, exit_on_sigterm, private_possible

SCENARIOS = ("burst", "flood", "slow", "ingest", "render")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module's docstring); MSGD_BENCH_* variables give the defaults."""
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=_env_int("MSGD_BENCH_N", 10_000), help="events in the burst (10,000)")
    p.add_argument("--rounds", type=int, default=_env_int("MSGD_BENCH_ROUNDS", 1),
                   help="burst rounds, reference and msgd alternating (1)")
    p.add_argument("--flood-n", type=int, default=_env_int("MSGD_BENCH_FLOOD_N", 20_000),
                   help="bulk events queued before the password resets (20,000; make bench-full: 100,000)")
    p.add_argument("--slow-n", type=int, default=_env_int("MSGD_BENCH_SLOW_N", 5_000),
                   help="messages for the 100 ms gateway (5,000)")
    p.add_argument("--ingest-seconds", type=float, default=_env_int("MSGD_BENCH_INGEST_SECONDS", 15),
                   help="seconds of each HTTP ingest load (15)")
    p.add_argument("--only", default=os.environ.get("MSGD_BENCH_ONLY", ""),
                   help=f"comma-separated scenarios out of {','.join(SCENARIOS)} (all)")
    p.add_argument("--shared", action="store_true", help="use the host's RabbitMQ and PostgreSQL")
    p.add_argument("--profile", type=Path, default=None,
                   help="also profile one msgd burst with py-spy and write the summary here")
    p.add_argument("--no-reference", action="store_true", help="burst: msgd only, no Celery run (quicker)")
    p.add_argument("--celery-pool", default="prefork", help="the reference's worker pool (prefork)")
    a = p.parse_args(argv)
    a.only = [s.strip() for s in a.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = set(a.only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return a


def header(services: Services) -> None:
    """Date, cores, Python, servers and the machine's load before the run."""
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    say(f"msgd bench {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; {services.describe()}")
    say(f"load before the run: {load}")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen scenarios on one set of servers, then print the summary."""
    a = parse(argv)
    exit_on_sigterm()
    why = private_possible()
    # Rendering is measured in this process: no servers to start for it alone.
    shared = a.shared or bool(why) or a.only == ["render"]
    if why and not a.shared:
        say(f"private servers not possible ({why}): using the shared ones")
    with Services(shared) as services:
        header(services)
        burst_rate: float | None = None
        if "burst" in a.only:
            from bench.scenarios_burst import burst_scenario

            burst_rate = burst_scenario(services, a.n, a.rounds, a.profile, a.celery_pool, not a.no_reference)
        if "flood" in a.only:
            from bench.scenarios_flood import flood_scenario

            flood_scenario(services, a.flood_n, burst_rate)
        if "slow" in a.only:
            from bench.scenarios_slow import slow_scenario

            slow_scenario(services, a.slow_n)
        if "ingest" in a.only:
            from bench.ingest import ingest_scenario

            ingest_scenario(services, a.ingest_seconds, a.profile)
        if "render" in a.only:
            from bench.render import render_scenario

            render_scenario()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    say(f"\nload after the run: {load}")
    summary()


if __name__ == "__main__":
    main()
