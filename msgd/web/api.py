"""The HTTP API (JSON, ``Authorization: Token <key>``); described by docs/openapi.yaml.

Events are validated with the same schema as AMQP and published with
publisher confirms through the configured broker before 202 is answered:
a 202 means the broker has the event.  Invalid requests get 400 with field
errors and nothing is published.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

import structlog
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt

from msgd.envelope import FAULTS, FINAL_STATES, PASSING_STATES
from msgd.redact import redact_text
from msgd.settings import Settings

log = structlog.get_logger("msgd.web")

View = Callable[..., HttpResponse]
MAX_PAGE = 500
DEFAULT_PAGE = 50
STATES = (*PASSING_STATES, *FINAL_STATES)


class Invalid(Exception):
    """A request that is refused as a whole: 400 with these field errors."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid request")
        self.errors = errors


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def schema_errors(problems: list[str], prefix: str = "") -> list[dict[str, str]]:
    """validate_event's "place: message" strings as field errors."""
    out = []
    for p in problems:
        place, sep, message = p.partition(": ")
        if not sep or " " in place:
            place, message = "", p
        out.append(field_error(f"{prefix}{place}" if place else prefix.rstrip(".") or "(body)", message))
    return out


def bad_request(errors: list[dict[str, str]]) -> JsonResponse:
    return JsonResponse({"error": "invalid request", "errors": errors}, status=400)


def token_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from msgd.web.models import ApiToken

        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        token = ApiToken.authenticate(key.strip()) if scheme.lower() == "token" else None
        if token is None:
            resp = JsonResponse({"error": "authentication required: send 'Authorization: Token <key>'"},
                                status=401)
            resp["WWW-Authenticate"] = "Token"
            return resp
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        request.api_token = token
        return view(request, *args, **kwargs)

    return wrapped


def read_json(request: HttpRequest) -> Any:
    if request.content_type != "application/json":
        raise Invalid([field_error("(body)", "send Content-Type: application/json")])
    try:
        return json.loads(request.body or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid([field_error("(body)", f"not JSON: {exc}")]) from None


def method_not_allowed(*allowed: str) -> JsonResponse:
    return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": ", ".join(allowed)})


def try_publish(events: list[dict[str, Any]]) -> str:
    """Publish with confirms through the configured broker: '' when the broker has the events,
    else the problem to show (the exception's type only; the full text is logged, redacted).
    Used by the API and the admin's forms."""
    from msgd.publishing import publish_events

    try:
        publish_events(Settings.from_env(), events, declare_once=True)
    except Exception as exc:  # noqa: BLE001 - the broker is down or refused: nothing was accepted
        log.error("publish failed: the broker did not accept the events",
                  event_ids=[e.get("event_id") for e in events], error_type=type(exc).__name__,
                  error=redact_text(str(exc)))
        return f"the broker did not accept the event: {type(exc).__name__}"
    return ""


def _published(events: list[dict[str, Any]]) -> JsonResponse:
    problem = try_publish(events)
    if problem:
        return JsonResponse({"error": problem}, status=503)
    if len(events) == 1:
        return JsonResponse({"event_id": events[0]["event_id"], "status": "accepted"}, status=202)
    return JsonResponse({"event_ids": [e["event_id"] for e in events], "status": "accepted"}, status=202)


@csrf_exempt
@token_required
def events(request: HttpRequest) -> HttpResponse:
    """POST one event (or a list, all or nothing) in the AMQP contract's schema."""
    from msgd.schemas import validate_event

    if request.method != "POST":
        return method_not_allowed("POST")
    try:
        body = read_json(request)
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(e, dict) for e in items):
            raise Invalid([field_error("(body)", "expected an event object or a non-empty list of them")])
        errors: list[dict[str, str]] = []
        for i, e in enumerate(items):
            prefix = f"[{i}]." if isinstance(body, list) else ""
            errors += schema_errors(validate_event(e), prefix)
        if errors:
            raise Invalid(errors)
    except Invalid as exc:
        return bad_request(exc.errors)
    return _published(items)


# -- manual send ------------------------------------------------------------------------------
_DJANGO_TEXT = re.compile(r"\{\{\s*text\b|\{%[^%]*\btext\b")


