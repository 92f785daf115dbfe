"""The Celery reference: the chain a Python team would write first for the same job.

Three tasks, each consumed by a worker of its own (one per stage, as msgd runs one process
per stage), ``acks_late`` and a prefetch of 16 (``worker_prefetch_multiplier``):

* ``ref.route``  validates the event against schemas/event.v1.json (jsonschema, compiled
  once, formats checked, as msgd's router does), finds the templates for its type and
  operator (read from PostgreSQL, cached 2 s, as msgd's configuration cache is) and queues
  one ``ref.render`` per template;
* ``ref.render`` fills the %-style template with the event's fields and queues ``ref.send``;
* ``ref.send``   POSTs the SMS to the operator's gateway with ``requests`` (one keep-alive
  ``Session`` per worker process; ``requests.RequestException`` retried by Celery with
  backoff) and writes the message's log row in PostgreSQL (one INSERT, autocommit), the row
  msgd's recorder keeps.

No exactly-once claims, no publisher confirms, classic (not quorum) queues: what a first
version has. The workers find the broker, database and queue prefix in ``BENCH_REF_BROKER``,
``BENCH_REF_DB`` and ``BENCH_REF_NS``; ``bench.reference_run`` starts them.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
NS = os.environ.get("BENCH_REF_NS", "ref")
QUEUES = {"route": f"{NS}.route", "render": f"{NS}.render", "send": f"{NS}.send"}

app = Celery("bench_reference")
app.conf.update(
    broker_url=os.environ.get("BENCH_REF_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    worker_prefetch_multiplier=16,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=f"{NS}.default",
    task_routes={f"ref.{stage}": {"queue": queue} for stage, queue in QUEUES.items()},
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)

TABLES = """
CREATE TABLE IF NOT EXISTS ref_operator (code text PRIMARY KEY, sms_url text NOT NULL);
CREATE TABLE IF NOT EXISTS ref_template (id serial PRIMARY KEY, event_type text NOT NULL,
    operator_code text, channel text NOT NULL, body text NOT NULL, enabled boolean NOT NULL DEFAULT true);
CREATE TABLE IF NOT EXISTS ref_message_log (id uuid PRIMARY KEY, event_id text NOT NULL,
    event_type text NOT NULL, operator_code text NOT NULL, abonent_id text NOT NULL, channel text NOT NULL,
    recipient text NOT NULL, body text NOT NULL, state text NOT NULL, reason text NOT NULL DEFAULT '',
    attempts smallint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    finished_at timestamptz);
CREATE INDEX IF NOT EXISTS ref_message_log_event ON ref_message_log (event_id);
CREATE INDEX IF NOT EXISTS ref_message_log_created ON ref_message_log (created_at);
CREATE INDEX IF NOT EXISTS ref_message_log_recipient ON ref_message_log (recipient);
"""

_local = threading.local()
_cache: dict[str, Any] = {"at": 0.0}


def db() -> Any:
    """This process's PostgreSQL connection (autocommit)."""
    if getattr(_local, "db", None) is None:
        import psycopg

        _local.db = psycopg.connect(os.environ["BENCH_REF_DB"], autocommit=True)
    return _local.db


def validator() -> Any:
    """The event schema's validator (formats checked), compiled once per process."""
    if "validator" not in _cache:
        from jsonschema import Draft202012Validator, FormatChecker

        schema = json.loads((ROOT / "schemas" / "event.v1.json").read_text(encoding="utf-8"))
        _cache["validator"] = Draft202012Validator(schema, format_checker=FormatChecker())
    return _cache["validator"]


def config() -> dict[str, Any]:
    """Operators and templates from the database, read again every 2 seconds."""
    if time.monotonic() - _cache["at"] > 2.0:
        with db().cursor() as cur:
            cur.execute("SELECT code, sms_url FROM ref_operator")
            operators = dict(cur.fetchall())
            cur.execute("SELECT id, event_type, operator_code, channel, body FROM ref_template WHERE enabled")
            templates = [dict(zip(("id", "event_type", "operator_code", "channel", "body"), row, strict=True))
                         for row in cur.fetchall()]
        _cache.update(at=time.monotonic(), operators=operators, templates=templates)
    return _cache


def session() -> requests.Session:
    """This process's keep-alive HTTP session."""
    if getattr(_local, "session", None) is None:
        _local.session = requests.Session()
    return _local.session


@app.task(name="ref.route")
def route(event: dict[str, Any]) -> None:
    """Validate, match the templates, queue one render per template."""
    errors = [e.message for e in validator().iter_errors(event)]
    if errors:
        print(f"invalid event {event.get('event_id')!r}: {errors[:3]}", flush=True)
        return
    code = event["operator"]["code"]
    cfg = config()
    if code not in cfg["operators"]:
        print(f"unknown operator {code!r}", flush=True)
        return
    for tpl in cfg["templates"]:
        if tpl["event_type"] == event["type"] and tpl["operator_code"] in (None, code):
            render.delay(tpl, event)


@app.task(name="ref.render")
def render(template: dict[str, Any], event: dict[str, Any]) -> None:
    """Fill the template with the event's fields; queue the send."""
    ab = event["abonent"]
    fields = {"name": ab.get("name", ""), "balance": ab.get("balance", 0), "currecy": ab.get("currency", ""),
              "abonent_id": ab.get("id"), **event.get("data", {})}
    recipient = ab["contacts"][template["channel"]]
    send.delay({"id": str(uuid.uuid4()), "event_id": event["event_id"], "event_type": event["type"],
                "operator": event["operator"]["code"], "abonent_id": str(ab.get("id", "")),
                "channel": template["channel"], "recipient": recipient, "text": template["body"] % fields})


@app.task(name="ref.send", bind=True, autoretry_for=(requests.RequestException,), retry_backoff=True,
          max_retries=3)
def send(self: Any, message: dict[str, Any]) -> None:
    """POST the SMS to the gateway, then write the log row."""
    created = datetime.now(UTC)
    url = config()["operators"][message["operator"]]
    resp = session().post(url, data={"login": "best", "phones": message["recipient"], "mes": message["text"]},
                          timeout=15)
    state, reason = ("sent", "") if resp.ok and resp.text.strip() == "OK" else ("failed", resp.text[:200])
    now = datetime.now(UTC)
    db().execute(
        "INSERT INTO ref_message_log (id, event_id, event_type, operator_code, abonent_id, channel, recipient,"
        " body, state, reason, attempts, created_at, updated_at, finished_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (message["id"], message["event_id"], message["event_type"], message["operator"], message["abonent_id"],
         message["channel"], message["recipient"], message["text"], state, reason, self.request.retries + 1,
         created, now, now))
