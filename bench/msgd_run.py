"""msgd on RabbitMQ + PostgreSQL for one bench scenario: its own namespace and database.

Each stage runs as ``msgd run <stage>`` in a process of its own (as in production, one
process per stage); events are published with msgd's own AMQP broker class (publisher
confirms, batches of 200), as billing would. The stages get ``MSGD_BATCH_SIZE=200`` and
``MSGD_SENDER_CONCURRENCY=16`` (200 against the slow gateway); ``MSGD_BENCH_SET_<NAME>=value``
in the bench's environment sets ``MSGD_<NAME>`` for them, to try another setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.cpu import Roles
from bench.events import event, msgd_config
from bench.gateway import Gateway
from bench.services import Services, stop_processes

ROOT = Path(__file__).resolve().parent.parent
STAGES = {"router": ["router"], "renderer": ["renderer"], "recorder": ["recorder"],
          "sender sms": ["sender", "--channel", "sms"]}


class MsgdRun:
    """Stages, gateway, namespace and database of one scenario; ``stop()`` removes them all."""

    def __init__(self, services: Services, folder: Path, gateway: Gateway, *, rate_limit: float | None = None,
                 sender_concurrency: int = 16, extra_env: dict[str, str] | None = None) -> None:
        self.services, self.folder, self.gateway = services, folder, gateway
        self.ns = f"bench{uuid.uuid4().hex[:6]}"
        self.rate_limit = rate_limit
        self.sender_concurrency = sender_concurrency
        self.extra_env = extra_env or {}
        self.db_url = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._broker: Any = None

    def env(self) -> dict[str, str]:
        """The stages' environment: the bench's broker, database and namespace, no other MSGD_ variable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSGD_")}
        env.update({
            "MSGD_BROKER_URL": self.services.rabbit_url, "MSGD_DATABASE_URL": self.db_url,
            "MSGD_NAMESPACE": self.ns, "MSGD_LOG_LEVEL": "WARNING", "MSGD_LOG_FORMAT": "json",
            "MSGD_VAR_DIR": str(self.folder), "MSGD_BATCH_SIZE": "200",
            "MSGD_SENDER_CONCURRENCY": str(self.sender_concurrency),
        })
        env.update(self.extra_env)
        # MSGD_BENCH_SET_<NAME>=value sets MSGD_<NAME> for the stages (to try a setting).
        env.update({"MSGD_" + k[len("MSGD_BENCH_SET_"):]: v for k, v in os.environ.items()
                    if k.startswith("MSGD_BENCH_SET_")})
        return env

    def msgd(self, *args: str) -> str:
        """Run one ``msgd`` command with the stages' environment; its stdout (RuntimeError if it fails)."""
        done = subprocess.run([sys.executable, "-m", "msgd", *args], env=self.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"msgd {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def prepare(self) -> MsgdRun:
        """Database, tables, broker topology and the bench operator with its templates."""
        self.db_url = self.services.create_database()
        self.msgd("setup")
        path = self.folder / "config.yaml"
        path.write_text(json.dumps(msgd_config(self.gateway.url, self.rate_limit), ensure_ascii=False))
        self.msgd("config", "load", str(path))  # JSON is YAML
        return self

    def start(self, *stages: str) -> None:
        """Start these stages (names of ``STAGES``), each in its own process."""
        log = (self.folder / "stages.log").open("ab")
        for name in stages:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "msgd", "run", *STAGES[name]],
                                                env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def roles(self) -> Roles:
        """The stages, the gateway and the servers as CPU/RSS roles."""
        roles = Roles()
        for name, proc in self.procs.items():
            roles.add(name, proc.pid)
        roles.add("rabbitmq", *self.services.rabbit_pids)
        roles.add("postgresql", *self.services.pg_pids)
        if self.gateway.proc is not None:
            roles.add("gateway", self.gateway.proc.pid)
        return roles

    # -- publishing (as billing does) ------------------------------------------------------
    def broker(self) -> Any:
        """msgd's own AMQP broker on the bench namespace (topology declared once), for publishing."""
        if self._broker is None:
            from msgd.broker.amqp import AmqpBroker
            from msgd.settings import Settings

            self._broker = AmqpBroker(Settings.from_env({"MSGD_BROKER_URL": self.services.rabbit_url,
                                                         "MSGD_NAMESPACE": self.ns}))
            self._broker.setup(["sms"])
        return self._broker

    def publish(self, numbers: Iterable[int], etype: str = "low_balance", chunk: int = 200) -> None:
        """Publish events with these numbers, ``chunk`` per confirmed batch."""
        from msgd.broker import Outgoing
        from msgd.envelope import dumps

        batch: list[Any] = []
        for k in numbers:
            batch.append(Outgoing(route=etype, exchange="events", body=dumps(event(self.ns, k, etype))))
            if len(batch) >= chunk:
                self.broker().publish(batch)
                batch = []
        if batch:
            self.broker().publish(batch)

    def depth(self, queues: Sequence[str]) -> int:
        """Messages ready in these queues now."""
        return sum(self.broker().queue_depths(list(queues)).values())

    def sender_queues(self) -> list[str]:
        """The SMS sender's queues (both lanes)."""
        from msgd import topology

        return topology.sender_queues(self.ns, "sms")

    def recorded(self) -> int:
        """Messages in the message log (the renderer reports each one it queues for a sender)."""
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as c:
            row = c.execute("SELECT count(*) FROM msgd_message").fetchone()
        return int(row[0]) if row else 0

    def wait_queued(self, total: int, timeout: float) -> bool:
        """Poll until ``total`` messages are in the log and the router and renderer queues are
        empty (queue depths count RabbitMQ messages, and a pack holds many); False at the deadline."""
        from msgd import topology

        before = [*topology.router_queues(self.ns), *(topology.queue_for_route(self.ns, topology.render_route(lane))
                                                      for lane in ("tx", "bulk"))]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.recorded() >= total and self.depth(before) == 0:
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> None:
        """Stop the stages (SIGTERM, then SIGKILL after 30 s) and remove the database (and the
        namespace on a shared broker)."""
        stop_processes(self.procs)
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        if self.services.shared:
            delete_namespace(self.services.rabbit_url, self.ns)
        if self.db_url:
            self.services.drop_database(self.db_url)


def delete_namespace(url: str, ns: str) -> None:
    """Remove a namespace's queues and exchanges from a shared broker (kombu, no pika)."""
    import kombu

    from msgd import topology as topo

    queues = [*topo.router_queues(ns), *topo.render_queues(ns), topo.status_queue(ns), topo.parking_queue(ns),
              *topo.sender_queues(ns, "sms")]
    exchanges = [topo.events_exchange(ns), topo.events_fallback_exchange(ns), topo.internal_exchange(ns),
                 topo.parking_exchange(ns)]
    with kombu.Connection(url) as conn:
        channel = conn.channel()
        for q in queues:
            channel.queue_delete(q)
        for x in exchanges:
            channel.exchange_delete(x)
