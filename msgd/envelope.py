"""Messages on the wire between stages: encoding, ids, states.

Bodies are JSON objects with ``"v": 1``; their JSON Schemas are in ``schemas/``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

NAMESPACE = uuid.UUID("6f1d8a52-3c4e-4d7e-9a51-5b0c2f1e7a10")

# Final states: every message ends in exactly one of these.
SENT = "sent"
FAILED = "failed"
SUPPRESSED = "suppressed"
UNSUPPORTED = "unsupported"
NO_CONTACT = "no-contact"
FILTERED = "filtered"
FINAL_STATES = (SENT, FAILED, SUPPRESSED, UNSUPPORTED, NO_CONTACT, FILTERED)

# After ``sent``: an SMS gateway's delivery report (DLR) says whether the handset got it.
# Only a ``sent`` message moves on to one of these; the first report wins (README "Delivery reports").
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
DLR_STATES = (DELIVERED, UNDELIVERED)
# What a DLR report may say: a final state, or ``none`` when the dlr stage stopped asking (the
# message stays ``sent`` with the reason "no delivery report").
DLR_NO_REPORT = "none"

# Passing states, in the order a message moves through them.
QUEUED = "queued"
DELAYED = "delayed"
RETRYING = "retrying"
PASSING_STATES = (QUEUED, DELAYED, RETRYING)

# Fault classes: whose move it is after a ``failed`` message (README "Fault classes").
FAULT_RECIPIENT = "recipient"  # the subscriber's contact is wrong or gone: fix it in billing
FAULT_GATEWAY = "gateway"  # the operator must fix an account or a setting (credentials, money, sender name)
FAULT_CONTENT = "content"  # the message itself (template, event data) cannot go out as it is
FAULT_TRANSIENT_EXHAUSTED = "transient-exhausted"  # temporary failures until the attempts ran out
FAULT_UNKNOWN = "unknown"  # msgd cannot tell (outcome unknown, an unexplained refusal)
FAULTS = (FAULT_RECIPIENT, FAULT_GATEWAY, FAULT_CONTENT, FAULT_TRANSIENT_EXHAUSTED, FAULT_UNKNOWN)

# Later beats earlier when status reports arrive out of order.
STATE_RANK = {QUEUED: 0, DELAYED: 1, RETRYING: 1, **{s: 9 for s in FINAL_STATES}}
# Every state a log row can show, in display order.
ALL_STATES = (*PASSING_STATES, *FINAL_STATES, *DLR_STATES)


# Dates, times and dataclasses go to ``default=str`` as they did with json (orjson would write
# them its own way); non-string keys become strings as json writes them.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; a value JSON has no type for is written as its ``str()``.

    orjson (Rust) writes it; what orjson refuses (an integer beyond 64 bits, a lone surrogate)
    goes through Python's json as before (which raises on a lone surrogate too)."""
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


def now_iso() -> str:
    """``datetime.now(UTC).isoformat()``: the time of day, microseconds floored, ``+00:00``."""
    return iso_of_ns(time.time_ns())


# The last second written, as (epoch seconds, "YYYY-MM-DDTHH:MM:SS"): one tuple, replaced whole.
_SECOND: tuple[int, str] = (-1, "")


def iso_of_ns(ns: int) -> str:
    """What ``datetime.isoformat`` writes for UTC epoch nanoseconds ``ns`` floored to microseconds
    (no fraction when it is zero), as ``datetime.now`` reads the same clock; the date and time of
    day are formatted once a second (per message they took about a microsecond)."""
    global _SECOND
    secs, micros = divmod(ns // 1000, 1_000_000)
    known, prefix = _SECOND
    if secs != known:
        prefix = datetime.fromtimestamp(secs, UTC).isoformat()[:-6]
        _SECOND = (secs, prefix)
    return f"{prefix}.{micros:06d}+00:00" if micros else prefix + "+00:00"


_NAMESPACE_BYTES = NAMESPACE.bytes
# The hex digit that starts the fourth group, its two top bits set to the RFC 4122 variant (10).
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without building a ``UUID`` (its checks cost more than
    the hash): the first 32 hex digits of the SHA-1 of the namespace and the UTF-8 name, with the
    version digit (5) and the variant bits set, written as 8-4-4-4-12."""
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def message_id(event_id: str, template_id: int | None, channel: str | None, recipient: str) -> str:
    """The idempotency key: one message per event, template, channel and recipient."""
    return _uuid5(f"{event_id}|{template_id}|{channel}|{recipient}")


def outcome_id(event_id: str, template_id: int | None, channel: str | None, why: str) -> str:
    """Id of a log row that records why an event produced no message."""
    return _uuid5(f"{event_id}|{template_id}|{channel}|-|{why}")

RENDER_JOB_KIND = "render"
OUTBOUND_KIND = "outbound"
STATUS_KIND = "status"
STATUS_BATCH_KIND = "status-batch"
DLR_KIND = "dlr"  # a delivery report for the recorder (schemas/dlr.v1.json)
FEEDBACK_KIND = "feedback"  # an event for billing on msgd.feedback (schemas/feedback.v1.json)
