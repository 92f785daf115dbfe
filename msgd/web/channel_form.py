"""The admin's channel settings form, generated from the channel's settings model.

:func:`channel_form` builds one form class per channel: one labelled field per setting of the
channel's model (services/senders/<channel>/settings.py, through ``ChannelSpec.fields``), and no
other channel's settings. Labels are the model fields' ``title`` (English msgids; the Russian
catalog msgd/locale/ru/LC_MESSAGES/django.po holds the original manual's names, "Адрес СМС
шлюза", "Post параметры"...), help texts their ``description`` (English msgids as well, their
Russian texts in the same catalog; tests/test_admin_channel_form.py checks every one has one).

* Django checks nothing but the form's shape: every value goes to ``msgd.config.settle``, the
  function ``msgd config load`` uses, and each refusal is shown at the field it names (``url: is
  required``, ``strip_plus: must be true or false``), in the reader's language (msgd/problem_words.py). What the admin saves dumps and loads back.
* An empty field means "not given": the model's default or the preset's value applies (shown as
  the field's placeholder).
* Secrets are write-only: the field says whether a value is stored, an empty field keeps it, its
  "clear" box removes it. Secrets written inside a text (``psw=...`` in the parameter string)
  are shown masked and a masked text saved back keeps the stored value.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django import forms
from django.utils.translation import gettext_lazy as _

from msgd.config import settle
from msgd.config.masking import mask
from msgd.problem_words import shown_problem
from msgd.store.models import ChannelSettings
from services.senders.model import SettingsInvalid
from services.senders.spec import ChannelSpec, SettingField

SETTING = "setting_"  # form field name = SETTING + the setting's name (no clash with the row's columns)
CLEAR = "clear_"  # the "clear the stored secret" box of SETTING + name
SLOT_FIELDS = ("operator", "channel", "position", "enabled", "outbox")


class ModelJudgedChoiceField(forms.ChoiceField):
    """A select whose value the settings model judges, so a refusal reads as ``msgd config load``
    words it (a value sent by hand, such as strip_plus "да", is refused by the model, not here)."""

    def validate(self, value: Any) -> None:
        forms.Field.validate(self, value)


def _shown(value: Any) -> str:
    """A setting's value as a form shows it (placeholder, initial value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _setting_field(spec: ChannelSpec, f: SettingField) -> forms.Field:
    label, help_text = _(f.label), (_(f.help) if f.help else "")
    if f.secret:
        return forms.CharField(label=label, help_text=help_text, required=False, strip=False,
                               widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    if f.kind == "bool" and f.default is not None:
        return forms.BooleanField(label=label, help_text=help_text, required=False, initial=f.default)
    if f.kind in ("bool", "choice"):
        titles = {name: f"{name} ({p.title})" for name, p in spec.presets.items()} if f.name == "preset" else {}
        values = ("true", "false") if f.kind == "bool" else f.choices
        shown = {"true": _("yes"), "false": _("no")}
        choices = [("", "---"), *((v, titles.get(v) or shown.get(v) or v) for v in values)]
        return ModelJudgedChoiceField(label=label, help_text=help_text, required=False, choices=choices)
    if f.kind == "json":
        return forms.CharField(label=label, help_text=help_text, required=False,
                               widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))
    size = {"int": 10, "float": 10}.get(f.kind, 60)
    return forms.CharField(label=label, help_text=help_text, required=f.required,
                           widget=forms.TextInput(attrs={"size": size}))


