"""Process settings, built once from the environment (arq style).

Everything an operator tunes per deployment lives here; everything an operator
tunes per tenant (gateways, templates, quiet hours) lives in the store.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_TRANSACTIONAL = ("password_reset", "manual", "helpdesk_ticket", "test_message")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    return int(raw) if raw.strip() else default


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    """Deployment settings; see the README's configuration reference."""

    broker_url: str = ""
    database_url: str = ""
    namespace: str = "msgd"
    var_dir: Path = ROOT / "var"
    enabled: bool = True
    domain: str = field(default_factory=socket.getfqdn)
    transactional_types: tuple[str, ...] = DEFAULT_TRANSACTIONAL
    batch_size: int = 100
    batch_wait_ms: int = 20
    sender_concurrency: int = 32
    # Bulk batches a sender process works on at once (each its own broker connection and
    # consumer, sharing the process's event loop, connection pool and MSGD_SENDER_CONCURRENCY):
    # while one batch waits for its gateway answers, the next is claimed. The fast lane has a
    # consumer of its own besides (msgd/runner.py consumers).
    sender_consumers: int = 2
    # Request slots beyond MSGD_SENDER_CONCURRENCY that only the fast lane's batches take
    # (services/senders/jobs.py Slots): a password reset does not wait for a bulk request to end,
    # and bulk keeps its whole MSGD_SENDER_CONCURRENCY.
    sender_fast_slots: int = 2
    http_timeout: float = 15.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    claim_lease_seconds: float = 300.0
    delivery_limit: int = 10
    heartbeat: int = 30
    log_format: str = "console"
    log_level: str = "INFO"
    metrics_port: int = 0
    config_refresh_seconds: float = 2.0
    # The largest billing event accepted (AMQP body or HTTP request), in bytes: a larger one is
    # parked (or refused) before any work is spent on it.
    max_body_bytes: int = 1024 * 1024
    # Delivery reports (README "Delivery reports"): how long a report that matches no sent message
    # waits for it; how long after sending the dlr stage asks a polled gateway; its backoff.
    dlr_pending_hours: float = 48.0
    dlr_poll_hours: float = 24.0
    dlr_poll_first_seconds: float = 60.0
    dlr_poll_max_seconds: float = 3600.0
    dlr_poll_batch: int = 100
    # Gateway balances (README "Gateway balances"): how often the dlr stage asks each SMS gateway
    # that has an account query for its balance, in minutes (0 = never).
    balance_poll_minutes: float = 15.0

    def __post_init__(self) -> None:
        kinds = {url.startswith(AMQP_SCHEMES) for url in self.broker_urls}
        if len(kinds) > 1:
            raise ValueError("MSGD_BROKER_URL: a list of brokers must be RabbitMQ nodes only"
                             " (amqp://... or amqps://..., separated by ';')")

    @property
    def broker_urls(self) -> tuple[str, ...]:
        """The RabbitMQ nodes of ``MSGD_BROKER_URL``, in order: kombu's failover list
        ``amqp://u:p@h1:5672/v;amqp://u:p@h2:5672/v`` (one URL = one node)."""
        return tuple(url.strip() for url in self.broker_url.split(";") if url.strip())

    @property
    def embedded(self) -> bool:
        """True when no AMQP broker is configured: the SQLite broker is used."""
        return not self.broker_url.startswith(AMQP_SCHEMES)

    @property
    def embedded_broker_path(self) -> Path:
        if self.broker_url.startswith("sqlite:///"):
            return Path(self.broker_url[len("sqlite:///") :])
        return self.var_dir / "broker.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'msgd.sqlite3'}"

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @property
    def sender_slots(self) -> int:
        """Requests a sender process may have in flight: ``sender_concurrency`` for any batch plus
        ``sender_fast_slots`` only the fast lane takes (its HTTP pool and worker threads too)."""
        return max(1, self.sender_concurrency) + max(0, self.sender_fast_slots)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        var_dir = Path(e.get("MSGD_VAR_DIR") or ROOT / "var")
        tx = e.get("MSGD_TRANSACTIONAL_TYPES", "")
        return cls(
            broker_url=e.get("MSGD_BROKER_URL", "").strip(),
            database_url=e.get("MSGD_DATABASE_URL", "").strip(),
            namespace=e.get("MSGD_NAMESPACE", "msgd").strip() or "msgd",
            var_dir=var_dir,
            enabled=_bool(e.get("MSGD_ENABLED"), True),
            domain=e.get("MSGD_DOMAIN") or socket.getfqdn(),
            transactional_types=tuple(t.strip() for t in tx.split(",") if t.strip())
            or DEFAULT_TRANSACTIONAL,
            batch_size=_int(e, "MSGD_BATCH_SIZE", 100),
            batch_wait_ms=_int(e, "MSGD_BATCH_WAIT_MS", 20),
            sender_concurrency=_int(e, "MSGD_SENDER_CONCURRENCY", 32),
            sender_consumers=_int(e, "MSGD_SENDER_CONSUMERS", 2),
            sender_fast_slots=_int(e, "MSGD_SENDER_FAST_SLOTS", 2),
            http_timeout=_float(e, "MSGD_HTTP_TIMEOUT", 15.0),
            retry_base_seconds=_float(e, "MSGD_RETRY_BASE_SECONDS", 30.0),
            retry_max_seconds=_float(e, "MSGD_RETRY_MAX_SECONDS", 3600.0),
            claim_lease_seconds=_float(e, "MSGD_CLAIM_LEASE_SECONDS", 300.0),
            delivery_limit=_int(e, "MSGD_DELIVERY_LIMIT", 10),
            heartbeat=_int(e, "MSGD_HEARTBEAT", 30),
            log_format=e.get("MSGD_LOG_FORMAT", "console"),
            log_level=e.get("MSGD_LOG_LEVEL", "INFO").upper(),
            metrics_port=_int(e, "MSGD_METRICS_PORT", 0),
            config_refresh_seconds=_float(e, "MSGD_CONFIG_REFRESH_SECONDS", 2.0),
            max_body_bytes=_int(e, "MSGD_MAX_BODY_BYTES", 1024 * 1024),
            dlr_pending_hours=_float(e, "MSGD_DLR_PENDING_HOURS", 48.0),
            dlr_poll_hours=_float(e, "MSGD_DLR_POLL_HOURS", 24.0),
            dlr_poll_first_seconds=_float(e, "MSGD_DLR_POLL_FIRST_SECONDS", 60.0),
            dlr_poll_max_seconds=_float(e, "MSGD_DLR_POLL_MAX_SECONDS", 3600.0),
            dlr_poll_batch=_int(e, "MSGD_DLR_POLL_BATCH", 100),
            balance_poll_minutes=_float(e, "MSGD_BALANCE_POLL_MINUTES", 15.0),
        )
