"""HTTP ingest: ``POST /api/v1/events`` against ``msgd run web`` (gunicorn) on RabbitMQ + PostgreSQL.

The server is msgd's own: ``msgd run web`` (msgd/web/server.py), gunicorn's sync workers,
``MSGD_WEB_WORKERS`` of them (its default, 2, unless ``MSGD_BENCH_WEB_WORKERS`` says
otherwise), a token made by ``msgd token create``. Every 202 means the events are confirmed by
RabbitMQ. No stage consumes them; the private broker is thrown away afterwards.
The load comes from ``bench.loadclient`` (one asyncio process, 8 clients): single events,
then lists of 100.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.gateway import Gateway
from bench.msgd_run import MsgdRun
from bench.report import Goal, figure, ms, say
from bench.services import Services, free_port

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("msgd run web exited")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError("msgd run web did not answer /healthz")


def _load(url: str, token: str, batch: int, seconds: float) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.loadclient", url, token, "--clients", str(CLIENTS),
                           "--batch", str(batch), "--seconds", str(seconds)], cwd=ROOT, capture_output=True,
                          text=True, timeout=seconds + 180)
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr.strip()[-2000:]}")
    out: dict[str, float] = json.loads(done.stdout)
    return out


def _profile_workers(web: subprocess.Popen[bytes], folder: Path, url: str, token: str, seconds: float,
                     profile_to: Path) -> None:
    """An extra single-event load with py-spy on every gunicorn worker; appends the summary."""
    from bench.cpu import snapshot
    from bench.profile import Profiler, as_text

    workers = {f"gunicorn worker {p.pid}": p.pid for p in snapshot().values() if p.ppid == web.pid}
    profiler = Profiler(folder)
    if not profiler.start(workers):
        return
    try:
        _load(url, token, 1, seconds)
    finally:
        text = as_text(profiler.stop())
    with profile_to.open("a") as f:
        f.write("\n## HTTP ingest, single events (gunicorn workers)\n\n" + text)
    say(f"  profiled an extra single-event load (not counted); summary appended to {profile_to}")


def ingest_scenario(services: Services, seconds: float, profile_to: Path | None = None) -> None:
    """Serve the API with ``msgd run web``, load it with single events then lists of 100 for
    ``seconds`` each, print requests/s, events/s and p99 with their goals."""
    workers = os.environ.get("MSGD_BENCH_WEB_WORKERS", "")
    say(f"\n== HTTP ingest: POST /api/v1/events, {CLIENTS} concurrent clients, gunicorn"
        f" ({workers or 'default'} sync workers, msgd run web) ==")
    with tempfile.TemporaryDirectory(prefix="msgd-bench-ingest-") as tmp:
        gateway = Gateway(Path(tmp)).start()
        port = free_port(45000, 50000)
        extra = {"MSGD_WEB_BIND": f"127.0.0.1:{port}", "MSGD_LOG_LEVEL": "WARNING"}
        if workers:
            extra["MSGD_WEB_WORKERS"] = workers
        run = MsgdRun(services, Path(tmp), gateway, extra_env=extra)
        try:
            run.prepare()
            token = run.msgd("token", "create", "bench", "--scope", "ingest").split()[0]
            run.procs["web"] = subprocess.Popen([sys.executable, "-m", "msgd", "run", "web"], env=run.env(), cwd=ROOT,
                                                stdout=subprocess.DEVNULL, stderr=(Path(tmp) / "web.log").open("ab"))
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, run.procs["web"])
            roles = run.roles()
            for batch in (1, 100):
                before = roles.cpu()
                r = _load(base + "/api/v1/events", token, batch, seconds)
                spent = {k: v - before.get(k, 0.0) for k, v in roles.cpu().items()}
                rps = r["requests"] / r["seconds"]
                eps = r["accepted"] * batch / r["seconds"]
                bad = r["requests"] - r["accepted"]
                cpu = (f"CPU s/s: gunicorn {spent.get('web', 0) / r['seconds']:.2f},"
                       f" rabbitmq {spent.get('rabbitmq', 0) / r['seconds']:.2f},"
                       f" postgresql {spent.get('postgresql', 0) / r['seconds']:.2f},"
                       f" load client {r['cpu'] / r['seconds']:.2f}")
                shown = (f"{rps:,.0f} requests/s, {eps:,.0f} events/s, p50 {ms(r['p50'])}, p99 {ms(r['p99'])}"
                         + (f", {bad} not accepted {r['statuses']} {r['errors']}" if bad or r["errors"] else ""))
                if batch == 1:
                    figure("HTTP ingest, single events", rps, shown, Goal(">= 500 requests/s", low=500), cpu)
                else:
                    figure("HTTP ingest, lists of 100", eps, shown, Goal(">= 5,000 events/s", low=5000), cpu)
            if profile_to is not None:
                _profile_workers(run.procs["web"], Path(tmp), base + "/api/v1/events", token, seconds, profile_to)
        finally:
            gateway.stop()
            run.stop()
