"""Template preview: a saved template (its own page) or the unsaved draft of the template form
(``draft_preview``: the form's fields posted by static/msgd/template_form.js, nothing saved),
rendered with the sample event of its type (examples/events/<type>.json) exactly as the
renderer would, with the variables it uses that the sample event does not carry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from msgd.web import access
from msgd.web.admin_views import EXAMPLES, channel_choices, ctx, operator_choices, sample_event


def example_types() -> list[str]:
    return sorted(p.stem for p in Path(EXAMPLES).glob("*.json"))


class PreviewForm(forms.Form):
    operator = forms.ChoiceField(label=_("Operator"))
    event_type = forms.CharField(label=_("Sample event"), help_text=_("Sample data from examples/events/<type>.json."))
    channel = forms.ChoiceField(required=False, label=_("Channel"))

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = operator_choices(user)
        self.fields["channel"].choices = channel_choices(str(_("--- the template's")))


def render_result(template: Any, event_type: str, operator: str, channel: str | None) -> dict[str, Any]:
    """What the preview shows: channel, subject, body, HTML, the error if it cannot render,
    and ``missing``: the variables it uses that the sample event does not carry."""
    from services.renderer.preview import PreviewError, RenderError, preview
    from services.renderer.render import template_warnings

    event = sample_event(event_type, operator)
    result: dict[str, Any] = {"event_type": event_type}
    try:
        chosen, rendered = preview(template, event, channel)
        result.update(channel=chosen, subject=rendered.subject, body=rendered.body, html=rendered.html)
    except (PreviewError, RenderError) as exc:
        result["error"] = str(exc)
    try:
        result["missing"] = template_warnings(template, event)
    except Exception:  # noqa: BLE001 - a draft that cannot even be read: the error above says why
        result["missing"] = []
    return result


@access.require("msgd.view_template")
def template_preview(request: HttpRequest, template_id: int) -> HttpResponse:
    from msgd.store.models import Template

    visible = access.scope_templates(Template.objects.select_related("owner"), access.operator_codes(request.user))
    template = get_object_or_404(visible, pk=template_id)
    choices = operator_choices(request.user)
    owner = template.owner.code if template.owner else None
    initial = {"event_type": template.event_type, "operator": owner or (choices or [("", "")])[0][0]}
    form = PreviewForm(request.GET or initial, initial=initial, user=request.user)  # first visit: the defaults
    result: dict[str, Any] = {}
    if form.is_valid():
        d = form.cleaned_data
        result = render_result(template, d["event_type"], d["operator"], d["channel"] or None)
    return render(request, "admin/msgd_tools/preview.html",
                  ctx(request, gettext("Preview: %(template)s") % {"template": template}, form=form, result=result, template_obj=template,
                      types=example_types()))


@access.require("msgd.view_template")
def draft_preview(request: HttpRequest) -> HttpResponse:
    """POST: the template form's fields (unsaved) plus ``preview_operator`` and
    ``preview_channel``; answers the result as an HTML fragment for the form's page."""
    from django.core.exceptions import PermissionDenied

    from msgd.store.models import Template
    from msgd.web.admin_templates import event_type_from

    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    data = request.POST
    operator = data.get("preview_operator", "")
    if not any(code == operator for code, _name in operator_choices(request.user)):
        raise PermissionDenied
    draft = Template(name=data.get("name", ""), event_type=event_type_from(data), channel=data.get("channel") or None,
                     subject=data.get("subject", ""), body=data.get("body", ""), use_django=bool(data.get("use_django")))
    result = render_result(draft, draft.event_type, operator, data.get("preview_channel") or None)
    return render(request, "admin/msgd_tools/preview_result.html", {"result": result, "draft": True})
