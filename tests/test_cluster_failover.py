"""The distributed engine: a 3-node RabbitMQ cluster loses the node that leads msgd's queues.

A private cluster (deploy/rabbitmq-cluster.sh, the recipe of docs/operations.md) runs next
to the shared broker. The stages run as separate processes with MSGD_BROKER_URL listing every
node (kombu failover) and PostgreSQL as the store. 5,000 events are published; while they go
through the pipeline the node that leads the queues is SIGKILLed, and later started again.

Then: every event's SMS reached the gateway and is logged ``sent``; no text reached the
gateway twice unless a request for it was in progress at the gateway at the instant of the
kill (the in-flight window); every stage process is the one started at the beginning and
reconnected to a surviving node by itself; the restarted node is back in every queue.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.cluster import Cluster, rabbitmq_installed
from tests.conftest import need
from tests.support import (
    ROOT,
    Pipeline,
    event,
    msgd,
    publish_with_pika,
    serve_http,
    stage_env,
    stop_http,
    wait_for,
)

pytestmark = pytest.mark.slow

EVENTS = 5000
STAGES = ("router", "renderer", "recorder", "sender:sms")


@dataclass
class CountingGateway:
    """An SMS gateway (form POST, answers 200 OK after ``latency`` seconds, as a real one takes
    its time) that keeps, per text, when each request arrived and when its answer was written."""

    latency: float = 0.02

    requests: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Any = None

    def start(self) -> CountingGateway:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                arrived = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                text = parse_qs(raw).get("mes", [""])[0]
                threading.Event().wait(gw.latency)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")
                self.wfile.flush()
                with gw.lock:
                    gw.requests.setdefault(text, []).append((arrived, time.time()))

        self.server = serve_http(Handler)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.requests.values())

    def stop(self) -> None:
        stop_http(self.server)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need(rabbitmq_installed(), "rabbitmq-server (Debian package rabbitmq-server)")
    folder = tmp_path_factory.mktemp("rabbitmq-cluster") / "nodes"
    c = Cluster(folder, f"msgdt{uuid.uuid4().hex[:6]}n")
    try:
        c.start()
        yield c
    finally:
        c.destroy()  # SIGKILL every node and delete the data, pass or fail
    assert not folder.exists()


def _config(gateway_url: str) -> str:
    return json.dumps({  # YAML is a superset of JSON
        "version": 1,
        "operators": [{"code": "best", "name": "Best", "timezone": "Europe/Moscow", "attempts": 3,
                       "channels": {"sms": {"outbox": False, "url": gateway_url, "request_type": "post",
                                            "params": "phones=%sms%&mes=%text%"}}}],
        "templates": [{"owner": None, "name": "cluster", "event": "low_balance", "channel": "sms",
                       "body": "cluster %(contract_number)s"}],
    })


def _log_lines(proc_log: str) -> list[dict[str, Any]]:
    lines = []
    for raw in proc_log.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a traceback line, say; the assertions below say what is missing
    return lines


def _connected_nodes(proc_log: str) -> list[str]:
    """Every node a stage process connected to, in order (its "connected to a RabbitMQ node" lines)."""
    return [line["node"] for line in _log_lines(proc_log) if line.get("event") == "connected to a RabbitMQ node"]


def _message_log(db_url: str) -> list[tuple[str, str, str, str]]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        return [(str(r[0]), r[1], r[2], r[3]) for r in
                conn.execute("SELECT id, state, channel, body FROM msgd_message").fetchall()]


def _sent(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM msgd_message WHERE state = 'sent'").fetchone()
    return int(row[0]) if row else 0


def test_the_deploy_definitions_load_into_the_installed_rabbitmq(cluster: Cluster) -> None:
    """docs/operations.md imports deploy/rabbitmq/definitions.json into the cluster: it must load
    on the RabbitMQ installed here (3.10 knows no policy "apply-to": "quorum_queues")."""
    cluster.ctl(1, "import_definitions", str(ROOT / "deploy" / "rabbitmq" / "definitions.json"))
    defs = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    wanted = {q["name"] for q in defs["queues"]}

    def declared() -> list[dict[str, Any]] | None:  # the import goes on after the command returns
        queues = cluster.queues(1, "msgd.", vhost="msgd")
        return queues if {q["name"] for q in queues} == wanted else None

    queues = wait_for(declared, timeout=60, what="every queue of definitions.json declared")
    assert all(q["type"] == "quorum" and len(q["members"]) == 3 for q in queues)
    assert {q["policy"] for q in queues} == {"msgd-quorum", "msgd-parking"}
    assert len({q["leader"] for q in queues}) == 3, "the policy's queue-leader-locator balances leaders"


def test_leader_node_sigkilled_mid_run_loses_and_duplicates_nothing(
    cluster: Cluster, pg_database: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    ns = f"c{uuid.uuid4().hex[:8]}"
    gateway = CountingGateway().start()
    env = stage_env(MSGD_BROKER_URL=cluster.urls(), MSGD_NAMESPACE=ns, MSGD_DATABASE_URL=pg_database,
                    MSGD_VAR_DIR=str(tmp_path / "var"))
    pipeline = Pipeline(env, tmp_path)
    try:
        setup = msgd("setup", env=env)
        assert ":guest@" not in setup.stdout + setup.stderr, "a broker password in the output"
        config = tmp_path / "config.yaml"
        config.write_text(_config(gateway.url))
        msgd("config", "load", str(config), env=env)

        # Every msgd queue is a quorum queue with a member on each node; `msgd setup` declared
        # them through the first node of the list, and quorum queues put their leader on the
        # declaring client's node (queue-leader-locator client-local, the default).
        queues = cluster.queues(1, f"{ns}.")
        assert len(queues) == 14 and all(q["type"] == "quorum" and len(q["members"]) == 3 for q in queues)
        leader_node, led = cluster.leaders(1, f"{ns}.").most_common(1)[0]
        victim = cluster.number(leader_node)
        survivor = 1 + victim % 3
        victim_url = cluster.url(victim).replace(":guest@", ":***@")

        publish_with_pika(cluster.url(survivor), ns, [event(i) for i in range(EVENTS)])
        pipeline.start(*STAGES)
        pipeline.wait_started()
        pids = {name: p.proc.pid for name, p in pipeline.procs.items() if p.proc is not None}
        for name, p in pipeline.procs.items():
            assert _connected_nodes(p.log_text())[-1:] == [victim_url], f"{name} is not on the node to kill"

        # Mid-run: SMS are going out, most are still to come.
        wait_for(lambda: gateway.count() >= EVENTS // 5, timeout=120, what="a fifth of the SMS sent")
        kill_from = time.time()
        cluster.kill(victim)
        kill_until = time.time()
        at_kill = gateway.count()
        assert at_kill < EVENTS * 0.8, "the kill came too late to be mid-run"

        # The survivors elect new leaders; the stages fail over and carry on without the node.
        wait_for(lambda: gateway.count() >= at_kill + 500, timeout=120, what="SMS flowing again without the node")
        assert all(q["leader"] != leader_node for q in cluster.queues(survivor, f"{ns}."))

        cluster.start_node(victim)
        wait_for(lambda: _sent(pg_database) >= EVENTS, timeout=300, what=f"{EVENTS} messages logged sent")
        wait_for(lambda: all(len(q["online"]) == 3 for q in cluster.queues(survivor, f"{ns}.")),
                 timeout=60, what="the restarted node back in every queue")

        for name, p in pipeline.procs.items():
            assert p.proc is not None and p.proc.poll() is None, f"{name} exited:\n{p.log_text()[-3000:]}"
            assert p.proc.pid == pids[name]
            nodes = _connected_nodes(p.log_text())
            assert nodes[0] == victim_url and nodes[-1] != victim_url, f"{name} did not fail over: {nodes}"
            assert ":guest@" not in p.log_text(), f"a broker password in the log of {name}"
    finally:
        pipeline.stop()
        gateway.stop()

    rows = _message_log(pg_database)
    expected = {f"cluster C{i}" for i in range(EVENTS)}
    assert len(rows) == EVENTS and {r[1] for r in rows} == {"sent"} and {r[2] for r in rows} == {"sms"}
    assert {r[3] for r in rows} == expected, "one message per event, each with its own text"
    assert set(gateway.requests) == expected, "the gateway saw every message"
    # The in-flight window: a request the gateway was still handling at the instant of the kill.
    in_flight = {text for text, spans in gateway.requests.items()
                 if any(arrived <= kill_until and answered >= kill_from for arrived, answered in spans)}
    duplicated = {text for text, spans in gateway.requests.items() if len(spans) > 1}
    assert duplicated <= in_flight, f"sent twice outside the in-flight window: {sorted(duplicated - in_flight)[:10]}"
    print(f"\ncluster failover: {EVENTS} events, node {leader_node} led {led} queues and was killed at"
          f" {at_kill} SMS; {len(in_flight)} requests in flight, {len(duplicated)} duplicated;"
          f" {time.monotonic() - started:.0f} s without the cluster start")
