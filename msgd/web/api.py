"""The HTTP API (JSON, ``Authorization: Token <key>``); described by docs/openapi.yaml.

Events are validated with the same schema as AMQP and published with
publisher confirms through the configured broker before 202 is answered:
a 202 means the broker has the event.  Invalid requests get 400 with field
errors and nothing is published.  The HTTP plumbing (tokens, methods, decoding
bodies, JSON errors) is in ``msgd.web.api_http``; the message log in
``msgd.web.api_log``.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import structlog
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from msgd import storable
from msgd.redact import redact_text
from msgd.settings import Settings
from msgd.store.cache import ConfigCache
from msgd.web import api_log
from msgd.web.api_http import (
    Forbidden,
    Invalid,
    allow,
    field_error,
    json_errors,
    read_json,
    scope_required,
    token_operators,
    token_required,
)

log = structlog.get_logger("msgd.web")


def schema_errors(problems: list[str], prefix: str = "") -> list[dict[str, str]]:
    """validate_event's "place: message" strings as field errors."""
    out = []
    for p in problems:
        place, sep, message = p.partition(": ")
        if not sep or " " in place:
            place, message = "", p
        out.append(field_error(f"{prefix}{place}" if place else prefix.rstrip(".") or "(body)", message))
    return out


_settings: dict[tuple[tuple[str, str], ...], Settings] = {}


