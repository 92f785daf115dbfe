"""Templates in the admin, for a person rather than a programmer: the event type chosen from
the known ones (or typed, for a custom one), the channel as a choice ("---" = every
channel), statuses as checkboxes, the contract type as a choice — no JSON — and beside the
body the variables of the chosen event type, each inserted with a click (msgd/vocabulary.py).
The form previews the unsaved draft and warns before unsaved changes are left behind
(static/msgd/template_form.js)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from msgd import vocabulary
from msgd.store.models import Template
from msgd.web import access
from msgd.web.admin_scope import OperatorScoped

OTHER = "__other__"
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")  # schemas/event.v1.json's pattern for "type"


def _label(event_type: str) -> str:
    return f"{vocabulary.label(vocabulary.EVENT_TYPES, event_type)} ({event_type})"


_event_type_label = lazy(_label, str)


class EventTypeWidget(forms.MultiWidget):
    """A list of the known event types, and a text box for a custom one ("other")."""

    def __init__(self) -> None:
        # Built once per form class: the labels are lazy, read in the language of each request.
        choices = [(t, _event_type_label(t)) for t in vocabulary.known_event_types()]
        super().__init__([forms.Select(choices=[*choices, (OTHER, _("other (type its name)"))]),
                          forms.TextInput(attrs={"placeholder": _("custom event type"), "size": 24})])

    def decompress(self, value: Any) -> list[Any]:
        if not value:
            return [vocabulary.known_event_types()[0], ""]
        return [value, ""] if value in vocabulary.known_event_types() else [OTHER, value]


class EventTypeField(forms.MultiValueField):
    widget = EventTypeWidget

    def __init__(self, **kwargs: Any) -> None:
        fields = (forms.CharField(required=False), forms.CharField(required=False, max_length=64))
        super().__init__(fields, require_all_fields=False, **kwargs)

    def compress(self, values: list[Any]) -> str:
        chosen, typed = (list(values) + ["", ""])[:2]
        value = (typed or "").strip() if chosen == OTHER else (chosen or "")
        if not value:
            raise forms.ValidationError(_("Choose the event type, or type the name of a custom one."))
        if not EVENT_TYPE.fullmatch(value):
            raise forms.ValidationError(_("An event type is lower-case Latin letters, digits and _ . -,"
                                          " starting with a letter (like low_balance)."))
        return value


def event_type_from(data: Any) -> str:
    """The event type a posted template form names (for the draft preview)."""
    try:
        return EventTypeField().clean([data.get("event_type_0", ""), data.get("event_type_1", "")])
    except forms.ValidationError:
        return str(data.get("event_type_0") or "low_balance")


def channel_choices(current: str | None = None) -> list[tuple[str, str]]:
    from services.senders.registry import legacy_channels, live_channels

    out = [("", _("--- every channel the subscriber has a contact for")), *((c, c) for c in live_channels())]
    out += [(c, _("%(channel)s (the original's; not sent: ends as unsupported)") % {"channel": c})
            for c in legacy_channels()]
    if current and current not in {c for c, _label in out}:
        out.append((current, current))
    return out


class TemplateForm(forms.ModelForm):
    event_type = EventTypeField(label=_("Event type"))
    channel = forms.ChoiceField(required=False, label=pgettext_lazy("template", "Channel"))
    status_filter = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label=_("Subscriber status"),
        help_text=_("Send only to subscribers with one of the ticked statuses; none ticked means any status."))
    status_other = forms.CharField(
        required=False, label=_("Other statuses"),
        help_text=_("Statuses billing sends that are not in the list, separated by commas."))

    class Meta:
        model = Template
        fields = ["owner", "name", "event_type", "channel", "subject", "body", "enabled", "every_day",
                  "status_filter", "status_other", "contract_type", "use_django"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "body" not in self.fields:  # view only: every field is shown read-only
            return
        self.fields["channel"].choices = channel_choices(self.instance.channel)
        self.fields["status_filter"].choices = [
            (s, f"{vocabulary.label(vocabulary.STATUSES, s)} ({s})") for s, _ru, _en in vocabulary.STATUSES]
        if "contract_type" in self.fields:
            self.fields["contract_type"].choices = [("", _("--- any")), *(
                (c, vocabulary.label(vocabulary.CONTRACT_TYPES, c)) for c, _ru, _en in vocabulary.CONTRACT_TYPES)]
        known = {s for s, _ru, _en in vocabulary.STATUSES}
        stored = [str(s) for s in (self.instance.status_filter or [])]
        self.initial["status_filter"] = [s for s in stored if s in known]
        self.initial["status_other"] = ", ".join(s for s in stored if s not in known)
        self.fields["body"].widget.attrs.update(rows=8, cols=60)

    def clean_channel(self) -> str | None:
        return self.cleaned_data.get("channel") or None

    def clean(self) -> Any:
        data = super().clean()
        other = [s.strip() for s in (data.get("status_other") or "").split(",") if s.strip()]
        data["status_filter"] = list(dict.fromkeys([*(data.get("status_filter") or []), *other]))
        if self._same_key_exists(data):
            self.add_error("name", _("Another template of the same operator, event type and channel has this name:"
                                     " give this one another name (the configuration file tells templates apart"
                                     " by it, and msgd config dump could not be loaded back)."))
        return data

    def _same_key_exists(self, data: dict[str, Any]) -> bool:
        """Whether another template has this one's (owner, event type, channel, name), the key
        ``msgd config load`` matches templates by (a blank name counts as "event/channel")."""
        event_type, channel = data.get("event_type"), data.get("channel") or None
        if not event_type or "name" not in data:
            return False
        owner = data["owner"].pk if data.get("owner") is not None else (
            self.instance.owner_id if "owner" not in self.fields else None)

        def key_name(name: str, channel: str | None) -> str:
            return name.strip() or f"{event_type}/{channel or 'any'}"

        mine = key_name(str(data.get("name") or ""), channel)
        others = Template.objects.filter(owner_id=owner, event_type=event_type).exclude(pk=self.instance.pk)
        return any((t.channel or None) == channel and key_name(t.name, t.channel) == mine for t in others)


def variables_panel(event_type: str) -> Any:
    """The variables of every known event type (the chosen one shown; the page's script switches
    with the event type), each a button that inserts it into the body or subject."""
    from django.utils.translation import gettext

    types = [*vocabulary.known_event_types(), *([event_type] if event_type not in vocabulary.known_event_types() else [])]

    def rows(t: str) -> Any:
        return format_html_join("", '<tr><td><button type="button" class="msgd-var" data-standard="{}"'
                                    ' data-django="{}" title="{}">{}</button></td><td>{}{}</td></tr>',
                                ((v.standard_form, v.django_form, v.django_form, v.standard_form, v.description(),
                                  " *" if v.sometimes else "") for v in vocabulary.variables_for(t)))

    tables = format_html_join("", '<table class="msgd-vars" data-event-type="{}"{}><tbody>{}</tbody></table>',
                              ((t, mark_safe(" hidden") if t != event_type else "", rows(t)) for t in types))
    note = gettext("Click a variable to insert it where the cursor is (with “Use Django templating” ticked,"
                   " in Django's form). * only when billing sends it.")
    return format_html('<div id="msgd-variables"><p class="help">{}</p>{}</div>', note, tables)


@admin.register(Template)
class TemplateAdmin(OperatorScoped, admin.ModelAdmin):
    form = TemplateForm
    list_display = ("id", "name", "event_type", "channel", "owner", "enabled", "use_django")
    # owners present in the user's list only: the filter must not name other operators
    list_filter = ("event_type", "channel", "enabled", ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "body", "subject")
    operator_lookup = "owner__code"
    fieldsets = (
        (None, {"fields": ("owner", "name", "event_type", "channel", "enabled", "every_day")}),
        (_("Text"), {"fields": ("subject", ("body", "variables"), "use_django")}),
        (_("Who gets it"), {"fields": ("status_filter", "status_other", "contract_type")}),
    )
    actions = ["enable", "disable"]

    class Media:
        css = {"all": ("msgd/template_form.css",)}
        js = ("msgd/template_form.js",)

    @admin.display(description=_("Variables"))
    def variables(self, obj: Any) -> Any:
        return variables_panel(getattr(obj, "event_type", "") or vocabulary.known_event_types()[0])

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        return ("variables", "owner") if obj is not None else ("variables",)

    def get_queryset(self, request: Any) -> Any:  # global templates too: they serve every operator
        qs = admin.ModelAdmin.get_queryset(self, request).select_related("owner")
        return access.scope_templates(qs, access.operator_codes(request.user))

    def in_scope(self, request: Any, obj: Any) -> bool:
        """A scoped user changes only their operators' templates (a global one serves all)."""
        codes = access.operator_codes(request.user)
        return codes is None or obj is None or (obj.owner is not None and obj.owner.code in codes)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_view_permission(self, request, obj) and (
            obj is None or access.scope_templates(Template.objects.filter(pk=obj.pk),
                                                  access.operator_codes(request.user)).exists())

    def get_form(self, request: Any, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if "owner" in form.base_fields and access.operator_codes(request.user) is not None:
            form.base_fields["owner"].required = True  # a global template is every operator's
            form.base_fields["owner"].empty_label = None
        return form

    def render_change_form(self, request: Any, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from msgd.web.admin_views import channel_choices as send_channels
        from msgd.web.admin_views import operator_choices

        context.update(preview_operators=operator_choices(request.user), preview_channels=send_channels(),
                       may_preview=request.user.has_perm("msgd.view_template"))
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        """Save, then warn about variables the sample event of its type lacks (not an error:
        billing may send them; a Django template would render them empty)."""
        super().save_model(request, obj, form, change)
        from msgd.problem_words import shown_problem
        from services.renderer.preview import sample_warnings

        for warning in sample_warnings(obj):
            messages.warning(request, f"{obj}: {shown_problem(warning)}")

    @admin.action(description=_("Switch sending on for the selected templates"), permissions=["change"])
    def enable(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, True)

    @admin.action(description=_("Switch sending off for the selected templates"), permissions=["change"])
    def disable(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, False)

    def _switch(self, request: Any, queryset: Any, on: bool) -> None:
        editable = access.scope_templates(queryset, access.operator_codes(request.user), editable=True)
        for t in editable:  # one by one: each save tells the running stages (signals)
            t.enabled = on
            t.save(update_fields=["enabled", "updated_at"])
        self.message_user(request, _("%(n)d template(s) changed.") % {"n": editable.count()})
