"""Model admins: operators, channel settings (secrets write-only), templates, the message log."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages

from msgd.config import settle
from msgd.config.masking import mask
from msgd.redact import MASK, is_secret_key
from msgd.store.models import Attempt, ChannelSettings, Message, Operator, Template
from msgd.web.models import ApiToken
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
class ChannelSettingsAdmin(admin.ModelAdmin):
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
class OperatorAdmin(admin.ModelAdmin):
    form = OperatorForm
    list_display = ("code", "name", "email", "timezone", "attempts", "warn_days")
    search_fields = ("code", "name")
    inlines = [ChannelInline]


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "event_type", "channel", "owner", "enabled", "use_django")
    list_filter = ("event_type", "channel", "enabled", "owner")
    search_fields = ("name", "body", "subject")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return ("owner",) if obj is not None else ()

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        """Save, then warn about variables the sample event of its type lacks (not an error:
        billing may send them; a Django template would render them empty)."""
        super().save_model(request, obj, form, change)
        from services.renderer.preview import sample_warnings

        for warning in sample_warnings(obj):
            messages.warning(request, f"{obj}: {warning}")


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("number", "state", "reason", "at", "seconds")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "operator_code", "abonent_id", "channel", "recipient",
                    "state", "fault", "short_reason")
    list_filter = ("state", "fault", "channel", "event_type", "operator_code", "created_at")
    search_fields = ("abonent_id", "abonent_name", "recipient", "event_id", "template__name", "reason")
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    readonly_fields = [f.name for f in Message._meta.fields if f.name != "details"] + ["details_json"]
    exclude = ("details",)

    @admin.display(description="reason")
    def short_reason(self, obj: Message) -> str:
        return obj.reason[:100]

    @admin.display(description="details")
    def details_json(self, obj: Message) -> str:
        return json.dumps(obj.details, ensure_ascii=False, indent=1)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request: Any) -> bool:
        return False  # `msgd token create NAME` prints the key once


admin.site.site_header = "msgd administration"
admin.site.site_title = "msgd"
admin.site.index_title = "Operators, templates, the message log"
