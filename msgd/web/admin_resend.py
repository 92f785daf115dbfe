"""Resend in the admin: the message log's action (selected rows, or every row of a filter
with "select all") and the "Send again" button of one message, each through a page that
says what will be sent again and what is skipped (msgd/resend.py does the work)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _

from msgd.settings import Settings
from msgd.web import access

MAX_RESEND = 10_000  # rows one request sends again (msgd resend --limit for more)


def _context(request: HttpRequest, plan: Any, **extra: Any) -> dict[str, Any]:
    reasons = Counter(why for _m, why in plan.skipped)
    return {**admin.site.each_context(request), "title": _("Send messages again"), "plan": plan,
            "reasons": sorted(reasons.items(), key=lambda kv: -kv[1]), **extra}


def _do(request: HttpRequest, rows: list[Any], recipient: str | None) -> list[str] | None:
    """Resend and tell the user; None when it could not be done (the message says why)."""
    from msgd.resend import ResendError, resend

    try:
        chosen, ids = resend(Settings.from_env(), rows, by=request.user.get_username(), recipient=recipient)
    except ResendError as exc:
        messages.error(request, str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - the broker did not confirm: nothing was recorded
        from msgd.problem_words import shown_problem
        from msgd.web.api import log_publish_failure

        messages.error(request, shown_problem(log_publish_failure([str(m.event_id) for m in rows[:20]], exc)))
        return None
    text = _("%(sent)d message(s) sent again.") % {"sent": len(ids)}
    if chosen.skipped:
        text += " " + _("%(skipped)d skipped: %(why)s") % {
            "skipped": len(chosen.skipped), "why": "; ".join(sorted({why for _m, why in chosen.skipped}))}
    (messages.success if ids else messages.warning)(request, text)
    return ids


def confirm_action(modeladmin: Any, request: HttpRequest, queryset: Any) -> HttpResponse | None:
    """The message log's action: first a page saying what would be sent again, then the resend."""
    from msgd.resend import plan

    if not request.user.has_perm(access.RESEND):
        raise PermissionDenied
    rows = list(queryset.select_related("resend_of").order_by("created_at")[:MAX_RESEND])
    if request.POST.get("confirm") == "yes":
        recipient = (request.POST.get("recipient") or "").strip() or None
        _do(request, rows, recipient)
        return None  # back to the message log, filters kept
    chosen = plan(rows)
    return render(request, "admin/msgd_tools/resend.html", _context(
        request, chosen, action=True, selected=request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        select_across=request.POST.get("select_across", "0"), index=request.POST.get("index", "0"),
        capped=len(rows) == MAX_RESEND, one=len(chosen.ready) == 1 and chosen.ready[0].channel != "push"))


@access.require(access.RESEND, "msgd.view_message")
def resend_one(request: HttpRequest, message_id: str) -> HttpResponse:
    """"Send again" for one message, with an optional corrected contact."""
    from msgd.resend import plan
    from msgd.store.models import Message

    qs = access.scope_messages(Message.objects.select_related("resend_of"), access.operator_codes(request.user))
    m = get_object_or_404(qs, pk=message_id)
    if request.method == "POST":
        recipient = (request.POST.get("recipient") or "").strip() or None
        ids = _do(request, [m], recipient)
        target = ids[0] if ids else m.pk
        if ids or recipient is None:
            return HttpResponseRedirect(reverse("admin:msgd_message_change", args=[target]))
    chosen = plan([m])
    return render(request, "admin/msgd_tools/resend.html", _context(
        request, chosen, action=False, message=m, one=bool(chosen.ready) and m.channel != "push",
        recipient=request.POST.get("recipient", "")))
