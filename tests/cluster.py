"""A private RabbitMQ cluster for tests, driven through deploy/rabbitmq-cluster.sh.

The script is the recipe docs/operations.md gives operators; the tests use it as is, so the
recipe is what CI proves. Nothing of the host's shared broker (rabbit@localhost, port 5672)
is touched: own node names, ports, cookie and data directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "rabbitmq-cluster.sh"
SIZE = 3


def rabbitmq_installed() -> bool:
    """rabbitmq-server on PATH, or where Debian keeps the real scripts."""
    return shutil.which("rabbitmq-server") is not None or os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server")


def _free_run(count: int, low: int, high: int) -> int:
    """A first port such that ``count`` consecutive ports from it are free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports in {low}..{high}")


class Cluster:
    """``SIZE`` RabbitMQ nodes in ``folder``, named ``<name>1@localhost`` ... (node numbers from 1)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        # Below Linux's ephemeral range (32768+), so no outgoing connection takes a port
        # between this check and the node binding it.
        self.amqp_port = _free_run(SIZE, 20000, 25000)
        self.dist_port = _free_run(SIZE, 27000, 32000)

    def _run(self, *args: str, timeout: float = 180) -> str:
        env = {**os.environ, "CLUSTER_NAME": self.name, "CLUSTER_SIZE": str(SIZE),
               "CLUSTER_AMQP_PORT": str(self.amqp_port), "CLUSTER_DIST_PORT": str(self.dist_port)}
        done = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-cluster.sh {' '.join(args)} failed ({done.returncode}):"
                               f" {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> Cluster:
        self._run("start", str(self.folder))
        return self

    def destroy(self) -> None:
        self._run("destroy", str(self.folder))

    def urls(self) -> str:
        """MSGD_BROKER_URL: every node, ';'-separated (kombu's failover list)."""
        return self._run("urls", str(self.folder)).strip()

    def url(self, n: int) -> str:
        return self.urls().split(";")[n - 1]

    def node(self, n: int) -> str:
        return f"{self.name}{n}@localhost"

    def number(self, node: str) -> int:
        return int(node.split("@")[0][len(self.name):])

    def kill(self, n: int) -> None:
        """SIGKILL node n (returns once the process is gone)."""
        self._run("kill", str(self.folder), str(n))

    def start_node(self, n: int) -> None:
        """Start node n again from its data directory; returns once it runs."""
        self._run("start-node", str(self.folder), str(n))

    def ctl(self, n: int, *args: str) -> str:
        """rabbitmqctl against node n; its standard output."""
        return self._run("ctl", str(self.folder), str(n), *args)

    def ctl_json(self, n: int, *args: str) -> Any:
        return json.loads(self.ctl(n, *args, "--formatter", "json"))

    def queues(self, via: int, prefix: str, vhost: str = "/") -> list[dict[str, Any]]:
        """Queues whose names start with ``prefix``: name, type, leader, members, online, policy."""
        rows = self.ctl_json(via, "list_queues", "-p", vhost, "name", "type", "leader", "members", "online",
                             "policy")
        return [q for q in rows if q["name"].startswith(prefix)]

    def leaders(self, via: int, prefix: str) -> Counter[str]:
        """How many of those queues each node leads."""
        return Counter(q["leader"] for q in self.queues(via, prefix))
