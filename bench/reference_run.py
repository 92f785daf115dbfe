"""Runs the Celery reference (``bench.reference_celery``) for one scenario.

One ``celery worker`` per stage (route, render, send), each on its own queue, Celery's
default prefork pool with one pool process (``--pool``/``--concurrency`` to change), prefetch
16. The bench publishes ``ref.route`` tasks with ``send_task`` (one connection, as billing
would call ``route.delay(event)``), and the same gateway counts what arrives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.cpu import Roles
from bench.events import OPERATOR, TEMPLATES, event
from bench.gateway import Gateway
from bench.services import Services, stop_processes

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("route", "render", "send")


class ReferenceRun:
    """Workers, database and queues of one Celery reference run; ``stop()`` removes them all."""

    def __init__(self, services: Services, folder: Path, gateway: Gateway, *, pool: str = "prefork",
                 concurrency: int = 1) -> None:
        self.services, self.folder, self.gateway = services, folder, gateway
        self.pool, self.concurrency = pool, concurrency
        self.ns = f"ref{uuid.uuid4().hex[:6]}"
        self.db_url = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._app: Any = None

    def describe(self) -> str:
        """One line on how the reference is run."""
        return (f"Celery {self.celery_version()}: 3 workers (route, render, send), pool {self.pool} x"
                f" {self.concurrency}, acks_late, prefetch 16, requests + psycopg")

    @staticmethod
    def celery_version() -> str:
        """The installed Celery's version."""
        import celery

        return str(celery.__version__)

    def env(self) -> dict[str, str]:
        """The workers' environment: where the broker and the database are, the queue prefix."""
        return {**os.environ, "BENCH_REF_BROKER": self.services.rabbit_url, "BENCH_REF_DB": self.db_url,
                "BENCH_REF_NS": self.ns}

    def prepare(self) -> ReferenceRun:
        """Database with the operator and templates the reference reads."""
        import psycopg

        from bench.reference_celery import TABLES

        self.db_url = self.services.create_database("ref_bench")
        with psycopg.connect(self.db_url, autocommit=True) as c:
            c.execute(TABLES)
            c.execute("INSERT INTO ref_operator (code, sms_url) VALUES (%s, %s)", (OPERATOR, self.gateway.url))
            for etype, body in TEMPLATES.items():
                c.execute("INSERT INTO ref_template (event_type, operator_code, channel, body)"
                          " VALUES (%s, NULL, 'sms', %s)", (etype, body))
        return self

    def start(self) -> None:
        """One ``celery worker`` per stage, each consuming its own queue."""
        log = (self.folder / "celery.log").open("ab")
        for stage in STAGES:
            self.procs[stage] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "bench.reference_celery", "worker", "-Q", f"{self.ns}.{stage}",
                 "-n", f"{stage}@{self.ns}", "-P", self.pool, "-c", str(self.concurrency), "-l", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def roles(self) -> Roles:
        """The workers (with their pool processes), the gateway and the servers as CPU roles."""
        roles = Roles()
        for stage, proc in self.procs.items():
            roles.add(f"celery {stage}", proc.pid)
        roles.add("rabbitmq", *self.services.rabbit_pids)
        roles.add("postgresql", *self.services.pg_pids)
        if self.gateway.proc is not None:
            roles.add("gateway", self.gateway.proc.pid)
        return roles

    def publish(self, numbers: Iterable[int], etype: str = "low_balance") -> None:
        """``route.delay(event)`` for each number, over one connection."""
        if self._app is None:
            from celery import Celery

            self._app = Celery("bench_publisher", broker=self.services.rabbit_url)
            self._app.conf.broker_connection_retry_on_startup = True
        with self._app.producer_or_acquire() as producer:
            for k in numbers:
                self._app.send_task("ref.route", args=[event(self.ns, k, etype)], queue=f"{self.ns}.route",
                                    producer=producer)

    def stop(self) -> None:
        """Stop the workers, remove the queues (shared broker) and the database."""
        stop_processes(self.procs)
        if self._app is not None:
            if self.services.shared:
                with self._app.connection_for_write() as conn:
                    channel = conn.channel()
                    for stage in STAGES:
                        channel.queue_delete(f"{self.ns}.{stage}")
            self._app.close()
            self._app = None
        if self.db_url:
            self.services.drop_database(self.db_url)
