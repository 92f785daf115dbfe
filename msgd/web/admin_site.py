"""Model admins: operators with their channel slots listed. Channel settings are in
admin_channels.py, templates, the message log and access in admin_templates.py, admin_log.py
and admin_access.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from msgd.config.entries import ATTEMPTS_MAX, OPERATOR_CODE_RE, WARN_DAYS_MAX, known_zone
from msgd.problem_words import shown_problem
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
    """An operator is saved only as ``msgd config load`` would load it (msgd/config/entries.py):
    the code events can name, a time zone this machine knows (a zone it does not know stopped
    every stage), quiet hours with both ends, attempts and warning days in the file's bounds; the
    sender e-mail is checked as the e-mail sender will check it (email-validator)."""

    class Meta:
        model = Operator
        fields = "__all__"
        error_messages = {"code": {"unique": _lazy("An operator with this code already exists.")}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bounds = {"attempts": (1, ATTEMPTS_MAX), "warn_days": (0, WARN_DAYS_MAX)}
        for name, (low, high) in bounds.items():
            field = self.fields.get(name)
            if isinstance(field, forms.IntegerField):
                field.min_value, field.max_value = low, high
                field.validators = [v for v in field.validators
                                    if not isinstance(v, MinValueValidator | MaxValueValidator)]
                field.validators += [MinValueValidator(low), MaxValueValidator(high)]
                field.widget.attrs.update(min=low, max=high)

    def clean_code(self) -> str:
        value = str(self.cleaned_data.get("code") or "").strip()
        if value and not OPERATOR_CODE_RE.match(value):
            raise forms.ValidationError(_("Latin letters, digits, “_”, “.” and “-” only, no spaces, starting"
                                          " with a letter or a digit (as billing's events name the operator)."))
        return value

    def clean_timezone(self) -> str:
        value = str(self.cleaned_data.get("timezone") or "").strip()
        if value and not known_zone(value):
            raise forms.ValidationError(_("Unknown time zone “%(zone)s”: write a name such as Europe/Moscow,"
                                          " Asia/Yekaterinburg or UTC.") % {"zone": value})
        return value

    def clean_email(self) -> str:
        value = str(self.cleaned_data.get("email") or "").strip()
        problem = sender_problem(value) if value else None
        if problem:
            raise forms.ValidationError(shown_problem(problem))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if "quiet_start" in data and "quiet_end" in data:
            if (start is None) != (end is None):
                missing = "quiet_end" if end is None else "quiet_start"
                self.add_error(missing, _("Give both the start and the end of the quiet hours, or neither."))
            elif start is not None and start == end:
                self.add_error("quiet_end", _("The quiet hours end when they start: leave both empty for none."))
        return data


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

