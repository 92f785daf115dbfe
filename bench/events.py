"""The billing events and templates every bench run uses (msgd and the Celery reference alike).

Each SMS text starts with ``n|t0|``: the event's number and the time it was made (epoch
seconds), so the gateway's receive time minus ``t0`` is the latency from publish to gateway.
``low_balance`` goes on msgd's bulk lane, ``password_reset`` on the transactional one.
"""

from __future__ import annotations

import time
from typing import Any

OPERATOR = "best"
TEMPLATES = {
    "low_balance": "%(bench_n)s|%(bench_t0)s|Уважаемый абонент %(name)s! Ваш баланс %(balance).2f %(currecy)s"
                   " — пополните счёт.",
    "password_reset": "%(bench_n)s|%(bench_t0)s|Код для сброса пароля: %(psw_token)s",
}


def event(ns: str, k: int, etype: str = "low_balance") -> dict[str, Any]:
    """Event number ``k`` of type ``etype`` in the contract of schemas/event.v1.json."""
    data: dict[str, Any] = {"bench_n": k, "bench_t0": f"{time.time():.6f}"}
    if etype == "password_reset":
        data["psw_token"] = f"{k % 1000000:06d}"
    return {
        "event_id": f"{ns}-{k}", "type": etype,
        "occurred_at": "2026-11-27T10:00:00+03:00", "operator": {"code": OPERATOR},
        "abonent": {"id": k, "name": f"Абонент {k}", "balance": -12.5, "currency": "руб.",
                    "contacts": {"sms": f"+7912{k % 10_000_000:07d}"}},
        "data": data,
    }


def msgd_config(gateway_url: str, rate_limit: float | None = None) -> dict[str, Any]:
    """The configuration file (``msgd config load``) for one operator with an SMS gateway."""
    sms: dict[str, Any] = {"url": gateway_url, "request_type": "post",
                           "params": "login=best&phones=%sms%&mes=%text%"}
    if rate_limit is not None:
        sms["rate_limit"] = rate_limit
    return {
        "operators": [{
            "code": OPERATOR, "name": "ООО Лучший провайдер", "email": "noc@best.example",
            "timezone": "Europe/Moscow", "attempts": 3, "channels": {"sms": sms},
        }],
        "templates": [{"name": f"bench {etype}", "owner": None, "event": etype, "channel": "sms", "body": body}
                      for etype, body in TEMPLATES.items()],
    }
