"""The message log in the admin: an audit trail (read-only, never deleted here; ``msgd purge``
alone removes old rows), scoped to the user's operators, with resend of failed messages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from msgd.logview import cut, detail_rows, shown_recipient
from msgd.own_words import shown_reason
from msgd.reasons import explain
from msgd.store.models import Attempt, Message
from msgd.web import access
from msgd.web.admin_scope import OperatorScoped


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("number", "state", "explained", "reason_shown", "at", "seconds")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("History")

    @admin.display(description=_("what it means"))
    def explained(self, obj: Attempt) -> str:
        return explain(obj.reason_code, obj.message.event_type) or "-"

    @admin.display(description=_("reason"))
    def reason_shown(self, obj: Attempt) -> str:
        return shown_reason(obj.reason)

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.action(description=_("Send the selected failed messages again"))
def resend_selected(modeladmin: Any, request: Any, queryset: Any) -> Any:
    """The admin action (selected rows, or every row of the filter with "select all"): a page
    that says what would be sent again, then sends it (msgd/web/admin_resend.py)."""
    from msgd.web.admin_resend import confirm_action

    return confirm_action(modeladmin, request, queryset)


@admin.register(Message)
class MessageAdmin(OperatorScoped, admin.ModelAdmin):
    list_display = ("created", "event_type", "operator_code", "abonent_id", "channel", "to", "state", "fault",
                    "short_reason")
    list_display_links = ("created",)
    list_filter = ("state", "fault", "channel", "event_type", "operator_code", "created_at")
    search_fields = ("abonent_id", "abonent_name", "recipient", "event_id", "template__name", "reason")
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = [resend_selected]
    operator_lookup = "operator_code"
    list_per_page = 50
    fieldsets = (
        (None, {"fields": ("created_at", "finished_at", "state", "fault", "explained", "reason_code", "reason_shown",
                           "attempts", "resend_links")}),
        (_("Message"), {"fields": ("event_link", "event_type_in_full", "operator_code", "abonent_id", "abonent_name",
                                   "template", "channel", "to_in_full", "sender", "subject", "body")}),
        (_("Delivery details"), {"fields": ("details_table", "lane")}),
        (_("HTML part"), {"fields": ("html",), "classes": ("collapse",)}),
    )
    readonly_fields = ("created_at", "finished_at", "state", "fault", "explained", "reason_code", "reason_shown", "attempts",
                       "resend_links", "event_link",
                       "event_type_in_full", "operator_code", "abonent_id", "abonent_name", "template", "channel",
                       "to_in_full", "sender", "subject", "body", "details_table", "lane", "html")

    class Media:
        css = {"all": ("msgd/log.css",)}

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).select_related("template")

    def get_actions(self, request: Any) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # an audit trail: nothing deletes a row here
        if not request.user.has_perm(access.RESEND):
            actions.pop("resend_selected", None)
        return actions

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: Message) -> Any:
        from django.utils.formats import date_format
        from django.utils.timezone import localtime

        return date_format(localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("recipient"), ordering="recipient")
    def to(self, obj: Message) -> Any:
        shown = shown_recipient(obj.channel, obj.recipient)
        return format_html('<span title="{}">{}</span>', shown, cut(shown, 28)) if shown else "-"

    @admin.display(description=_("recipient"))
    def to_in_full(self, obj: Message) -> str:
        return shown_recipient(obj.channel, obj.recipient) or "-"

    @admin.display(description=_("reason"))
    def short_reason(self, obj: Message) -> Any:
        """The code's explanation in the reader's language, the far side's words beside it (cut;
        whole in the title); the words alone for a row without a code."""
        text, reason = explain(obj.reason_code, obj.event_type), shown_reason(obj.reason)
        if text:
            words = format_html(' <span class="msgd-reason-words">({})</span>', cut(reason, 50)) if reason else ""
            return format_html('<span class="msgd-reason-text" title="{}">{}</span>{}', reason or text,
                               cut(text, 70), words)
        return format_html('<span title="{}">{}</span>', reason, cut(reason, 80)) if reason else ""

    @admin.display(description=_("what it means"))
    def explained(self, obj: Message) -> str:
        return explain(obj.reason_code, obj.event_type) or "-"

    @admin.display(description=_("reason"))
    def reason_shown(self, obj: Message) -> str:
        return shown_reason(obj.reason) or "-"

    @admin.display(description=_("event type"))
    def event_type_in_full(self, obj: Message) -> str:
        """The event type under its full name (the log's column says just "event")."""
        return obj.event_type or "-"

    @admin.display(description=_("event id"))
    def event_link(self, obj: Message) -> Any:
        return format_html('<a href="{}">{}</a>', reverse("msgd-event-status", args=[obj.event_id]), obj.event_id)

    @admin.display(description=_("details"))
    def details_table(self, obj: Message) -> Any:
        rows = detail_rows(obj.details or {}, obj.gateway_message_id)
        if not rows:
            return "-"
        body = format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", rows)
        return format_html('<table class="msgd-details" id="message-details">{}</table>', body)

    @admin.display(description=_("sent again"))
    def resend_links(self, obj: Message) -> Any:
        parts = []
        if obj.resend_of_id:
            url = reverse("admin:msgd_message_change", args=[obj.resend_of_id])
            parts.append(format_html('{} <a href="{}" id="resend-of">{}</a>', _("This resends message"), url,
                                     obj.resend_of_id))
        for r in obj.resends.order_by("created_at"):
            url = reverse("admin:msgd_message_change", args=[r.pk])
            parts.append(format_html('{} <a href="{}" class="resent-as">{}</a> ({})', _("Sent again as"), url,
                                     r.pk, r.get_state_display()))
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts)) if parts else "-"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra = {**(extra_context or {}), "may_resend": request.user.has_perm(access.RESEND)}
        return super().change_view(request, object_id, form_url, extra)
