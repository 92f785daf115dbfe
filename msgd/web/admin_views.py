"""The admin's own pages: send a test message, manual send, an event's progress, the parking
queue. Each checks its permission and the user's operators (msgd/web/access.py); the
template preview is in admin_preview.py, resend in admin_resend.py."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from msgd.envelope import DLR_STATES, FINAL_STATES
from msgd.problem_words import shown_problem
from msgd.settings import ROOT, Settings
from msgd.web import access

EXAMPLES = ROOT / "examples" / "events"


def sample_event(event_type: str, operator_code: str | None) -> dict[str, Any]:
    """The example event of this type (examples/events/<type>.json), else low_balance's data renamed."""
    from services.renderer.preview import sample_event as sample

    return sample(event_type, operator_code)[1]


def channel_choices(blank: str | None = None, legacy: bool = False) -> list[tuple[str, str]]:
    """The channels msgd sends on; with ``legacy`` also the original's Agent, Winpop, WhatsApp
    (a manual send may name them: such messages end as "unsupported channel")."""
    from services.senders.registry import known_channels, live_channels

    names = known_channels() if legacy else live_channels()
    return ([("", blank)] if blank is not None else []) + [(c, c) for c in names]


def operator_choices(user: Any) -> list[tuple[str, str]]:
    """The operators ``user`` works for, as form choices (code, name)."""
    return [(o.code, str(o)) for o in access.visible_operators(user)]


def contact_keys() -> dict[str, str]:
    """Channel -> the event's contact field for it (sms, email, telegram_id, push)."""
    from services.senders.registry import sender_classes

    return {name: sender.contact_key for name, sender in sender_classes().items()}


