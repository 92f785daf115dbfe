"""Model admins: operators and channel settings (secrets write-only). Templates, the message
log and access are in admin_templates.py, admin_log.py and admin_access.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from msgd.config import settle
from msgd.config.masking import mask
from msgd.redact import MASK, is_secret_key
from msgd.store.models import ChannelSettings, Operator
from msgd.web.access import operator_codes
from msgd.web.admin_scope import OperatorScoped
from services.senders.email.address import sender_problem
from services.senders.model import SettingsInvalid
from services.senders.registry import channel_specs, normalize_channel


def masked(secrets: dict[str, Any]) -> str:
    return ", ".join(f"{k}={MASK}" for k in sorted(secrets)) or "-"


def secret_field() -> forms.CharField:
    """A write-only secret: never shown; left empty it keeps the stored value."""
    return forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                           help_text="empty = keep the stored value")


class ChannelSettingsForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them; an empty field keeps the stored value.

    Saving runs the channel's settings model (msgd.config.settle, as ``msgd config load`` does):
    unknown keys, values of the wrong kind and missing required settings are refused with the
    setting named, so whatever the admin saves dumps and loads back."""

    SECRET_FIELDS = ("login", "password", "api_key", "token", "md5_key", "vapid_private_key")

    preset = forms.ChoiceField(required=False, help_text="SMS: fills url, request type and params")
    login = secret_field()
    password = secret_field()
    api_key = secret_field()
    token = secret_field()
    md5_key = secret_field()
    vapid_private_key = secret_field()
    clear_secrets = forms.BooleanField(required=False, help_text="remove every stored secret")

    class Meta:
        model = ChannelSettings
        fields = ["operator", "channel", "position", "enabled", "outbox", "params"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        presets = {name for spec in channel_specs().values() for name in spec.presets}
        self.fields["preset"].choices = [("", "---"), *((name, name) for name in sorted(presets))]
        self.settled: tuple[dict[str, Any], dict[str, Any]] | None = None
        if self.instance.pk:  # secrets inside params (psw=... in a parameter string) are shown masked
            self.initial["params"] = mask(self.instance.params or {})

    def clean_params(self) -> Any:
        params = self.cleaned_data.get("params") or {}
        if not isinstance(params, dict):
            raise forms.ValidationError("a JSON object")
        bad = [k for k in params if k in self.SECRET_FIELDS or is_secret_key(k)]
        if bad:
            raise forms.ValidationError(f"secrets go in their own fields, not in params: {', '.join(bad)}")
        return params

    def clean(self) -> Any:
        data = super().clean()
        channel = normalize_channel(str(data.get("channel") or ""))
        spec = channel_specs().get(channel or "")
        if spec is None:
            self.add_error("channel", f"unknown channel (known: {', '.join(channel_specs())})")
            return data
        data["channel"] = spec.name
        preset = data.get("preset")
        if preset and preset not in spec.presets:
            self.add_error("preset", f"{preset!r} is not a preset of the {spec.title} channel")
            return data
        if "params" in self.errors:
            return data
        old_params = dict(self.instance.params or {}) if self.instance.pk else {}
        old_secrets = dict(self.instance.secrets or {}) if self.instance.pk else {}
        values: dict[str, Any] = dict(spec.presets[preset].settings) if preset else {}
        values.update({k: v for k, v in (data.get("params") or {}).items() if k != "preset" or not preset})
        if preset and "preset" in spec.settings.model_fields:
            values["preset"] = preset
        kept = {} if data.get("clear_secrets") else old_secrets
        values.update({k: v for k, v in kept.items() if k in spec.settings.secret_fields() or k == "login"})
        values.update({name: data[name] for name in self.SECRET_FIELDS if data.get(name)})
        try:
            self.settled = settle(spec, values, outbox=bool(data.get("outbox")), stored=(old_params, old_secrets))
        except SettingsInvalid as exc:
            for problem in exc.problems:
                key = str(problem.loc[0]) if problem.loc else ""
                field = key if key in self.SECRET_FIELDS and key in self.fields else "params"
                self.add_error(field, str(problem))
        return data

    def save(self, commit: bool = True) -> Any:
        obj = super().save(commit=False)
        assert self.settled is not None  # is_valid() settled the values
        obj.params, obj.secrets = self.settled
        if commit:
            obj.save()
        return obj


@admin.register(ChannelSettings)
class ChannelSettingsAdmin(OperatorScoped, admin.ModelAdmin):
    form = ChannelSettingsForm
    fields = ("operator", "channel", "position", "enabled", "outbox", "preset", "params",
              *ChannelSettingsForm.SECRET_FIELDS, "clear_secrets")
    list_display = ("operator", "channel", "position", "enabled", "outbox", "stored_secrets")
    list_filter = ("channel", "enabled", "outbox")

    @admin.display(description="secrets")
    def stored_secrets(self, obj: ChannelSettings) -> str:
        return masked(obj.secrets or {})

    def render_change_form(self, request: Any, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        context["sms_presets"] = {name: dict(preset.settings) for spec in channel_specs().values()
                                  for name, preset in spec.presets.items()}
        return super().render_change_form(request, context, *args, **kwargs)


class ChannelInline(admin.TabularInline):
    model = ChannelSettings
    form = ChannelSettingsForm
    fields = ("channel", "position", "enabled", "outbox", "params")
    extra = 0
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

