"""Asking an SMS gateway for delivery reports (the dlr stage, ``dlr_poll: true``).

=================  ============================================================================
format             status query (``status_url``)
=================  ============================================================================
smsc               ``status.php`` (https://smsc.ru/api/http/status_messages/): POST ``login``,
                   ``psw``, ``phone`` and ``id`` as comma lists ending in a comma (a batch), ``fmt=3``
                   → a JSON list of ``{"id", "phone", "status", "err", "last_timestamp"}`` (codes
                   as in services/senders/sms/dlr.py); ``{"error", "error_code"}`` on failure
smspilot           ``api.php?check=<id,id,...>&apikey=...&format=json``
                   (https://smspilot.ru/apikey.php) → ``{"check": [{"server_id", "status"}]}``
digital_direct     ``GET <status_url>/<messageUuid>`` per message, the send's Authorization
                   (https://api.docs.direct.i-dgtl.ru/messages/get) → the message object
=================  ============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from msgd import safejson
from services.senders.base import PermanentError, TransientError
from services.senders.sms.dlr import Dlr, digital_direct_report, smsc_report, smspilot_report
from services.senders.sms.request import HttpRequest, build_request, join_query

# Messages asked about in one request (smsc.ru and SMSPilot take lists).
BATCH = {"smsc": 50, "smspilot": 100, "digital_direct": 1}


def _secret(params: dict[str, Any], secrets: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = secrets.get(key) or params.get(key)
        if value:
            return str(value)
    return ""


def status_requests(fmt: str, status_url: str, params: dict[str, Any], secrets: dict[str, Any],
                    items: Sequence[tuple[str, str]]) -> list[HttpRequest]:
    """The requests that ask about ``items`` (gateway id, phone as sent); ValueError for a format
    msgd cannot ask."""
    ids = [gid for gid, _ in items]
    if fmt == "smsc":
        form = (f"login={quote(_secret(params, secrets, 'login'), safe='')}"
                f"&psw={quote(_secret(params, secrets, 'password'), safe='')}"
                f"&phone={quote(','.join(p for _, p in items) + ',', safe=',')}"
                f"&id={quote(','.join(ids) + ',', safe=',')}&fmt=3&charset=utf-8")
        return [HttpRequest("POST", status_url, form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})]
    if fmt == "smspilot":
        key = _secret(params, secrets, "api_key", "password")
        query = f"check={quote(','.join(ids), safe=',')}&apikey={quote(key, safe='')}&format=json"
        return [HttpRequest("GET", join_query(status_url, query))]
    if fmt == "digital_direct":
        send = build_request("digital_direct_json", status_url, "0", "", params, secrets)
        return [HttpRequest("GET", f"{status_url.rstrip('/')}/{quote(gid, safe='')}", None,
                            {k: v for k, v in send.headers.items() if k in ("Authorization", "Accept")}, send.auth)
                for gid in ids]
    raise ValueError(f"msgd cannot ask {fmt} gateways for delivery reports")


def read_status(fmt: str, status: int, body: str) -> list[Dlr]:
    """The reports in a status query's answer; TransientError for a busy or failing gateway,
    PermanentError for an answer that says the query itself is wrong (credentials)."""
    if status == 429 or status >= 500:
        raise TransientError(f"the gateway's status query answered HTTP {status}")
    if status in (401, 403):
        raise PermanentError(f"the gateway refused the status query (HTTP {status}) — check the credentials")
    try:
        data = safejson.loads(body) if body.strip() else None
    except ValueError:
        raise TransientError("the gateway's status query answered something that is not JSON") from None
    if status >= 400 and fmt != "digital_direct":
        raise PermanentError(f"the gateway refused the status query (HTTP {status})")
    if fmt == "smsc":
        if isinstance(data, dict) and ("error" in data or "error_code" in data):
            raise PermanentError(f"smsc.ru refused the status query: {data.get('error')} ({data.get('error_code')})")
        entries = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        return [smsc_report(str(e.get("id") or ""), _int(e.get("status")), _int(e.get("err")))
                for e in entries if isinstance(e, dict) and e.get("id") not in (None, "")]
    if fmt == "smspilot":
        checks = data.get("check") if isinstance(data, dict) else None
        if not isinstance(checks, list):
            raise TransientError("SMSPilot's status answer has no check list")
        return [smspilot_report(str(c.get("server_id") or c.get("id") or ""), _int(c.get("status")))
                for c in checks if isinstance(c, dict)]
    if fmt == "digital_direct":
        if status == 404:
            return []
        return [digital_direct_report(data)] if isinstance(data, dict) else []
    raise ValueError(f"msgd cannot read {fmt} status answers")


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
