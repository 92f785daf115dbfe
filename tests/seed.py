"""Store contents for tests, written through the ORM (Django must be configured)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def operator(code: str = "best", **fields: Any) -> Any:
    from msgd.store.models import Operator

    defaults = {"name": "ООО Лучший провайдер", "email": "noc@best.example", "timezone": "Europe/Moscow",
                "attempts": 3, "default_subject": "Сообщение от провайдера"}
    defaults.update(fields)
    return Operator.objects.create(code=code, **defaults)


def sms_gateway(op: Any, url: str = "", *, outbox: bool = False, **params: Any) -> Any:
    from msgd.store.models import ChannelSettings

    p = {"url": url, "request_type": "post", "params": "login=best&phones=%sms%&mes=%text%"}
    secrets = params.pop("secrets", {})
    p.update(params)
    return ChannelSettings.objects.create(operator=op, channel="sms", outbox=outbox, params=p, secrets=secrets)


def smtp(op: Any, port: int = 25, *, outbox: bool = False, **params: Any) -> Any:
    from msgd.store.models import ChannelSettings

    p = {"host": "127.0.0.1", "port": port, "security": "none"}
    p.update(params)
    return ChannelSettings.objects.create(operator=op, channel="email", outbox=outbox, params=p)


def template(event_type: str = "low_balance", channel: str | None = "sms",
             body: str = "Баланс %(balance).2f %(currecy)s, договор %(contract_number)s", **fields: Any) -> Any:
    from msgd.store.models import Template

    return Template.objects.create(event_type=event_type, channel=channel, body=body, **fields)


def quiet_now(op: Any, seconds_left: int) -> dt.datetime:
    """Put ``op`` inside quiet hours that end about ``seconds_left`` seconds from now; return the end."""
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(ZoneInfo(op.timezone))
    end = (now + dt.timedelta(seconds=seconds_left)).replace(microsecond=0)
    op.quiet_start = (now - dt.timedelta(hours=1)).time().replace(microsecond=0)
    op.quiet_end = end.time()
    op.save()
    return end
