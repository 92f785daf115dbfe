"""The embedded broker: a queue table in a SQLite file, behind the Broker interface.

It lets ``msgd run all`` work with no RabbitMQ: ``msgd publish`` from another
shell writes to the same file, delayed messages wait in the table, a crashed
process's leased messages come back after the lease, and publish + ack of a
batch is one transaction.  It does not promise what RabbitMQ does: one
machine only, no replication, modest throughput.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog

from msgd import topology as topo
from msgd.broker.base import BatchHandler, Broker, Delivery, Outgoing
from msgd.broker.batches import run_batch
from msgd.redact import redact_text
from msgd.settings import Settings

log = structlog.get_logger("msgd.broker")

LEASE_SECONDS = 60.0
IDLE_POLL_SECONDS = 0.2

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    content_type TEXT,
    available_at REAL NOT NULL,
    lease_until REAL,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, available_at, id);
"""

_wakeups: dict[str, threading.Condition] = {}
_wakeups_lock = threading.Lock()


def _wakeup(path: Path) -> threading.Condition:
    with _wakeups_lock:
        return _wakeups.setdefault(str(path), threading.Condition())


def _headers_json(headers: dict[str, Any] | None) -> str:
    """Headers as stored: JSON, with what JSON has no type for (bytes, datetimes, decimals: AMQP
    header values a parked message may carry) as text, and every key as a string."""
    return json.dumps(_plain(headers or {}))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class EmbeddedBroker(Broker):
    embedded = True

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.ns = settings.namespace
        self.path = settings.embedded_broker_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._cond = _wakeup(self.path)

    def describe(self) -> str:
        return f"embedded broker (SQLite file {self.path})"

    def setup(self, channels: list[str]) -> None:
        """Nothing to declare: queues are rows."""

    def close(self) -> None:
        self._db.close()

    # -- routing ------------------------------------------------------------
    def _queue_for(self, item: Outgoing) -> str:
        if item.exchange == "events":
            lane = topo.lane_for(item.route, self.s.transactional_types)
            return topo.queue_for_route(self.ns, topo.router_route(lane))
        if item.exchange == "parking":
            return topo.parking_queue(self.ns)
        if item.exchange == "feedback":  # no exchanges here: kept in a queue of that name
            return topo.feedback_queue(self.ns)
        return topo.queue_for_route(self.ns, item.route)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction: taken at once (BEGIN IMMEDIATE), committed, or rolled back on
        any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _insert(self, items: Sequence[Outgoing], now: float) -> None:
        self._db.executemany(
            "INSERT INTO messages (queue, routing_key, body, headers, content_type, available_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (self._queue_for(i), i.route, i.body, _headers_json(i.headers), i.content_type, now + i.delay)
                for i in items
            ],
        )

    def publish(self, items: Sequence[Outgoing]) -> None:
        if not items:
            return
        with self._tx():
            self._insert(items, time.time())
        with self._cond:
            self._cond.notify_all()

    # -- consuming --------------------------------------------------------------
    def _claim(self, queues: Sequence[str], limit: int) -> list[tuple[Any, ...]]:
        now = time.time()
        rows: list[tuple[Any, ...]] = []
        with self._tx():
            for queue in queues:  # transactional lane first
                if len(rows) >= limit:
                    break
                rows += self._db.execute(
                    "UPDATE messages SET lease_until = ?, deliveries = deliveries + 1"
                    " WHERE id IN (SELECT id FROM messages WHERE queue = ? AND available_at <= ?"
                    " AND (lease_until IS NULL OR lease_until < ?) ORDER BY id LIMIT ?)"
                    " RETURNING id, queue, routing_key, body, headers, content_type, deliveries",
                    (now + LEASE_SECONDS, queue, now, now, limit - len(rows)),
                ).fetchall()
            rows.sort(key=lambda r: (list(queues).index(r[1]), r[0]))
            # Like x-delivery-limit: the first delivery plus ``delivery_limit`` redeliveries.
            over = [r for r in rows if r[6] > self.s.delivery_limit + 1]
            if over:
                self._park_over_limit(over, now)
                rows = [r for r in rows if r[6] <= self.s.delivery_limit + 1]
        return rows

    def _park_over_limit(self, rows: list[tuple[Any, ...]], now: float) -> None:
        """Same outcome as a quorum queue's x-delivery-limit dead-lettering."""
        parked = []
        for _id, queue, key, body, headers, ctype, deliveries in rows:
            h = json.loads(headers)
            h.update({
                "x-msgd-reason": f"delivery limit reached: taken {deliveries - 1} times"
                " without being acknowledged (a consumer kept crashing on it)",
                "x-msgd-source-queue": queue,
            })
            parked.append(Outgoing(route=key, body=body, exchange="parking", headers=h, content_type=ctype))
        self._insert(parked, now)
        self._db.executemany("DELETE FROM messages WHERE id = ?", [(r[0],) for r in rows])

    def _next_due_in(self, queues: Sequence[str]) -> float:
        marks = ",".join("?" * len(queues))
        row = self._db.execute(
            f"SELECT MIN(MAX(available_at, COALESCE(lease_until, 0))) FROM messages WHERE queue IN ({marks})",
            list(queues),
        ).fetchone()
        if row is None or row[0] is None:
            return IDLE_POLL_SECONDS
        return float(max(0.0, min(IDLE_POLL_SECONDS, row[0] - time.time())))

    def consume(
        self,
        queues: Sequence[str],
        handler: BatchHandler,
        stop: threading.Event,
        batch_size: int = 100,
        batch_wait: float = 0.02,
    ) -> None:
        while not stop.is_set():
            rows = self._claim(queues, batch_size)
            if not rows:
                wait = self._next_due_in(queues)
                with self._cond:
                    self._cond.wait(timeout=wait)
                continue
            batch = [
                Delivery(
                    body=bytes(body), queue=queue, routing_key=key, headers=json.loads(headers),
                    redelivered=deliveries > 1, content_type=ctype, tag=_id,
                )
                for _id, queue, key, body, headers, ctype, deliveries in rows
            ]
            ids = [r[0] for r in rows]

            def pause(seconds: float, ids: list[int] = ids) -> bool:
                self._extend_lease(ids)  # a long outage must not let another consumer take them
                return not stop.wait(seconds)

            outcome = run_batch(handler, batch, stop, pause)
            done = {d.tag for d in outcome.done}
            try:
                self._publish_and_ack(outcome.out, [i for i in ids if i in done])
            except Exception as exc:  # noqa: BLE001 - e.g. an output SQLite refuses: never end the consumer
                # Rolled back: the batch stays leased and comes back after the lease, counted
                # as a delivery, so the delivery limit parks what keeps failing (as RabbitMQ does).
                log.error("cannot store a batch's output; it comes back after its lease",
                          error=redact_text(str(exc), limit=500), lease=LEASE_SECONDS)
                stop.wait(1.0)
                continue
            if len(done) < len(ids):  # stopped part-way: the rest back to the queue, not counted
                self._release([i for i in ids if i not in done], delay=0.0)

    def _extend_lease(self, ids: list[int]) -> None:
        self._db.executemany("UPDATE messages SET lease_until = ? WHERE id = ?",
                             [(time.time() + LEASE_SECONDS, i) for i in ids])

    def _release(self, ids: list[int], delay: float) -> None:
        self._db.executemany(
            "UPDATE messages SET lease_until = NULL, available_at = ?, deliveries = deliveries - 1 WHERE id = ?",
            [(time.time() + delay, i) for i in ids],
        )

    def _publish_and_ack(self, out: Sequence[Outgoing], ids: list[int]) -> None:
        with self._tx():
            if out:
                self._insert(out, time.time())
            self._db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
        if out:
            with self._cond:
                self._cond.notify_all()

    def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        out = {}
        for q in queues:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE queue = ? AND lease_until IS NULL", (q,)
            ).fetchone()
            out[q] = int(n)
        return out

    def replay(self, items: Sequence[tuple[int, Outgoing]]) -> int:
        """Replace stored rows (e.g. parked messages, by id) with these messages, atomically."""
        moved: list[Outgoing] = []
        with self._tx():
            for row_id, item in items:
                gone = self._db.execute("DELETE FROM messages WHERE id = ? AND lease_until IS NULL",
                                        (row_id,)).rowcount
                if gone:  # else taken or replayed meanwhile
                    moved.append(item)
            self._insert(moved, time.time())
        with self._cond:
            self._cond.notify_all()
        return len(moved)

    def messages(self, queue: str) -> list[Delivery]:
        """Read a queue without consuming it (the parking view, tests)."""
        rows = self._db.execute(
            "SELECT id, queue, routing_key, body, headers, content_type FROM messages WHERE queue = ? ORDER BY id",
            (queue,),
        ).fetchall()
        return [
            Delivery(body=bytes(b), queue=q, routing_key=k, headers=json.loads(h), content_type=c, tag=i)
            for i, q, k, b, h, c in rows
        ]
