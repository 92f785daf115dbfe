"""SMS gateway accounts in the store (``msgd_gatewayaccount``) and as metrics.

Three writers, one table (msgd.store.models.GatewayAccount):

* the dlr stage's account poll (services/dlr/balances.py): the balance from the gateway's
  read-only query (services/senders/sms/balance.py), or its refusal;
* the SMS sender, for every answer it reads: a balance the answer carries (SMSPilot, smsc.ru), an
  accepted message (the account works) and a "no money" refusal (the ``funds`` problem of
  services/senders/sms/problems.py) -- the last one written at once, so the alert fires at once;
  the others at most once a minute per slot and process (a busy gateway's every answer must not
  cost a write);
* nothing else: the admin's channel list and the metrics only read it.

:class:`AccountCollector` exports what the table says at scrape time (cached a few seconds), by
``channel_settings_id``, ``operator`` and ``gateway`` (host):

* ``msgd_gateway_balance``: the last balance read (only slots with one);
* ``msgd_gateway_balance_alert_below``: the slot's ``balance_alert_below`` (only where set);
* ``msgd_gateway_account_empty``: 1 while the last word on the account is "no money" (a refusal
  for lack of funds, or a balance of zero or less, not followed by an accepted message or a
  positive balance), else 0.

deploy/prometheus/alerts.yml's MsgdGatewayBalanceLow and MsgdGatewayAccountEmpty read them.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

import structlog
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from msgd.metrics import gateway_host
from services.senders.sms.balance import FUNDS, AccountCheck

log = structlog.get_logger("msgd.sms.accounts")

REPLY_WRITE_SECONDS = 60.0  # an accepted message or a reply's balance: at most this often per slot and process
COLLECT_TTL = 5.0
LABELS = ["channel_settings_id", "operator", "gateway"]
METRIC_NAMES = ("msgd_gateway_balance", "msgd_gateway_balance_alert_below", "msgd_gateway_account_empty")

_lock = threading.Lock()
_written: dict[int, float] = {}  # slot -> monotonic time of this process's last reply write
_empty: set[int] = set()  # slots this process last saw refused for lack of money


def _save(slot: int, **fields: Any) -> None:
    from msgd.store.models import GatewayAccount

    try:
        if not GatewayAccount.objects.filter(settings_id=slot).update(**fields):
            try:
                with transaction.atomic():
                    GatewayAccount.objects.create(settings_id=slot, **fields)
            except IntegrityError:  # another process created it just now
                GatewayAccount.objects.filter(settings_id=slot).update(**fields)
    except DatabaseError as exc:  # the account's state must never fail a send or a poll
        log.warning("gateway account not recorded", slot=slot, error=type(exc).__name__)


def reply_fields(slot: int | None, accepted: bool, problem: str = "", balance: float | None = None
                 ) -> dict[str, Any] | None:
    """What one send's answer says about the account of ``slot`` (ChannelSettings.id; None =
    not a stored slot): the GatewayAccount fields to write, or None when nothing is to be
    written now (throttled to one write per ``REPLY_WRITE_SECONDS``; "no money" always).
    No database work here, so the SMS sender's event loop can call it; ``save`` writes."""
    if slot is None:
        return None
    now = timezone.now()
    if problem == FUNDS:
        with _lock:
            _empty.add(slot)
        return {"empty_at": now}
    if not accepted and balance is None:
        return None
    with _lock:
        recent = time.monotonic() - _written.get(slot, -math.inf) < REPLY_WRITE_SECONDS
        if recent and slot not in _empty:
            return None
        _written[slot] = time.monotonic()
        _empty.discard(slot)
    fields: dict[str, Any] = {"working_at": now} if accepted else {}
    if balance is not None:
        fields |= {"balance": balance, "balance_at": now}
        if balance <= 0:
            fields = {"balance": balance, "balance_at": now, "empty_at": now}
    return fields