def uses_text(template: Any) -> bool:
    """Whether the template's subject or body shows the manual send's ``text``."""
    from services.renderer.standard import TemplateSyntaxError, variables

    sources = [template.subject or "", template.body or ""]
    if template.use_django:
        return any(_DJANGO_TEXT.search(src) for src in sources)
    try:
        return any("text" in variables(src) for src in sources)
    except TemplateSyntaxError:
        return False  # refused when it was saved; the renderer reports it


def build_manual_event(data: Any) -> dict[str, Any]:
    """The ``manual`` event for a manual send (the original's form), or Invalid."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from msgd.schemas import validate_event
    from msgd.store.models import Operator, Template
    from services.senders import known_channels, normalize_channel

    if not isinstance(data, dict):
        raise Invalid([field_error("(body)", "expected a JSON object")])
    errors: list[dict[str, str]] = []
    known = {"operator", "abonent", "template_id", "all_templates", "channel", "text", "admin_email"}
    errors += [field_error(k, "unknown field") for k in data if k not in known]

    code = data.get("operator")
    operator = Operator.objects.filter(code=code).first() if isinstance(code, str) else None
    if operator is None:
        errors.append(field_error("operator", f"no operator with code {code!r}" if code else "required"))

    template_id = data.get("template_id")
    tpl = None
    all_templates = data.get("all_templates", False)
    if not isinstance(all_templates, bool):
        errors.append(field_error("all_templates", "must be true or false"))
    if template_id is not None:
        if isinstance(template_id, bool) or not isinstance(template_id, int):
            errors.append(field_error("template_id", "must be an integer or null"))
        else:
            tpl = Template.objects.filter(id=template_id).first()
            if tpl is None:
                errors.append(field_error("template_id", f"no template {template_id}"))
            elif operator is not None and tpl.owner_id not in (None, operator.id):
                errors.append(field_error("template_id", "the template belongs to another operator"))
        if all_templates is True:
            errors.append(field_error("all_templates", "choose a template or all matching templates, not both"))
    elif all_templates is not True:
        errors.append(field_error(
            "template_id", "choose a template, or set all_templates: true to send every matching template"))

    channel = data.get("channel")
    if channel in ("", "---"):
        channel = None
    if channel is not None:
        canonical = normalize_channel(channel) if isinstance(channel, str) else None
        if canonical is None or canonical not in known_channels():  # legacy names end "unsupported"
            errors.append(field_error("channel", f"unknown channel {channel!r}; one of {', '.join(known_channels())}"))
        channel = canonical

    # The manual: a chosen template is sent as it is written (its own text; %(text)s only when the
    # template has it), so text may be left out; arbitrary text goes through the "manual" templates
    # with %(text)s, which is what every matching template fires, so there it is required.
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        errors.append(field_error("text", "must be a string"))
    elif not text and all_templates is True and template_id is None:
        errors.append(field_error(
            "text", "required when every matching template is sent (their %(text)s); or choose a template"))
    elif not text and tpl is not None and uses_text(tpl):
        errors.append(field_error("text", "required: the chosen template shows it (%(text)s)"))

    admin_email = data.get("admin_email")
    try:
        if not isinstance(admin_email, str):
            raise ValidationError("required")
        validate_email(admin_email)
    except ValidationError:
        errors.append(field_error("admin_email", "an e-mail address is required (the sender)"))

    abonent = data.get("abonent")
    if not isinstance(abonent, dict):
        errors.append(field_error("abonent", "required: an object with id and contacts"))

    if errors:
        raise Invalid(errors)
    event = {
        "event_id": f"manual-{uuid.uuid4().hex}",
        "type": "manual",
        "occurred_at": timezone.now().isoformat(),
        "operator": {"code": code},
        "abonent": abonent,
        "data": {"text": text} if text else {},
        "manual": {"template_id": template_id, "channel": channel, "admin_email": admin_email,
                   "all_templates": bool(all_templates)},
    }
    problems = validate_event(event)
    if problems:
        raise Invalid(schema_errors(problems))
    return event


# -- the message log --------------------------------------------------------------------------
def message_json(m: Any, history: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(m.id), "event_id": m.event_id, "event_type": m.event_type, "operator": m.operator_code,
        "abonent_id": m.abonent_id, "abonent_name": m.abonent_name, "template_id": m.template_id,
        "channel": m.channel, "recipient": m.recipient, "sender": m.sender, "subject": m.subject,
        "body": m.body, "lane": m.lane, "state": m.state, "reason": m.reason, "fault": m.fault,
        "attempts": m.attempts,
        "gateway_message_id": m.gateway_message_id, "details": m.details,
        "created_at": m.created_at.isoformat(), "updated_at": m.updated_at.isoformat(),
        "finished_at": m.finished_at.isoformat() if m.finished_at else None,
    }
    if history:
        out["history"] = [
            {"number": a.number, "state": a.state, "reason": a.reason, "at": a.at.isoformat(),
             "seconds": a.seconds}
            for a in m.history.all()
        ]
    return out


def _int_param(request: HttpRequest, name: str, default: int, lo: int, hi: int,
               errors: list[dict[str, str]]) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(field_error(name, "must be an integer"))
        return default
    if not lo <= value <= hi:
        errors.append(field_error(name, f"must be between {lo} and {hi}"))
    return value


def list_messages(request: HttpRequest) -> HttpResponse:
    from msgd.store.models import Message

    errors: list[dict[str, str]] = []
    known = {"subscriber", "state", "fault", "since", "event_id", "limit", "offset"}
    errors += [field_error(k, "unknown filter") for k in request.GET if k not in known]
    qs = Message.objects.all().order_by("-created_at", "id")
    if subscriber := request.GET.get("subscriber"):
        qs = qs.filter(abonent_id=subscriber)
    if event_id := request.GET.get("event_id"):
        qs = qs.filter(event_id=event_id)
    if state := request.GET.get("state"):
        if state not in STATES:
            errors.append(field_error("state", f"one of {', '.join(STATES)}"))
        qs = qs.filter(state=state)
    if "fault" in request.GET:
        fault = request.GET["fault"]
        if fault not in FAULTS:
            errors.append(field_error("fault", f"one of {', '.join(FAULTS)}"))
        qs = qs.filter(fault=fault)
    if since := request.GET.get("since"):
        when = _parse_since(since)
        if when is None:
            errors.append(field_error("since", "an ISO 8601 date or date-time, e.g. 2024-05-01T00:00:00+03:00"))
        else:
            qs = qs.filter(created_at__gte=when)
    limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE, errors)
    offset = _int_param(request, "offset", 0, 0, 10**9, errors)
    if errors:
        return bad_request(errors)
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


def _parse_since(text: str) -> dt.datetime | None:
    try:
        when = parse_datetime(text)
        if when is None:
            day = parse_date(text)
            if day is None:
                return None
            when = dt.datetime.combine(day, dt.time())
    except ValueError:
        return None
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt.UTC)
    return when


@csrf_exempt
@token_required
def messages(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return list_messages(request)
    if request.method != "POST":
        return method_not_allowed("GET", "POST")
    try:
        event = build_manual_event(read_json(request))
    except Invalid as exc:
        return bad_request(exc.errors)
    return _published([event])


@csrf_exempt
@token_required
def message_detail(request: HttpRequest, message_id: str) -> HttpResponse:
    from msgd.store.models import Message

    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET")
    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return JsonResponse({"error": "not found"}, status=404)
    m = Message.objects.filter(id=key).first()
    if m is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse(message_json(m, history=True), json_dumps_params={"ensure_ascii": False})


# -- health -----------------------------------------------------------------------------------
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def broker_reachable(settings: Settings) -> str:
    """'' when the broker answers (asked for the depth of the router's queues, where events go,
    as `msgd doctor` asks), else the exception's type: /readyz needs no token, so the full text
    goes to the log only."""
    from amqp.exceptions import NotFound

    from msgd import metrics, topology

    try:
        broker = metrics.quick_broker(settings)
        try:
            broker.queue_depths(topology.router_queues(settings.namespace))
        finally:
            broker.close()
    except NotFound as exc:  # RabbitMQ answered; the first publish declares the queues (as msgd setup)
        log.warning("readiness: the broker answers but msgd's queues are not declared yet",
                    error=redact_text(str(exc)))
    except Exception as exc:  # noqa: BLE001
        log.warning("readiness: broker unreachable", error_type=type(exc).__name__,
                    error=redact_text(str(exc)))
        return type(exc).__name__
    return ""


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database and the broker are reachable."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        log.warning("readiness: database unreachable", error_type=type(exc).__name__,
                    error=redact_text(str(exc)))
        checks["database"] = f"unreachable: {type(exc).__name__}"
    problem = broker_reachable(Settings.from_env())
    checks["broker"] = f"unreachable: {problem}" if problem else "ok"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
