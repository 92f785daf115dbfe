"""The RabbitMQ and PostgreSQL a bench run uses: private ones by default, the shared ones on request.

The machine running the bench is often shared (other test runs use the host's RabbitMQ on
5672 and PostgreSQL on 5432), so the CPU that those servers spend would not be the bench's
alone. By default the bench starts its own single RabbitMQ node (``deploy/rabbitmq-cluster.sh``
with one node: own node name, ports, data directory) and its own PostgreSQL cluster
(``initdb`` + ``postgres`` in a temporary directory, as the ``postgres`` user when run as
root, since PostgreSQL refuses to run as root). Their process trees are then known by PID,
and the CPU table counts exactly what the measured pipeline cost them.

``--shared`` (or no rabbitmq-server / initdb on the machine) uses the host's servers instead;
the CPU of ``beam.smp`` and of every ``postgres`` process is then counted by name and
includes whatever else uses them at the time (the table says so).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "deploy" / "rabbitmq-cluster.sh"
SHARED_RABBIT = os.environ.get("MSGD_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
SHARED_PG = os.environ.get("MSGD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def free_port(low: int, high: int) -> int:
    """A port in [low, high) that is free on 127.0.0.1 now (below the ephemeral range)."""
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {low}..{high}")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so the private servers and every stage are stopped on the way out
    (Python's default would end the process at once and leave them running)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def private_possible() -> str:
    """'' when private servers can be started here, else why not."""
    if not CLUSTER_SCRIPT.exists():
        return f"{CLUSTER_SCRIPT} is missing"
    if not (shutil.which("rabbitmq-server") or Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()):
        return "rabbitmq-server is not installed"
    if not (_pg_bin("initdb") and _pg_bin("postgres")):
        return "PostgreSQL's initdb/postgres are not installed"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser (PostgreSQL cannot run as root)"
    return ""


class Services:
    """Broker URL, PostgreSQL base URL (no database name) and the server processes' PIDs.

    ``rabbit_pids`` / ``pg_pids`` are the roots of the servers' process trees (private), or
    empty for the shared servers (then the CPU table finds them by process name).
    """

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.rabbit_url = SHARED_RABBIT
        self.pg_url = SHARED_PG
        self.rabbit_pids: list[int] = []
        self.pg_pids: list[int] = []
        self._rabbit_dir: Path | None = None
        self._pg_dir: Path | None = None
        self._pg_proc: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        """Which servers are used, for the header."""
        if self.shared:
            return (f"shared RabbitMQ {self.rabbit_url.split('@')[-1]} and PostgreSQL"
                    f" {self.pg_url.split('@')[-1]} (their CPU includes other users' load)")
        return "private RabbitMQ node and PostgreSQL cluster started for this run"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Services:
        """Start the private servers (nothing for the shared ones); stops what started on failure."""
        if self.shared:
            return self
        try:
            self._start_pg()
            self._start_rabbit()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop and remove the private servers; a second SIGTERM meanwhile is ignored (the
        first one is why we are here), so neither is left running."""
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if self._rabbit_dir is not None:
                subprocess.run([str(CLUSTER_SCRIPT), "destroy", str(self._rabbit_dir)], capture_output=True,
                               timeout=120)
                self._rabbit_dir = None
        finally:
            try:
                self._stop_pg()
            finally:
                signal.signal(signal.SIGTERM, previous)

    def _stop_pg(self) -> None:
        if self._pg_proc is not None:
            for pid in self.pg_pids:  # the postmaster itself: runuser need not pass signals on
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)  # "fast" shutdown
            try:
                self._pg_proc.wait(60)
            except subprocess.TimeoutExpired:
                for pid in self.pg_pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self._pg_proc.kill()
                self._pg_proc.wait(10)
            self._pg_proc = None
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- RabbitMQ: one node through the deploy script -------------------------------------
    def _start_rabbit(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="msgd-bench-rabbit-"))
        shutil.rmtree(folder)  # the script makes it and refuses an existing cluster
        self._rabbit_dir = folder
        amqp, dist = free_port(20000, 25000), free_port(27000, 32000)
        env = {**os.environ, "CLUSTER_NAME": f"msgdbench{uuid.uuid4().hex[:6]}", "CLUSTER_SIZE": "1",
               "CLUSTER_AMQP_PORT": str(amqp), "CLUSTER_DIST_PORT": str(dist)}
        done = subprocess.run([str(CLUSTER_SCRIPT), "start", str(folder)], env=env, capture_output=True,
                              text=True, timeout=240)
        if done.returncode != 0:
            raise RuntimeError(f"private RabbitMQ did not start: {done.stderr.strip() or done.stdout.strip()}")
        self.rabbit_url = f"amqp://guest:guest@127.0.0.1:{amqp}//"
        self.rabbit_pids = [int((folder / "n1" / "pid").read_text().strip())]

    # -- PostgreSQL: initdb + postgres in the foreground ----------------------------------
    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _start_pg(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="msgd-bench-pg-"))
        self._pg_dir = folder
        data = folder / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
        assert initdb and postgres
        done = subprocess.run([*self._as_postgres(), initdb, "-D", str(data), "-A", "trust", "-U", "postgres",
                               "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
        port = free_port(40000, 45000)
        # The host server's settings (fsync and synchronous commit on, 128 MB shared buffers).
        self._pg_proc = subprocess.Popen(
            [*self._as_postgres(), postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=128MB", "-c", "max_connections=200"],
            stdout=(folder / "postgres.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        self.pg_url = f"postgresql://postgres@127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        import psycopg

        while True:
            try:
                with psycopg.connect(self.pg_url + "/postgres", connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if self._pg_proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private PostgreSQL did not start; see {folder}/postgres.log") from None
                time.sleep(0.2)
        self.pg_pids = [self._postmaster_pid(data)]

    def _postmaster_pid(self, data: Path) -> int:
        """The postmaster (runuser forks it as a child, so Popen's pid may be runuser's)."""
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])

    # -- databases ------------------------------------------------------------------------
    def create_database(self, prefix: str = "msgd_bench") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.pg_url + "/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"{self.pg_url}/{name}"

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database`` (connections closed by force)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.pg_url + "/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop_processes(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process of ``procs`` first (so they stop side by side), then wait for each;
    one still running after 30 s is killed. ``procs`` is emptied."""
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    procs.clear()
