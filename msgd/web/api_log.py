"""The message log over HTTP: ``GET /api/v1/messages`` (filtered, paginated) and one message
with every attempt (docs/openapi.yaml describes both, with every bound checked here)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from msgd import localtime, storable
from msgd.envelope import ALL_STATES, FAULTS
from msgd.logview import shown_recipient
from msgd.reasons import explain
from msgd.web.api_http import Invalid, field_error, token_operators

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_OFFSET = 1_000_000_000
STATES = ALL_STATES
# The same pattern is in docs/openapi.yaml: an ISO 8601 date or date-time, offset optional.
SINCE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
                   r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?")
_INTEGER = re.compile(r"-?[0-9]{1,12}")
# filter -> the longest value worth looking up (the message log's column width)
TEXT_FILTERS = {"subscriber": 64, "event_id": 128}
FILTERS = {*TEXT_FILTERS, "state", "fault", "since", "limit", "offset"}


def message_json(m: Any, history: bool = False) -> dict[str, Any]:
    """One row of the message log as the API shows it (schema Message in docs/openapi.yaml):
    times in ISO 8601 with the offset of MSGD_TIME_ZONE, a push recipient as its service host."""
    tz = localtime.zone()
    out: dict[str, Any] = {
        "id": str(m.id), "event_id": m.event_id, "event_type": m.event_type, "operator": m.operator_code,
        "abonent_id": m.abonent_id, "abonent_name": m.abonent_name, "template_id": m.template_id,
        "channel": m.channel, "recipient": shown_recipient(m.channel, m.recipient), "sender": m.sender,
        "subject": m.subject, "body": m.body, "lane": m.lane, "state": m.state, "reason": m.reason,
        "fault": m.fault, "reason_code": m.reason_code, "reason_explained": explain(m.reason_code, m.event_type),
        "attempts": m.attempts, "gateway_message_id": m.gateway_message_id,
        "details": m.details, "resend_of": str(m.resend_of_id) if m.resend_of_id else None,
        "created_at": localtime.iso(m.created_at, tz), "updated_at": localtime.iso(m.updated_at, tz),
        "finished_at": localtime.iso(m.finished_at, tz), "delivery_reported_at": localtime.iso(m.dlr_at, tz),
    }
    if history:
        out["history"] = [
            {"number": a.number, "state": a.state, "reason": a.reason, "reason_code": a.reason_code,
             "at": localtime.iso(a.at, tz),
             "seconds": a.seconds}
            for a in m.history.all()
        ]
    return out


def _integer(raw: str, name: str, lo: int, hi: int, errors: list[dict[str, str]]) -> int | None:
    if not _INTEGER.fullmatch(raw):
        errors.append(field_error(name, "must be an integer"))
        return None
    value = int(raw)
    if not lo <= value <= hi:
        errors.append(field_error(name, f"must be between {lo} and {hi}"))
        return None
    return value


def parse_since(text: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time (UTC when it has no offset) as an aware UTC datetime;
    None when it is not one or is outside the years 1..9999 in UTC."""
    if not SINCE.fullmatch(text):
        return None
    try:
        when = parse_datetime(text)
        if when is None:
            day = parse_date(text)
            if day is None:
                return None
            when = dt.datetime.combine(day, dt.time())
        if timezone.is_naive(when):
            when = timezone.make_aware(when, dt.UTC)
        return when.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # 2024-02-30; 0001-01-01T00:00+01:00 is before year 1 in UTC
        return None


def filters(request: HttpRequest) -> dict[str, Any]:
    """The validated query: every parameter given is checked, an empty one included; Invalid
    lists every problem."""
    errors: list[dict[str, str]] = []
    query: dict[str, Any] = {"limit": DEFAULT_PAGE, "offset": 0}
    for name in request.GET:
        values = request.GET.getlist(name)
        raw = values[-1]
        if name not in FILTERS:
            errors.append(field_error(name, f"unknown filter; known: {', '.join(sorted(FILTERS))}"))
        elif len(values) > 1:
            errors.append(field_error(name, "give this filter once"))
        elif (problem := storable.problem(raw)) is not None:
            errors.append(field_error(name, problem))
        elif name in TEXT_FILTERS:
            if not 1 <= len(raw) <= TEXT_FILTERS[name]:
                errors.append(field_error(name, f"must be 1 to {TEXT_FILTERS[name]} characters"))
            query[name] = raw
        elif name == "state":
            if raw not in STATES:
                errors.append(field_error(name, f"one of {', '.join(STATES)}"))
            query[name] = raw
        elif name == "fault":
            if raw not in FAULTS:
                errors.append(field_error(name, f"one of {', '.join(FAULTS)}"))
            query[name] = raw
        elif name == "since":
            query[name] = parse_since(raw)
            if query[name] is None:
                plus = (" (a '+' in a URL's query reads as a space: write its offset as %2B03:00)"
                        if parse_since(raw.replace(" ", "+")) is not None else "")
                errors.append(field_error(
                    name, "an ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T00:00:00+03:00" + plus))
        else:
            lo, hi = (1, MAX_PAGE) if name == "limit" else (0, MAX_OFFSET)
            query[name] = _integer(raw, name, lo, hi, errors)
    if errors:
        raise Invalid(errors)
    return query


def list_messages(request: HttpRequest) -> HttpResponse:
    """One page of the message log, newest first."""
    from msgd.store.models import Message

    query = filters(request)
    qs = Message.objects.all().order_by("-created_at", "id")
    allowed = token_operators(request)
    if allowed is not None:
        qs = qs.filter(operator_code__in=allowed)
    if "subscriber" in query:
        qs = qs.filter(abonent_id=query["subscriber"])
    if "event_id" in query:
        qs = qs.filter(event_id=query["event_id"])
    if "state" in query:
        qs = qs.filter(state=query["state"])
    if "fault" in query:
        qs = qs.filter(fault=query["fault"])
    if "since" in query:
        qs = qs.filter(created_at__gte=query["since"])
    limit, offset = query["limit"], query["offset"]
    total = qs.count()
    rows = list(qs[offset : offset + limit])
    nxt = None
    if offset + limit < total:
        params = request.GET.copy()
        params["offset"] = str(offset + limit)
        params["limit"] = str(limit)
        nxt = f"{request.path}?{params.urlencode()}"
    return JsonResponse({"count": total, "offset": offset, "limit": limit, "next": nxt,
                         "results": [message_json(m) for m in rows]},
                        json_dumps_params={"ensure_ascii": False})


def message_detail(request: HttpRequest, message_id: str) -> HttpResponse:
    """One message with every attempt; 404 for an unknown or malformed id."""
    from msgd.store.models import Message

    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return JsonResponse({"error": "not found"}, status=404)
    allowed = token_operators(request)
    qs = Message.objects.filter(id=key)
    m = (qs if allowed is None else qs.filter(operator_code__in=allowed)).first()
    if m is None:  # another operator's message is not found either
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse(message_json(m, history=True), json_dumps_params={"ensure_ascii": False})
