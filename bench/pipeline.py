"""``make bench``: low-balance events through the whole pipeline on RabbitMQ + PostgreSQL.

Runs router, renderer, SMS sender and recorder as separate processes, a local
gateway as another, publishes events and prints:

* burst: N events published at once -> delivered SMS/s, p50/p99 latency
  from publish to the gateway (includes queueing behind the burst);
* paced: events at a steady rate below capacity -> p50/p99 latency;
* slow gateway: the burst again against a gateway that takes 100 ms per request.

Latency is the gateway's receive time minus the publish time carried in the
event (same clock, same machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RABBIT = os.environ.get("MSGD_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG = os.environ.get("MSGD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Run:
    def __init__(self, tmp: Path, latency: float, senders: int) -> None:
        self.tmp = tmp
        self.ns = f"bench{uuid.uuid4().hex[:6]}"
        self.db_name = f"msgd_bench_{uuid.uuid4().hex[:6]}"
        self.db_url = f"{PG}/{self.db_name}"
        self.latency = latency
        self.senders = senders
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSGD_")}
        env.update({
            "MSGD_BROKER_URL": RABBIT, "MSGD_DATABASE_URL": self.db_url, "MSGD_NAMESPACE": self.ns,
            "MSGD_LOG_LEVEL": "WARNING", "MSGD_LOG_FORMAT": "json", "MSGD_VAR_DIR": str(self.tmp),
            "MSGD_BATCH_SIZE": "200", "MSGD_SENDER_CONCURRENCY": "200" if self.latency else "16",
        })
        return env

    def start(self) -> None:
        import psycopg

        with psycopg.connect(PG + "/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.db_name}"')
        port_file = self.tmp / "port"
        self.gw_out = self.tmp / "gateway.jsonl"
        gw = subprocess.Popen([sys.executable, "-m", "bench.gateway", str(port_file), str(self.gw_out),
                               "--latency", str(self.latency)], cwd=ROOT)
        self.gateway = gw
        deadline = time.monotonic() + 10
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline:
                raise SystemExit("bench gateway did not start")
            time.sleep(0.05)
        self.gw_port = int(port_file.read_text())
        env = self.env()
        subprocess.run([sys.executable, "-m", "msgd", "migrate"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        self.seed(env)
        stages = [["router"], ["renderer"], ["recorder"]] + [["sender", "--channel", "sms"]] * self.senders
        log = (self.tmp / "stages.log").open("ab")
        for args in stages:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "msgd", "run", *args], env=env,
                                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    def seed(self, env: dict[str, str]) -> None:
        config = {
            "operators": [{
                "code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example",
                "timezone": "Europe/Moscow", "attempts": 3,
                "channels": {"sms": {"url": f"http://127.0.0.1:{self.gw_port}/send", "request_type": "post",
                                     "params": "login=best&phones=%sms%&mes=%text%"}},
            }],
            "templates": [{"name": "bench", "owner": None, "event": "low_balance", "channel": "sms",
                           "body": "%(bench_n)s|%(bench_t0)s|Баланс %(balance).2f %(currecy)s"}],
        }
        path = self.tmp / "config.yaml"
        path.write_text(json.dumps(config, ensure_ascii=False))  # JSON is YAML
        subprocess.run([sys.executable, "-m", "msgd", "config", "load", str(path)], env=env, cwd=ROOT,
                       check=True, capture_output=True)

    def received(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.gw_port}/count", timeout=5) as r:
            return int(r.read())

    def publish(self, n: int, start: int, rate: float | None) -> None:
        from msgd.broker import Outgoing
        from msgd.broker.amqp import AmqpBroker
        from msgd.envelope import dumps
        from msgd.settings import Settings

        broker = AmqpBroker(Settings.from_env({"MSGD_BROKER_URL": RABBIT, "MSGD_NAMESPACE": self.ns}))
        broker.setup(["sms"])
        chunk = 200 if rate is None else max(1, int(rate / 50))
        t_begin = time.time()
        for i in range(start, start + n, chunk):
            batch = []
            for k in range(i, min(i + chunk, start + n)):
                batch.append(Outgoing(route="low_balance", exchange="events", body=dumps({
                    "event_id": f"{self.ns}-{k}", "type": "low_balance",
                    "occurred_at": "2026-11-27T10:00:00+03:00", "operator": {"code": "best"},
                    "abonent": {"id": k, "name": f"Абонент {k}", "balance": -12.5, "currency": "руб.",
                                "contacts": {"sms": f"+7912{k:07d}"}},
                    "data": {"bench_n": k, "bench_t0": f"{time.time():.6f}"},
                })))
            broker.publish(batch)
            if rate:
                due = t_begin + (i + chunk - start) / rate
                time.sleep(max(0.0, due - time.time()))
        broker.close()

    def wait(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.received() >= total:
                return True
            time.sleep(0.1)
        return False

    def results(self) -> list[dict[str, Any]]:
        self.gateway.terminate()
        self.gateway.wait(10)
        return [json.loads(line) for line in self.gw_out.read_text().splitlines()]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.gateway.poll() is None:
            self.gateway.kill()
        import psycopg

        from tests.support import delete_namespace

        delete_namespace(RABBIT, self.ns)
        with psycopg.connect(PG + "/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def cpu_seconds() -> dict[str, float]:
    """CPU time so far of each process that takes part, by role (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if "msgd run" in cmd:
            role = cmd.split("msgd run", 1)[1].strip().replace("--channel ", "")
        elif "beam.smp" in cmd:
            role = "rabbitmq"
        elif cmd.startswith("postgres"):
            role = "postgresql"
        elif "bench.gateway" in cmd:
            role = "gateway"
        elif "bench.pipeline" in cmd:
            role = "publisher"
        else:
            continue
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def analyse(rows: list[dict[str, Any]], first: int, last: int) -> tuple[float, float, float, int]:
    picked = []
    for r in rows:
        n, t0, _ = r["text"].split("|", 2)
        if first <= int(n) < last:
            picked.append((float(t0), r["at"]))
    if not picked:
        return 0.0, float("nan"), float("nan"), 0
    start = min(t0 for t0, _ in picked)
    end = max(at for _, at in picked)
    lat = [at - t0 for t0, at in picked]
    return len(picked) / (end - start), pct(lat, 0.5), pct(lat, 0.99), len(picked)


PACED_RATE = 200.0
PACED_N = 1000


def scenario(name: str, n: int, latency: float, senders: int, paced: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="msgd-bench-") as tmp:
        run = Run(Path(tmp), latency, senders)
        try:
            run.start()
            run.publish(200, 0, None)  # warm-up: connections, caches, imports
            if not run.wait(200, 120):
                raise SystemExit(f"warm-up did not complete; see {tmp}/stages.log")
            cpu_before = cpu_seconds()
            run.publish(n, 1000, None)
            complete = run.wait(200 + n, 600)
            cpu_used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds().items()}
            if complete and paced:
                run.publish(PACED_N, 100_000, PACED_RATE)
                complete = run.wait(200 + n + PACED_N, 120)
            rows = run.results()
        finally:
            run.stop()
    rate, p50, p99, got = analyse(rows, 1000, 1000 + n)
    flag = "" if complete else "  [INCOMPLETE]"
    print(f"{name}: {got}/{n} SMS delivered at {rate:,.0f} msg/s; latency p50 {p50 * 1000:,.0f} ms,"
          f" p99 {p99 * 1000:,.0f} ms (burst: includes waiting behind the burst){flag}")
    per_msg = ", ".join(f"{role} {sec / max(got, 1) * 1e6:,.0f}" for role, sec in
                        sorted(cpu_used.items(), key=lambda kv: -kv[1]) if sec > 0)
    print(f"  CPU per delivered message (us): {per_msg}")
    if paced:
        _, p50, p99, got = analyse(rows, 100_000, 100_000 + PACED_N)
        print(f"{name}, steady {PACED_RATE:.0f} events/s: {got}/{PACED_N} delivered; latency"
              f" p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms")
    sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=10000, help="events in the burst")
    p.add_argument("--senders", type=int, default=1, help="SMS sender processes")
    p.add_argument("--slow-n", type=int, default=3000, help="events for the 100 ms gateway run (0 = skip)")
    a = p.parse_args()
    print(f"msgd bench: RabbitMQ {RABBIT.split('@')[-1]}, PostgreSQL, {os.cpu_count()} cores")
    scenario("fast gateway", a.n, 0.0, a.senders, paced=True)
    if a.slow_n:
        scenario("100 ms gateway", a.slow_n, 0.1, a.senders, paced=False)


if __name__ == "__main__":
    main()