def save(slot: int, fields: dict[str, Any]) -> None:
    """Write ``fields`` (from ``reply_fields``) to the GatewayAccount of ``slot``; a database
    error is logged, never raised (an account's state must not fail a send)."""
    _save(slot, **fields)


def note_reply(slot: int | None, accepted: bool, problem: str = "", balance: float | None = None) -> None:
    """``reply_fields`` then ``save``, in one call (for synchronous callers)."""
    fields = reply_fields(slot, accepted, problem, balance)
    if slot is not None and fields is not None:
        _save(slot, **fields)


def note_check(slot: int, check: AccountCheck, now: dt.datetime | None = None) -> None:
    """An account query's answer for ``slot``."""
    now = now or timezone.now()
    fields: dict[str, Any] = {"polled_at": now, "problem": check.problem[:32], "words": check.words[:300]}
    if check.accepted and check.balance is not None:
        fields |= {"balance": check.balance, "unit": check.unit[:16], "balance_at": now}
    if check.empty:
        fields["empty_at"] = now
    elif check.accepted and check.balance is not None:
        fields["working_at"] = now
    _save(slot, **fields)


def forget() -> None:
    """Drop this process's memory of recent writes (tests)."""
    with _lock:
        _written.clear()
        _empty.clear()


class AccountCollector(Collector):
    """The ``msgd_gateway_*`` gauges from the store (see the module's docstring)."""

    def __init__(self, ttl: float = COLLECT_TTL) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._at: float | None = None
        self._rows: list[tuple[list[str], Any, float | None]] = []

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def _read(self) -> list[tuple[list[str], Any, float | None]]:
        from msgd.store.models import ChannelSettings, GatewayAccount

        accounts = {a.settings_id: a for a in GatewayAccount.objects.all()}
        rows = []
        for cs in ChannelSettings.objects.filter(channel="sms", outbox=False).select_related("operator"):
            params = dict(cs.params or {})
            limit = params.get("balance_alert_below")
            account = accounts.get(cs.id)
            if account is None and limit is None:
                continue
            labels = [str(cs.id), cs.operator.code, gateway_host(_with_url(params))]
            rows.append((labels, account, float(limit) if isinstance(limit, int | float) else None))
        return rows

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            if self._at is None or time.monotonic() - self._at >= self._ttl:
                try:
                    self._rows = self._read()
                except Exception:  # noqa: BLE001 - a scrape must not fail because the store is down
                    log.debug("gateway accounts not read for a scrape", exc_info=True)
                self._at = time.monotonic()
            rows = list(self._rows)
        balance = GaugeMetricFamily("msgd_gateway_balance", "The SMS gateway account's last known balance (in the"
                                    " gateway's unit), from its account query or a reply", labels=LABELS)
        limit = GaugeMetricFamily("msgd_gateway_balance_alert_below", "The slot's balance_alert_below setting",
                                  labels=LABELS)
        empty = GaugeMetricFamily("msgd_gateway_account_empty", "1 while the last word on the SMS gateway account"
                                  " is that its money ran out", labels=LABELS)
        for labels, account, threshold in rows:
            if account is not None and account.balance is not None:
                balance.add_metric(labels, account.balance)
            if threshold is not None:
                limit.add_metric(labels, threshold)
            empty.add_metric(labels, 1.0 if account is not None and account.empty else 0.0)
        yield balance
        yield limit
        yield empty


def _with_url(params: dict[str, Any]) -> dict[str, Any]:
    """The preset's url where the slot names only a preset (the label is the gateway's host)."""
    if params.get("url"):
        return params
    from services.senders.sms.presets import PRESETS

    preset = PRESETS.get(str(params.get("preset") or ""))
    return {**params, "url": preset.settings.get("url")} if preset is not None else params


_collector: AccountCollector | None = None
_collector_lock = threading.Lock()


def export() -> AccountCollector:
    """Register the gauges in this process's registry (once; the dlr and SMS sender stages call it)."""
    global _collector
    with _collector_lock:
        if _collector is None:
            _collector = AccountCollector()
            REGISTRY.register(_collector)
        return _collector
