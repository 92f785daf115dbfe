"""Model admins: operators with their channel slots listed. Channel settings are in
admin_channels.py, templates, the message log and access in admin_templates.py, admin_log.py
and admin_access.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from msgd.store.models import ChannelSettings, Operator
from msgd.web.access import operator_codes
from msgd.web.admin_scope import OperatorScoped
from services.senders.email.address import sender_problem


class ChannelInline(admin.TabularInline):
    """The operator's channel slots, listed: each is edited in its channel's own form (the
    change link; new ones through Channel settings > Add, which asks the channel first)."""

    model = ChannelSettings
    fields = ("channel", "position", "enabled", "outbox")
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True


class OperatorForm(forms.ModelForm):
    """The sender e-mail is checked as the e-mail sender will check it (email-validator)."""

    class Meta:
        model = Operator
        fields = "__all__"

    def clean_email(self) -> str:
        value = str(self.cleaned_data.get("email") or "").strip()
        problem = sender_problem(value) if value else None
        if problem:
            raise forms.ValidationError(problem)
        return value


@admin.register(Operator)
class OperatorAdmin(OperatorScoped, admin.ModelAdmin):
    form = OperatorForm
    list_display = ("code", "name", "email", "timezone", "attempts", "warn_days", "feedback_messages")
    search_fields = ("code", "name")
    inlines = [ChannelInline]
    operator_lookup = "code"

    def has_add_permission(self, request: Any) -> bool:  # a new operator is outside any scope
        return super().has_add_permission(request) and operator_codes(request.user) is None


admin.site.site_header = "msgd administration"
admin.site.site_title = "msgd"
admin.site.index_title = "Operators, templates, the message log"
admin.site.site_url = None  # no public site: the "View site" link went to a 404