def ctx(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def publish(request: HttpRequest, event: dict[str, Any]) -> bool:
    from msgd.web.api import try_publish

    problem = try_publish([event])
    if problem:
        messages.error(request, shown_problem(problem))
    return not problem


def phone_problem(operator_code: str, text: str) -> str | None:
    """Why the SMS sender would refuse ``text`` (one number, or several as a contact holds them)
    for this operator (read in the region of its first SMS slot), or None."""
    from msgd.store.models import ChannelSettings
    from services.senders.sms.phone import InvalidPhone, check_region, normalize_phone, split_phones

    slot = ChannelSettings.objects.filter(operator__code=operator_code, channel="sms", enabled=True) \
        .order_by("position").first()
    region = (slot.params or {}).get("region") if slot else None
    try:
        region = check_region(region if isinstance(region, str) else None)
    except ValueError:
        return None  # a setting's problem, said where the slot is saved and when it is used
    for number in split_phones(text) or [text]:
        try:
            normalize_phone(number, region)
        except InvalidPhone as exc:
            return str(exc)
    return None


# -- send a test message -------------------------------------------------------------------------
class TestMessageForm(forms.Form):
    operator = forms.ChoiceField(label=_("Operator"))
    channel = forms.ChoiceField(label=_("Channel"))
    recipient = forms.CharField(
        label=_("Recipient"), widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("A phone number, an e-mail address or a Telegram chat id; for push, the browser's"
                    " subscription as the personal cabinet gives it (JSON with endpoint and keys)."))
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = operator_choices(user)
        self.fields["channel"].choices = channel_choices()  # every channel msgd sends on

    def clean(self) -> Any:
        data = super().clean()
        if data.get("channel") == "sms" and data.get("recipient") and data.get("operator"):
            problem = phone_problem(data["operator"], data["recipient"])
            if problem:  # as the SMS sender would refuse it: said here, not only in the log
                self.add_error("recipient", shown_problem(problem))
        if data.get("channel") == "push" and data.get("recipient"):
            import json

            from services.senders.push.sender import usable_subscription

            try:
                sub = json.loads(data["recipient"])
            except ValueError:
                sub = None
            subs = sub if isinstance(sub, list) else [sub]  # the event takes a list
            if subs and all(usable_subscription(s) is not None for s in subs):
                data["recipient"] = subs
            else:  # as the push sender would refuse it: no endpoint, no keys, not http(s)
                self.add_error("recipient", _("For push, paste the browser's subscription: JSON with"
                                              " endpoint and keys."))
        return data


@access.require(access.SEND_TEST)
def test_message(request: HttpRequest) -> HttpResponse:
    form = TestMessageForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        event = {
            "event_id": f"test_message-{uuid.uuid4().hex}",
            "type": "test_message",
            "occurred_at": timezone.now().isoformat(),
            "operator": {"code": d["operator"]},
            "abonent": {"id": 0, "name": "Проверка", "contacts": {contact_keys()[d["channel"]]: d["recipient"]}},
            "data": {"text": d["text"]},
        }
        from msgd.schemas import validate_event

        problems = validate_event(event)
        if problems:
            form.add_error(None, "; ".join(shown_problem(p) for p in problems))
        elif publish(request, event):
            return HttpResponseRedirect(reverse("msgd-event-status", args=[event["event_id"]]))
    return render(request, "admin/msgd_tools/form.html",
                  ctx(request, gettext("Send a test message"), form=form, submit=gettext("Send")))


@access.require("msgd.view_message")
def event_status(request: HttpRequest, event_id: str) -> HttpResponse:
    """The messages of one event, refreshing until every one has reached its final state."""
    from msgd.logview import shown_recipient
    from msgd.own_words import shown_reason
    from msgd.reasons import explain
    from msgd.store.models import Message

    qs = access.scope_messages(Message.objects.filter(event_id=event_id), access.operator_codes(request.user))
    rows = list(qs.order_by("created_at"))
    for m in rows:
        m.shown_recipient = shown_recipient(m.channel, m.recipient)
        m.reason_text = explain(m.reason_code, m.event_type)  # the code in the reader's language, the words beside it
        m.reason_shown = shown_reason(m.reason)  # msgd's own sentences in the reader's language too
    done = bool(rows) and all(m.state in FINAL_STATES or m.state in DLR_STATES for m in rows)
    return render(request, "admin/msgd_tools/event_status.html",
                  ctx(request, gettext("Event %(id)s") % {"id": event_id}, rows=rows, done=done, event_id=event_id))


# -- manual send --------------------------------------------------------------------------------
class ManualSendForm(forms.Form):
    operator = forms.ChoiceField(label=_("Operator"))
    abonent_id = forms.CharField(label=_("Subscriber id"))
    abonent_name = forms.CharField(label=_("Subscriber name"), required=False)
    sms = forms.CharField(label=_("SMS number"), required=False)
    email = forms.CharField(label=_("E-mail"), required=False)
    telegram_id = forms.CharField(label=_("Telegram id"), required=False)
    template = forms.ChoiceField(label=_("Template"), required=False,
                                 help_text=_("--- = no template (see the checkbox below)"))
    all_templates = forms.BooleanField(
        required=False, label=_("Send every matching template"),
        help_text=_("Without a template every “Manual send” template that matches is sent; tick to confirm."))
    channel = forms.ChoiceField(label=_("Channel"), required=False,
                                help_text=_("--- keeps the template's channel"))
    text = forms.CharField(label=_("Text"), widget=forms.Textarea(attrs={"rows": 4}), required=False,
                           help_text=_("%(text)s in the template; needed when the template shows it"
                                       " and when every matching template is sent"))
    admin_email = forms.CharField(label=_("Your e-mail (the sender)"))

    def clean_email(self) -> str:
        """Checked as the e-mail sender will check it (international addresses too), not by
        Django's stricter ASCII rule."""
        from services.senders.email.address import recipient_problem

        value = str(self.cleaned_data.get("email") or "").strip()
        problem = recipient_problem(value) if value else None
        if problem:
            raise forms.ValidationError(shown_problem(problem))
        return value

    def clean(self) -> Any:
        data = super().clean()
        if data.get("sms") and data.get("operator"):
            problem = phone_problem(data["operator"], data["sms"])
            if problem:
                self.add_error("sms", shown_problem(problem))
        return data

    def clean_admin_email(self) -> str:
        from services.senders.email.address import sender_problem

        value = str(self.cleaned_data.get("admin_email") or "").strip()
        problem = sender_problem(value)
        if problem:
            raise forms.ValidationError(shown_problem(problem))
        return value

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        from msgd.store.models import Template

        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = operator_choices(user)
        self.fields["channel"].choices = channel_choices("---", legacy=True)
        templates = access.scope_templates(Template.objects.select_related("owner"), access.operator_codes(user))
        self.fields["template"].choices = [("", "---")] + [
            (str(t.id), f"#{t.id} {t} [{t.event_type}/{t.channel or 'any'}]") for t in templates]


@access.require(access.MANUAL_SEND)
def manual_send(request: HttpRequest) -> HttpResponse:
    from msgd.web.api import build_manual_event
    from msgd.web.api_http import Invalid

    initial = {"admin_email": getattr(request.user, "email", "")}
    form = ManualSendForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        contacts = {k: d[k] for k in ("sms", "email", "telegram_id") if d[k]}
        abonent_id: Any = int(d["abonent_id"]) if d["abonent_id"].isdigit() else d["abonent_id"]
        abonent = {"id": abonent_id, "contacts": contacts, **({"name": d["abonent_name"]} if d["abonent_name"] else {})}
        try:
            event = build_manual_event({
                "operator": d["operator"], "abonent": abonent,
                "template_id": int(d["template"]) if d["template"] else None,
                "all_templates": d["all_templates"], "channel": d["channel"] or None,
                "text": d["text"], "admin_email": d["admin_email"]})
        except Invalid as exc:
            for e in exc.errors:
                name = {"template_id": "template"}.get(e["field"], e["field"])
                form.add_error(name if name in form.fields else None, shown_problem(e["message"]))
        else:
            if publish(request, event):
                return HttpResponseRedirect(reverse("msgd-event-status", args=[event["event_id"]]))
    return render(request, "admin/msgd_tools/form.html",
                  ctx(request, gettext("Manual send"), form=form, submit=gettext("Send")))


# -- the parking queue ----------------------------------------------------------------------------
PEEK_LIMIT = 200


@access.require(access.VIEW_PARKING, unscoped=True)
def parking(request: HttpRequest) -> HttpResponse:
    """Messages no stage could handle, with their reason; replay sends them back where they came from.

    The list is read without taking anything; replay sends the selected messages back
    (RabbitMQ: the queue is gone through once, the others return to parking unchanged).
    Parked bodies may belong to any operator, so only users who work for every operator
    see them (secret fields masked); replay needs its own permission.
    """
    from django.core.exceptions import PermissionDenied

    from msgd import parking as pk
    from msgd.broker import make_broker

    may_replay = request.user.has_perm(access.REPLAY_PARKING)
    if request.method == "POST" and not may_replay:
        raise PermissionDenied
    settings = Settings.from_env()
    broker = make_broker(settings)
    try:
        if request.method == "POST":
            every = bool(request.POST.get("all"))
            keys = set(request.POST.getlist("ids"))  # Parked.key, as the list shows them
            if broker.embedded:  # read once, then move the chosen rows in one transaction
                chosen = [p for p in pk.peek(broker, settings, 10**6) if every or p.key in keys]
                items = [(int(p.delivery.tag), target) for p in chosen
                         if (target := p.replay(settings.namespace)) is not None]
                done = broker.replay(items) if items else 0  # type: ignore[attr-defined]
                gone = 0 if every else len(keys - {p.key for p in chosen})
                kept = len(chosen) + gone - done
            elif every:
                done, kept = pk.replay(broker, settings)
            else:
                done, kept = pk.replay(broker, settings, keys=keys) if keys else (0, 0)
            text = ngettext("%(n)d message sent back to its queue", "%(n)d messages sent back to their queues",
                            done) % {"n": done}
            if kept:
                text += "; " + ngettext("%(n)d kept (source queue unknown or already gone)",
                                        "%(n)d kept (source queue unknown or already gone)", kept) % {"n": kept}
            messages.success(request, text)
            return HttpResponseRedirect(reverse("msgd-parking"))
        parked = pk.peek(broker, settings, PEEK_LIMIT)
        depth = broker.queue_depths([pk.parking_queue(settings.namespace)])
    finally:
        broker.close()
    rows = [{"id": p.key, "queue": p.source_queue, "stage": p.stage,
             "reason": pk.shown_text(p.reason, 2000), "body": p.shown_body(2000),
             "replayable": p.replay(settings.namespace) is not None} for p in parked]
    return render(request, "admin/msgd_tools/parking.html",
                  ctx(request, gettext("Parking queue"), rows=rows, selectable=may_replay,
                      total=sum(depth.values())))