def web_settings() -> Settings:
    """The settings from the environment, read once per distinct ``MSGD_*`` environment (reading
    them asks the system for its host name)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MSGD_")))
    found = _settings.get(env)
    if found is None:
        found = _settings[env] = Settings.from_env()
    return found


_config: list[ConfigCache] = []


def web_config() -> ConfigCache:
    """This process's configuration snapshot: an operator added elsewhere (``msgd config load``,
    another worker's admin) is known within ``MSGD_CONFIG_REFRESH_SECONDS``, one added through
    this process at once (msgd/store/cache.py)."""
    if not _config:
        _config.append(ConfigCache(web_settings().config_refresh_seconds))
    return _config[0]


def try_publish(events: list[dict[str, Any]]) -> str:
    """Publish with confirms through the configured broker: '' when the broker has the events,
    else the problem to show (the exception's type only; the full text is logged, redacted).
    Used by the API and the admin's forms."""
    from msgd.publishing import publish_events

    try:
        publish_events(web_settings(), events, reuse=True)
    except Exception as exc:  # noqa: BLE001 - the broker is down or refused: nothing was accepted
        return log_publish_failure([e.get("event_id") for e in events], exc)
    return ""


def log_publish_failure(event_ids: list[Any], exc: Exception) -> str:
    """Log a publish the broker did not accept (full text, secrets masked); returns what to show
    (the exception's type only)."""
    log.error("publish failed: the broker did not accept the events", event_ids=event_ids,
              error_type=type(exc).__name__, error=redact_text(str(exc)))
    return f"the broker did not accept the event: {type(exc).__name__}"


def _published(events: list[dict[str, Any]]) -> JsonResponse:
    problem = try_publish(events)
    if problem:
        return JsonResponse({"error": problem}, status=503)
    if len(events) == 1:
        return JsonResponse({"event_id": events[0]["event_id"], "status": "accepted"}, status=202)
    return JsonResponse({"event_ids": [e["event_id"] for e in events], "status": "accepted"}, status=202)


def code_of(event: dict[str, Any]) -> str | None:
    """The event's operator code, None when it is malformed (that has its schema error)."""
    op = event.get("operator")
    code = op.get("code") if isinstance(op, dict) else None
    ok = isinstance(code, str) and 1 <= len(code) <= 64 and storable.problem(code) is None
    return code if ok else None


def check_operators(request: HttpRequest, items: list[dict[str, Any]], listed: bool) -> None:
    """Forbidden (403) when the token is limited to some operators and an event names another."""
    allowed = token_operators(request)
    if allowed is None:
        return
    outside = [field_error(f"[{i}].operator.code" if listed else "operator.code",
                           f"this token may publish only for {', '.join(sorted(allowed))}")
               for i, e in enumerate(items) if code_of(e) not in allowed]
    if outside:
        raise Forbidden("the token is limited to other operators", outside)


def unknown_operators(items: list[dict[str, Any]], listed: bool) -> list[dict[str, str]]:
    """Field errors for events whose operator is not configured: the router would park them,
    so the API says so at once (billing can fix it) instead of answering 202."""
    config = web_config()
    known = {c for c in map(code_of, items) if c is not None and config.operator(c) is not None}
    return [
        field_error(f"[{i}].operator.code" if listed else "operator.code",
                    f"operator {code!r} is not configured in msgd (add it: msgd config load, or the admin)")
        for i, code in enumerate(map(code_of, items)) if code is not None and code not in known
    ]


@csrf_exempt
@token_required
@scope_required("ingest")
@allow("POST")
@json_errors
def events(request: HttpRequest) -> HttpResponse:
    """POST one event (or a list, all or nothing) in the AMQP contract's schema."""
    from msgd.schemas import validate_event

    body = read_json(request)
    listed = isinstance(body, list)
    items = body if listed else [body]
    if not items or not all(isinstance(e, dict) for e in items):
        raise Invalid([field_error("(body)", "expected an event object or a non-empty list of them")])
    errors: list[dict[str, str]] = []
    for i, e in enumerate(items):
        errors += schema_errors(validate_event(e), f"[{i}]." if listed else "")
    if errors:
        raise Invalid(errors)
    check_operators(request, items, listed)
    errors += unknown_operators(items, listed)
    if errors:
        raise Invalid(errors)
    return _published(items)


# -- manual send ------------------------------------------------------------------------------
MAX_ID = 2**63 - 1  # the ids are 64-bit: a larger one cannot even be looked up
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
    from msgd.schemas import json_path, validate_event
    from msgd.storable import unstorable_paths
    from msgd.store.models import Operator, Template
    from services.senders.email.address import sender_problem
    from services.senders.registry import known_channels, normalize_channel

    if not isinstance(data, dict):
        raise Invalid([field_error("(body)", "expected a JSON object")])
    if unstorable := schema_errors([f"{json_path(p) or '(body)'}: {why}" for p, why in unstorable_paths(data)]):
        raise Invalid(unstorable)  # before any lookup: PostgreSQL refuses NUL even in a query
    errors: list[dict[str, str]] = []
    known = {"operator", "abonent", "template_id", "all_templates", "channel", "text", "admin_email"}
    errors += [field_error(k, "unknown field") for k in data if k not in known]

    code = data.get("operator")
    operator = Operator.objects.filter(code=code).first() if isinstance(code, str) else None
    if operator is None:
        errors.append(field_error("operator", "required" if not code else f"no operator with code {code!r}"
                                  if isinstance(code, str) else "must be the operator's code as text, e.g. \"best\""))

    template_id = data.get("template_id")
    tpl = None
    all_templates = data.get("all_templates", False)
    if not isinstance(all_templates, bool):
        errors.append(field_error("all_templates", "must be true or false"))
    if template_id is not None:
        if isinstance(template_id, bool) or not isinstance(template_id, int):
            errors.append(field_error("template_id", "must be an integer or null"))
        elif not 1 <= template_id <= MAX_ID:
            errors.append(field_error("template_id", f"no template {template_id}"))
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
    if not isinstance(admin_email, str) or not admin_email.strip() or sender_problem(admin_email):
        # the e-mail sender's own check (international addresses too), not Django's ASCII rule
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


@csrf_exempt
@token_required
@scope_required("read", methods=("GET", "HEAD"))
@scope_required("ingest", methods=("POST",))
@allow("GET", "POST")
@json_errors
def messages(request: HttpRequest) -> HttpResponse:
    """GET: the message log (msgd.web.api_log); POST: a manual send."""
    if request.method in ("GET", "HEAD"):
        return api_log.list_messages(request)
    data = read_json(request)
    allowed = token_operators(request)
    if allowed is not None and not (isinstance(data, dict) and data.get("operator") in allowed):
        raise Forbidden("the token is limited to other operators",
                        [field_error("operator", f"this token may send only for {', '.join(sorted(allowed))}")])
    return _published([build_manual_event(data)])


@csrf_exempt
@token_required
@scope_required("read", methods=("GET", "HEAD"))
@allow("GET")
def message_detail(request: HttpRequest, message_id: str) -> HttpResponse:
    return api_log.message_detail(request, message_id)


# -- health -----------------------------------------------------------------------------------
@csrf_exempt  # read-only: any other method gets 405, not a CSRF 403 page
@allow("GET")
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


@csrf_exempt  # read-only: any other method gets 405, not a CSRF 403 page
@allow("GET")
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