class ChannelSettingsForm(forms.ModelForm):
    """Base of every generated form (:func:`channel_form`): the slot's columns, then the
    channel's settings. ``spec`` is the channel the form is for."""

    spec: ClassVar[ChannelSpec]

    class Meta:
        model = ChannelSettings
        fields = list(SLOT_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settled: tuple[dict[str, Any], dict[str, Any]] | None = None
        spec = self.spec
        if "channel" in self.fields:
            self.fields["channel"] = forms.ChoiceField(choices=[(spec.name, spec.title)], initial=spec.name,
                                                       label=_("Channel"))
        params = dict(self.instance.params or {}) if self.instance.pk else {}
        secrets = dict(self.instance.secrets or {}) if self.instance.pk else {}
        shown = mask(params)  # secrets written inside texts (psw=...) are never sent to the page
        preset = spec.presets.get(str(params.get("preset") or ""))
        for f in spec.fields():
            field = self.fields.get(SETTING + f.name)
            if field is None:
                continue
            if f.secret:
                stored = f.name in secrets
                field.help_text = (_("set: leave empty to keep it") if stored else _("not set")) + (
                    f" — {field.help_text}" if field.help_text else "")
                field.widget.attrs["data-stored"] = "set" if stored else "not set"
                if not stored and CLEAR + f.name in self.fields:
                    self.fields[CLEAR + f.name].disabled = True  # nothing to clear
                continue
            if f.name in shown:
                self.initial[SETTING + f.name] = (shown[f.name] if isinstance(field, forms.BooleanField)
                                                  else _shown(shown[f.name]))
            fallback = preset.settings.get(f.name) if preset else None
            fallback = f.default if fallback is None else fallback
            if fallback is not None and isinstance(field.widget, forms.TextInput | forms.Textarea):
                field.widget.attrs["placeholder"] = _shown(fallback)
            field.widget.attrs["data-default"] = _shown(f.default)

    def setting_values(self, data: dict[str, Any], old_params: dict[str, Any],
                       old_secrets: dict[str, Any]) -> dict[str, Any]:
        """What the person gave, as ``msgd config load`` reads a channel's mapping: empty fields
        left out, a stored secret kept unless cleared or replaced, a JSON text kept a mapping
        where the stored value was one."""
        values: dict[str, Any] = {}
        for f in self.spec.fields():
            name = SETTING + f.name
            if name not in self.fields:
                continue
            value = data.get(name)
            if f.secret:
                if value:
                    values[f.name] = value
                elif f.name in old_secrets and not data.get(CLEAR + f.name):
                    values[f.name] = old_secrets[f.name]
                continue
            if isinstance(value, bool):  # a checkbox: the default is left out unless it was stored
                if value != f.default or f.name in old_params:
                    values[f.name] = value
                continue
            if value is None or not str(value).strip():
                continue
            if f.kind == "json" and isinstance(old_params.get(f.name), dict):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = None
                value = parsed if isinstance(parsed, dict) else value
            values[f.name] = value
        return values

    def clean(self) -> Any:
        data = super().clean()
        data["channel"] = self.spec.name
        old_params = dict(self.instance.params or {}) if self.instance.pk else {}
        old_secrets = dict(self.instance.secrets or {}) if self.instance.pk else {}
        values = self.setting_values(data, old_params, old_secrets)
        try:
            self.settled = settle(self.spec, values, outbox=bool(data.get("outbox")),
                                  stored=(old_params, old_secrets))
        except SettingsInvalid as exc:
            for problem in exc.problems:
                key = str(problem.loc[0]) if problem.loc else ""
                field = SETTING + key if SETTING + key in self.fields else None
                self.add_error(field, shown_problem(str(problem)))  # the reader's language
        return data

    def save(self, commit: bool = True) -> Any:
        obj = super().save(commit=False)
        assert self.settled is not None  # is_valid() settled the values
        obj.channel = self.spec.name
        obj.params, obj.secrets = self.settled
        if commit:
            obj.save()
        return obj


def channel_form(spec: ChannelSpec) -> type[ChannelSettingsForm]:
    """The settings form of ``spec``'s channel: the slot's columns, then a field per setting
    (``setting_<name>``) and a clear box per secret (``clear_<name>``)."""
    attrs: dict[str, Any] = {"spec": spec, "__module__": __name__}
    for f in spec.fields():
        attrs[SETTING + f.name] = _setting_field(spec, f)
        if f.secret:
            attrs[CLEAR + f.name] = forms.BooleanField(required=False, label=_("clear"),
                                                       help_text=_("remove the stored value"))
    return type(f"{spec.settings.__name__}Form", (ChannelSettingsForm,), attrs)


def fieldsets(spec: ChannelSpec, shared: tuple[str, ...]) -> list[tuple[Any, dict[str, Any]]]:
    """The form's sections: the slot, the channel's own settings, its secrets (each with its
    clear box), and the ``shared`` settings (timeouts, TLS) folded away."""
    fields = spec.fields()
    own = [SETTING + f.name for f in fields if not f.secret and f.name not in shared]
    secret = [(SETTING + f.name, CLEAR + f.name) for f in fields if f.secret]
    common = [SETTING + f.name for f in fields if not f.secret and f.name in shared]
    out: list[tuple[Any, dict[str, Any]]] = [(None, {"fields": SLOT_FIELDS})]
    if own:
        out.append((_("%(channel)s settings") % {"channel": spec.title}, {"fields": own}))
    if secret:
        out.append((_("Secrets"), {"fields": secret, "description": _(
            "Never shown. Empty keeps the stored value; tick clear to remove it.")}))
    if common:
        out.append((_("Connection"), {"fields": common, "classes": ["collapse"]}))
    return out
