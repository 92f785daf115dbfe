"""Resend over HTTP (token scope ``resend``; docs/openapi.yaml): one message, optionally to a
corrected contact, or every message a filter chooses. msgd/resend.py does the work: each
resend is a new message linked to its original and claimed like any send, so it goes out once
however often it is asked for."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from msgd import storable
from msgd.settings import Settings
from msgd.web.api_http import (
    Invalid,
    allow,
    field_error,
    json_errors,
    read_json,
    scope_required,
    token_operators,
    token_required,
)
from msgd.web.api_log import parse_since

MAX_RESEND = 10_000
DEFAULT_RESEND = 1000
# body field -> (Message lookup, longest value worth looking up)
TEXT_FILTERS = {"operator": ("operator_code", 64), "channel": ("channel", 32), "event_type": ("event_type", 64),
                "event_id": ("event_id", 128), "subscriber": ("abonent_id", 64)}
FIELDS = {"state", "fault", "since", "until", "limit", "dry_run", *TEXT_FILTERS}


def _answer(plan: Any, ids: list[str], dry_run: bool) -> JsonResponse:
    body = {
        "dry_run": dry_run,
        "resent": [{"original": str(m.id), **({} if dry_run else {"message_id": new})}
                   for m, new in zip(plan.ready, ids or [""] * len(plan.ready), strict=True)],
        "skipped": [{"id": str(m.id), "reason": why} for m, why in plan.skipped],
    }
    return JsonResponse(body, status=200 if dry_run or not plan.ready else 202, json_dumps_params={"ensure_ascii": False})


def _resend(request: HttpRequest, rows: list[Any], recipient: str | None, dry_run: bool) -> HttpResponse:
    from msgd.resend import ResendError, plan, resend
    from msgd.web.api import log_publish_failure

    if dry_run:
        return _answer(plan(rows), [], True)
    try:
        chosen, ids = resend(Settings.from_env(), rows, by=f"API token {request.api_token.name}", recipient=recipient)
    except ResendError as exc:
        raise Invalid([field_error("recipient", str(exc))]) from None
    except Exception as exc:  # noqa: BLE001 - the broker did not confirm: nothing was recorded
        return JsonResponse({"error": log_publish_failure([m.event_id for m in rows[:20]], exc)}, status=503)
    return _answer(chosen, ids, False)


def _scoped(request: HttpRequest) -> Any:
    from msgd.store.models import Message

    allowed = token_operators(request)
    qs = Message.objects.select_related("resend_of")
    return qs if allowed is None else qs.filter(operator_code__in=allowed)


@csrf_exempt
@token_required
@scope_required("resend")
@allow("POST")
@json_errors
def resend_one(request: HttpRequest, message_id: str) -> HttpResponse:
    """POST ``{"recipient": "..."}`` (optional, the corrected contact) or an empty body."""
    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return JsonResponse({"error": "not found"}, status=404)
    m = _scoped(request).filter(id=key).first()
    if m is None:
        return JsonResponse({"error": "not found"}, status=404)
    data = read_json(request) if request.body else {}
    if not isinstance(data, dict):
        raise Invalid([field_error("(body)", "expected a JSON object")])
    errors = [field_error(k, "unknown field") for k in data if k not in ("recipient", "dry_run")]
    recipient = data.get("recipient")
    if "recipient" in data and (not isinstance(recipient, str) or not 1 <= len(recipient) <= 500):
        errors.append(field_error("recipient", "must be text of 1 to 500 characters"))
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors.append(field_error("dry_run", "must be true or false"))
    if errors:
        raise Invalid(errors)
    return _resend(request, [m], recipient, dry_run)


def _filters(data: Any) -> tuple[dict[str, Any], int, bool]:
    """The validated filter body: (lookups, limit, dry_run); Invalid listing every problem."""
    from msgd.envelope import FAULTS
    from msgd.resend import RESENDABLE

    if not isinstance(data, dict):
        raise Invalid([field_error("(body)", "expected a JSON object")])
    errors = [field_error(k, f"unknown field; known: {', '.join(sorted(FIELDS))}") for k in data if k not in FIELDS]
    lookups: dict[str, Any] = {"state": data.get("state", "failed")}
    if lookups["state"] not in RESENDABLE:
        errors.append(field_error("state", f"one of {', '.join(RESENDABLE)}"))
    if "fault" in data:
        if data["fault"] not in FAULTS:
            errors.append(field_error("fault", f"one of {', '.join(FAULTS)}"))
        else:
            lookups["fault"] = data["fault"]
    for name, (lookup, longest) in TEXT_FILTERS.items():
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, str) or not 1 <= len(value) <= longest or storable.problem(value) is not None:
            errors.append(field_error(name, f"must be text of 1 to {longest} characters"))
        else:
            lookups[lookup] = value
    for name, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
        if name not in data:
            continue
        value = data[name]
        when = parse_since(value) if isinstance(value, str) else None
        if when is None:
            errors.append(field_error(name, "an ISO 8601 date or date-time, e.g. 2024-05-01T09:00:00+03:00"))
        else:
            lookups[lookup] = when
    limit = data.get("limit", DEFAULT_RESEND)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESEND:
        errors.append(field_error("limit", f"an integer from 1 to {MAX_RESEND}"))
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors.append(field_error("dry_run", "must be true or false"))
    if not errors and len(lookups) < 2:  # never every failed message ever, by accident
        errors.append(field_error("(body)", "choose the messages: fault, since, operator, channel, event_type,"
                                            " event_id or subscriber besides state"))
    if errors:
        raise Invalid(errors)
    return lookups, limit, dry_run


@csrf_exempt
@token_required
@scope_required("resend")
@allow("POST")
@json_errors
def resend_many(request: HttpRequest) -> HttpResponse:
    """POST a filter (``state`` failed by default, ``fault``, ``since``, ``until``, ``operator``, ``channel``,
    ``event_type``, ``event_id``, ``subscriber``, ``limit``, ``dry_run``): send those again."""
    lookups, limit, dry_run = _filters(read_json(request))
    rows = list(_scoped(request).filter(**lookups).order_by("created_at")[:limit])
    return _resend(request, rows, None, dry_run)
