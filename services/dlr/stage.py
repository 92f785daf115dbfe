"""The dlr stage (``msgd run dlr``): ask SMS gateways for the delivery reports they do not call back
(and, every ``MSGD_BALANCE_POLL_MINUTES``, for their balance: services/dlr/balances.py).

For every SMS slot with ``dlr_poll: true`` (smsc.ru, SMSPilot, Digital Direct:
services/senders/sms/dlr_query.py) each ``sent`` message of the last ``MSGD_DLR_POLL_HOURS`` that
has no final report gets a row in ``msgd_dlrpoll`` and is asked about in batches:
first ``MSGD_DLR_POLL_FIRST_SECONDS`` after it was sent, then with the wait doubling up to
``MSGD_DLR_POLL_MAX_SECONDS``. A final answer is published to the recorder as a delivery report
(schemas/dlr.v1.json, with publisher confirms, before the row is closed); past the deadline the
message stays ``sent`` with the reason "no delivery report" and nobody asks again.

Several dlr processes may run: each takes due rows with a compare-and-swap (their ``next_at``
moves a lease ahead), so a row is asked about by one of them at a time; one that dies leaves its
rows to the others when the lease ends.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import requests
import structlog
from django.utils import timezone

from msgd import metrics
from msgd.broker.base import Broker, Outgoing
from msgd.envelope import DLR_NO_REPORT, SENT
from msgd.settings import Settings
from msgd.status import delivery_report
from msgd.store.cache import ChannelConfig, ConfigCache
from services.dlr.balances import BalancePoller
from services.senders.base import SendError
from services.senders.sms import accounts
from services.senders.sms.dlr import Dlr
from services.senders.sms.dlr_query import BATCH, read_status, status_requests
from services.senders.sms.presets import effective_settings

log = structlog.get_logger("msgd.dlr")

LEASE_SECONDS = 120.0
IDLE_SECONDS = 5.0  # the longest pause between two looks for due messages
# Sent messages are looked for again this far behind the last look (a sent report recorded late).
OVERLAP = dt.timedelta(minutes=10)


class DlrPoller:
    """One poller process (thread-safe only as one thread)."""

    name = "dlr"

    def __init__(self, settings: Settings, broker: Broker, cache: ConfigCache | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.cache = cache or ConfigCache(settings.config_refresh_seconds)
        self.owner = uuid.uuid4().hex
        self.session = requests.Session()
        self._seen_until: dt.datetime | None = None
        self.balances = BalancePoller(settings, self.cache, self.session)

    def close(self) -> None:
        self.session.close()

    @property
    def idle_seconds(self) -> float:
        """The pause between two looks when nothing was due: 5 s, or the first wait when that is shorter
        (a message is asked about about ``MSGD_DLR_POLL_FIRST_SECONDS`` after sending, not 5 s later)."""
        return max(0.2, min(IDLE_SECONDS, self.settings.dlr_poll_first_seconds))

    def run(self, stop: threading.Event, idle: float | None = None) -> None:
        idle = self.idle_seconds if idle is None else idle
        while not stop.is_set():
            try:
                asked = self.tick()
            except Exception:  # noqa: BLE001 - an outage or a bug: log it, keep polling
                log.exception("dlr poll failed; trying again")
                asked = 0
            try:
                self.balances.tick()
            except Exception:  # noqa: BLE001 - as above
                log.exception("balance poll failed; trying again")
            stop.wait(0.2 if asked else idle)

    def slots(self) -> dict[int, ChannelConfig]:
        """The SMS slots whose gateways are asked for reports, by id."""
        found = {}
        for op in self.cache.operators():
            for cfg in op.channels.get("sms", []):
                if cfg.id is not None and not cfg.outbox and cfg.params.get("dlr_poll") is True:
                    found[cfg.id] = cfg
        return found

    def tick(self, now: dt.datetime | None = None) -> int:
        """Find new sent messages, ask about the due ones; returns how many were asked about."""
        now = now or timezone.now()
        slots = self.slots()
        if not slots:
            return 0
        self.discover(list(slots), now)
        rows = self.claim(now)
        by_slot: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_slot[row.settings_id].append(row)
        for sid, mine in by_slot.items():
            cfg = slots.get(sid)
            if cfg is None:  # polling switched off since: leave them (the deadline closes them)
                self._reschedule(mine, now, self.settings.dlr_poll_max_seconds)
                continue
            self._ask_slot(cfg, mine, now)
        return len(rows)

    def discover(self, slot_ids: list[int], now: dt.datetime) -> None:
        from msgd.store.models import DlrPoll, Message

        cutoff = now - dt.timedelta(hours=self.settings.dlr_poll_hours)
        since = max(cutoff, self._seen_until - OVERLAP) if self._seen_until else cutoff
        found = list(Message.objects.filter(settings_id__in=slot_ids, state=SENT, channel="sms",
                                            finished_at__gte=since).exclude(gateway_message_id="")
                     .values("id", "settings_id", "gateway_message_id", "recipient", "details", "finished_at")
                     .order_by("finished_at")[:20_000])
        first = dt.timedelta(seconds=self.settings.dlr_poll_first_seconds)
        DlrPoll.objects.bulk_create([
            DlrPoll(message_id=m["id"], settings_id=m["settings_id"], gateway_message_id=m["gateway_message_id"],
                    recipient=str((m["details"] or {}).get("phone") or m["recipient"])[:500],
                    sent_at=m["finished_at"], next_at=m["finished_at"] + first)
            for m in found], ignore_conflicts=True)
        if found:
            self._seen_until = found[-1]["finished_at"]
        elif self._seen_until is None:
            self._seen_until = now

    def claim(self, now: dt.datetime) -> list[Any]:
        from msgd.store.models import DlrPoll

        due = list(DlrPoll.objects.filter(done=False, next_at__lte=now).order_by("next_at")
                   .values_list("message_id", flat=True)[: self.settings.dlr_poll_batch * 4])
        if not due:
            return []
        lease = now + dt.timedelta(seconds=LEASE_SECONDS)
        DlrPoll.objects.filter(message_id__in=due, done=False, next_at__lte=now).update(owner=self.owner, next_at=lease)
        return list(DlrPoll.objects.filter(message_id__in=due, owner=self.owner, next_at=lease))

    def _ask_slot(self, cfg: ChannelConfig, rows: list[Any], now: dt.datetime) -> None:
        params = effective_settings(dict(cfg.params))
        fmt = str(params.get("reply_format") or "")
        size = BATCH.get(fmt, 1)
        gateway = metrics.gateway_host(cfg.params)
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            try:
                reports = self._query(fmt, params, cfg, chunk)
            except (SendError, requests.RequestException, ValueError) as exc:
                log.warning("delivery report query failed; asking again later", slot=cfg.id, gateway=gateway,
                            error=getattr(exc, "reason", type(exc).__name__))
                self._reschedule(chunk, now, None)
                continue
            self._conclude(cfg, gateway, chunk, reports, now)

    def _query(self, fmt: str, params: dict[str, Any], cfg: ChannelConfig, rows: Sequence[Any]) -> dict[str, Dlr]:
        timeout = float(params.get("timeout") or self.settings.http_timeout)
        verify: bool | str = params.get("ca_bundle") or params.get("verify", True) is not False
        found: dict[str, Dlr] = {}
        items = [(r.gateway_message_id, r.recipient.lstrip("+")) for r in rows]
        for req in status_requests(fmt, str(params["status_url"]), params, cfg.secrets, items):
            resp = self.session.request(req.method, req.url, data=req.body, headers=req.headers, auth=req.auth,
                                        timeout=timeout, verify=verify)
            for report in read_status(fmt, resp.status_code, resp.text):
                found[report.gateway_message_id] = report
        return found

    def _conclude(self, cfg: ChannelConfig, gateway: str, rows: list[Any], reports: dict[str, Dlr],
                  now: dt.datetime) -> None:
        from msgd.store.models import DlrPoll

        out: list[Outgoing] = []
        closed, waiting = [], []
        deadline = dt.timedelta(hours=self.settings.dlr_poll_hours)
        for row in rows:
            report = reports.get(row.gateway_message_id)
            common = {"settings_id": cfg.id, "gateway": gateway, "gateway_message_id": row.gateway_message_id,
                      "message_id": str(row.message_id), "via": "poll"}
            if report is not None and report.state is not None:
                out.append(delivery_report(report.state, reason=report.reason, fault=report.fault,
                                           error=report.error, at=report.at, **common))
                closed.append(row)
            elif now - row.sent_at >= deadline:
                hours = f"{self.settings.dlr_poll_hours:g}"
                out.append(delivery_report(DLR_NO_REPORT, reason=f"no delivery report: the gateway had none"
                                           f" {hours} h after sending (asked {row.polls + 1} times)", **common))
                closed.append(row)
            else:
                waiting.append(row)
        self.broker.publish(out)  # confirmed before the rows close: a lost publish is asked again
        DlrPoll.objects.filter(message_id__in=[r.message_id for r in closed], owner=self.owner).update(done=True)
        self._reschedule(waiting, now, None)

    def _reschedule(self, rows: list[Any], now: dt.datetime, wait: float | None) -> None:
        from msgd.store.models import DlrPoll

        for row in rows:
            delay = wait if wait is not None else min(self.settings.dlr_poll_first_seconds * 2 ** (row.polls + 1),
                                                      self.settings.dlr_poll_max_seconds)
            last = row.sent_at + dt.timedelta(hours=self.settings.dlr_poll_hours)
            at = min(now + dt.timedelta(seconds=delay), max(last, now))
            DlrPoll.objects.filter(message_id=row.message_id, owner=self.owner).update(polls=row.polls + 1, next_at=at)


def run_poller(settings: Settings, broker: Broker, stop: threading.Event) -> None:
    """``msgd run dlr``: poll until ``stop`` is set."""
    accounts.export()
    poller = DlrPoller(settings, broker)
    try:
        poller.run(stop)
    finally:
        poller.close()
