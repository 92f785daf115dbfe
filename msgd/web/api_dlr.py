"""``POST``/``GET /api/v1/dlr/<slot id>/<secret>``: an SMS gateway's delivery reports (DLR).

The URL is the only credential: ``<slot id>`` is the channel settings slot (ChannelSettings.id)
and ``<secret>`` its delivery-report secret (msgd/web/models.py ``DlrKey``: only a hash is
stored; ``msgd dlr url SLOT`` and the admin's action make a new one, shown once). Anything else
gets 404, the same answer for an unknown slot and a wrong secret.

The callback is read by the slot's ``reply_format`` (services/senders/sms/dlr.py), each final
report is published to the recorder with publisher confirms (schemas/dlr.v1.json) — this process
never writes the message log — and the gateway gets the answer it expects (Jasmin: ``ACK/Jasmin``).
A broker that does not confirm gets 503, so the gateway calls again and nothing is lost; a
request that is not that gateway's report gets 400 with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from msgd.redact import redact_text
from msgd.settings import Settings
from msgd.web.api_http import allow, bad_request, field_error, too_large

log = structlog.get_logger("msgd.web.dlr")

_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
_MAX_SLOT = 2**31 - 1


def _not_found() -> JsonResponse:
    return JsonResponse({"error": "not found"}, status=404)


def _fields(request: HttpRequest) -> dict[str, str]:
    """Query and form fields, the last value of each (form fields win)."""
    fields = {k: v[-1] for k, v in request.GET.lists() if v}
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        fields.update({k: v[-1] for k, v in request.POST.lists() if v})
    return fields


@csrf_exempt
@allow("GET", "POST")
def receive(request: HttpRequest, settings_id: int, secret: str) -> HttpResponse:
    """Take one callback of the slot's gateway (see the module's docstring)."""
    from msgd import metrics
    from msgd.publishing import publish
    from msgd.status import delivery_report
    from msgd.store.models import ChannelSettings
    from msgd.web.models import DlrKey
    from services.senders.sms.dlr import UnreadableCallback, read_callback
    from services.senders.sms.presets import effective_settings

    if not 0 < settings_id <= _MAX_SLOT or not _SECRET.fullmatch(secret) or not DlrKey.check(settings_id, secret):
        return _not_found()
    slot = ChannelSettings.objects.filter(id=settings_id, channel="sms").select_related("operator").first()
    if slot is None:
        return _not_found()
    try:
        body = request.body
        fields = _fields(request)
    except RequestDataTooBig:
        return too_large(Settings.from_env().max_body_bytes)
    try:
        fmt = str(effective_settings(dict(slot.params or {})).get("reply_format") or "generic")
    except ValueError:
        fmt = "generic"
    try:
        reports, ack = read_callback(fmt, fields, body)
    except UnreadableCallback as exc:
        return bad_request([field_error("(body)", f"not a {fmt} delivery report: {exc}")])
    gateway = metrics.gateway_host(dict(slot.params or {}))
    items: list[Any] = [
        delivery_report(r.state, settings_id=slot.id, operator_code=slot.operator.code, gateway=gateway,
                        gateway_message_id=r.gateway_message_id, reason=r.reason, fault=r.fault, error=r.error,
                        at=r.at, via="callback")
        for r in reports if r.state is not None
    ]
    if items:
        try:
            publish(Settings.from_env(), items, declare_once=True)
        except Exception as exc:  # noqa: BLE001 - not confirmed: the gateway calls again
            log.error("delivery report not published: the broker did not accept it", slot=slot.id,
                      error_type=type(exc).__name__, error=redact_text(str(exc)))
            return JsonResponse({"error": f"the broker did not accept the report: {type(exc).__name__}"},
                                status=503)
    log.info("delivery reports received", slot=slot.id, reports=len(reports), final=len(items), format=fmt)
    return HttpResponse(ack.body, status=ack.status, content_type="text/plain; charset=utf-8")
