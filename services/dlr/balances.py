"""The dlr stage's account poll: every ``MSGD_BALANCE_POLL_MINUTES`` (default 15; 0 = never) each
SMS slot whose gateway has a read-only account query (smsc.ru, SMSPilot, Prostor, Digital Direct,
SemySMS: services/senders/sms/balance.py) is asked for its balance, and the answer is kept in
``msgd_gatewayaccount`` (services/senders/sms/accounts.py), where the admin's channel list and the
``msgd_gateway_*`` metrics read it.

Several dlr processes may run: each takes a slot with a compare-and-swap on its ``polled_at``, so a
gateway is asked once per interval, whoever asks. A query that fails (the gateway is down) is
recorded as that problem and asked again next interval; it never marks the account empty.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests
import structlog
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from msgd.settings import Settings
from msgd.store.cache import ConfigCache
from services.senders.base import PermanentError
from services.senders.http_errors import network_error
from services.senders.model import SettingsInvalid
from services.senders.net import http_options
from services.senders.sms import accounts
from services.senders.sms.balance import AccountCheck, account_request, query_account
from services.senders.sms.settings import SmsSettings

log = structlog.get_logger("msgd.dlr.balances")
LOOK_SECONDS = 60.0  # how often this process looks for due slots (each slot is due every interval)


class BalancePoller:
    """Asks the due SMS gateways for their balance (one thread)."""

    def __init__(self, settings: Settings, cache: ConfigCache, session: requests.Session) -> None:
        self.settings = settings
        self.cache = cache
        self.session = session
        self._next_look = 0.0

    def due(self) -> bool:
        return self.settings.balance_poll_minutes > 0 and time.monotonic() >= self._next_look

    def slots(self) -> list[tuple[int, SmsSettings]]:
        """The SMS slots whose gateway has an account query, with their settings."""
        found = []
        for op in self.cache.operators():
            for cfg in op.channels.get("sms", []):
                if cfg.id is None or cfg.outbox:
                    continue
                try:
                    s = SmsSettings.parse({**cfg.params, **cfg.secrets})
                    if account_request(s) is None:
                        continue
                except (SettingsInvalid, PermanentError, ValueError):
                    continue  # msgd doctor and the sender report unusable settings
                found.append((cfg.id, s))
        return found

    def take(self, slot: int, now: dt.datetime) -> bool:
        """This process asks about ``slot`` now (no other did within the interval)."""
        from msgd.store.models import GatewayAccount

        cutoff = now - dt.timedelta(minutes=self.settings.balance_poll_minutes)
        if not GatewayAccount.objects.filter(settings_id=slot).exists():
            try:
                with transaction.atomic():
                    GatewayAccount.objects.create(settings_id=slot)
            except IntegrityError:
                pass  # another poller created it
        return bool(GatewayAccount.objects.filter(Q(polled_at__isnull=True) | Q(polled_at__lt=cutoff),
                                                  settings_id=slot).update(polled_at=now))

    def tick(self, now: dt.datetime | None = None) -> int:
        """Ask every due gateway; returns how many were asked."""
        if not self.due():
            return 0
        self._next_look = time.monotonic() + min(LOOK_SECONDS, self.settings.balance_poll_minutes * 60)
        now = now or timezone.now()
        asked = 0
        for slot, s in self.slots():
            if not self.take(slot, now):
                continue
            asked += 1
            accounts.note_check(slot, self.ask(s), now)
        return asked

    def ask(self, s: SmsSettings) -> AccountCheck:
        url = str(s.effective().get("url"))
        timeout: Any = self.settings.http_timeout
        try:
            timeout, verify = http_options(s, self.settings.http_timeout, "SMS")
            check = query_account(s, self.session, timeout, verify)
        except PermanentError as exc:
            return AccountCheck(False, problem="request", words=exc.reason)
        except (requests.RequestException, ValueError, UnicodeError) as exc:
            err = network_error(exc, "SMS gateway", url, float(timeout))
            log.warning("balance query failed; asking again next time", gateway=url.split("/")[2:3], error=err.reason)
            return AccountCheck(False, problem="unavailable", words=err.reason)
        assert check is not None  # slots() kept only slots that have a query
        if not check.accepted:
            log.warning("balance query refused", problem=check.problem, words=check.words)
        return check
