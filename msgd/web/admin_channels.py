"""The channel settings admin: a form per channel, generated from its settings model
(msgd/web/channel_form.py).

A row's channel decides its form, so adding a row starts by choosing the channel (a page of
links, ``add/?channel=sms``: no script needed); an existing row keeps its channel. Users who
may only view a row see its settings as ``msgd config dump`` shows them (secrets masked).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from msgd.config.masking import mask
from msgd.reasons import explain
from msgd.redact import MASK
from msgd.store.models import ChannelSettings, GatewayAccount
from msgd.web.admin_scope import OperatorScoped
from msgd.web.channel_form import SLOT_FIELDS, channel_form, fieldsets
from services.senders.model import HttpSettings
from services.senders.registry import channel_specs, normalize_channel
from services.senders.sms.problems import PROBLEMS
from services.senders.spec import ChannelSpec

# A balance query's problem (services/senders/sms/problems.py; services/dlr/balances.py words a
# network failure "unavailable") as the channel list shows it: short, in the reader's language.
BALANCE_PROBLEMS = {
    "credentials": _("bad credentials"),
    "funds": _("no money"),
    "request": _("query refused"),
    "ip": _("IP address not allowed"),
    "blocked": _("IP address blocked for a while"),
    "throttled": _("too many requests"),
    "unavailable": _("query failed"),
    "unreadable": _("answer not understood"),
    "unclassified": _("answer not understood"),
}


def masked(secrets: dict[str, Any]) -> str:
    return ", ".join(f"{k}={MASK}" for k in sorted(secrets)) or "-"


def channel_line(spec: ChannelSpec) -> str:
    """The channel's line on the choice page, in English (the first line of its settings model's
    docstring, without ``code`` marks): the msgid its Russian text is found under."""
    return (spec.settings.__doc__ or "").strip().splitlines()[0].replace("``", "")


def _spec(request: HttpRequest, obj: ChannelSettings | None) -> ChannelSpec | None:
    """The channel of the row, or the one the add view was asked for (``?channel=``)."""
    name = obj.channel if obj is not None else (request.GET.get("channel") or request.POST.get("channel"))
    return channel_specs().get(normalize_channel(name) or "")


@admin.register(ChannelSettings)
class ChannelSettingsAdmin(OperatorScoped, admin.ModelAdmin):
    list_display = ("operator", "channel", "position", "enabled", "outbox", "stored_secrets", "balance")
    list_filter = ("channel", "enabled", "outbox")
    readonly_when_viewing = (*SLOT_FIELDS, "settings", "stored_secrets")

    @admin.display(description=_("secrets"))
    def stored_secrets(self, obj: ChannelSettings) -> str:
        return masked(obj.secrets or {})

    @admin.display(description=_("balance"))
    def balance(self, obj: ChannelSettings) -> str:
        """The gateway account as msgd last learned it (services/senders/sms/accounts.py)."""
        account = GatewayAccount.objects.filter(settings_id=obj.id).first()
        if account is None:
            return "-"
        when = account.empty_at if account.empty else account.balance_at or account.polled_at
        at = f"{localtime(when):%Y-%m-%d %H:%M}" if when else ""
        if account.empty:
            return format_html('<strong class="msgd-balance-empty" title="{}">{}</strong>', at, _("no money"))
        if account.balance is None:
            if not account.problem:
                return "-"
            # the query's problem in the reader's language; the title: what was said (the gateway's
            # words, or the network's: "the name ... does not resolve"), when, and the code's meaning
            known = PROBLEMS.get(account.problem)
            label = BALANCE_PROBLEMS.get(account.problem) or account.problem
            title = " — ".join(t for t in (account.words, at if account.polled_at else "",
                                           explain(known.code) if known and account.problem != "unavailable" else "")
                               if t)
            return format_html('<span class="msgd-balance-problem" data-problem="{}" title="{}">{}</span>',
                               account.problem, title, label)
        shown = f"{account.balance:g}" + (f" {account.unit}" if account.unit else "")
        limit = (obj.params or {}).get("balance_alert_below")
        if isinstance(limit, int | float) and account.balance < limit:
            return format_html('<strong class="msgd-balance-low" title="{}">{} &lt; {}</strong>', at, shown, f"{limit:g}")
        return format_html('<span title="{}">{}</span>', at, shown)

    @admin.display(description=_("settings"))
    def settings(self, obj: ChannelSettings) -> str:
        return json.dumps(mask(obj.params or {}), ensure_ascii=False, indent=1)

    def _editable(self, request: HttpRequest, obj: ChannelSettings | None) -> bool:
        return self.has_change_permission(request, obj) if obj is not None else self.has_add_permission(request)

    def get_fieldsets(self, request: HttpRequest, obj: ChannelSettings | None = None) -> Any:
        spec = _spec(request, obj)
        if spec is None or not self._editable(request, obj):
            return [(None, {"fields": self.readonly_when_viewing})]
        return fieldsets(spec, tuple(HttpSettings.model_fields) if issubclass(spec.settings, HttpSettings) else ())

    def get_readonly_fields(self, request: HttpRequest, obj: ChannelSettings | None = None) -> Any:
        if _spec(request, obj) is None or not self._editable(request, obj):
            return self.readonly_when_viewing
        return ()

    def get_form(self, request: Any, obj: ChannelSettings | None = None, change: bool = False, **kwargs: Any) -> Any:
        spec = _spec(request, obj)
        if spec is not None and self._editable(request, obj):
            kwargs["form"] = channel_form(spec)
        return super().get_form(request, obj, change=change, **kwargs)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        if _spec(request, None) is None:
            return self.choose_channel(request)
        return super().add_view(request, form_url, extra_context)

    def choose_channel(self, request: HttpRequest) -> HttpResponse:
        """The add view's first step: which channel (each link opens that channel's form)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        keep = {k: v for k, v in request.GET.items() if k != "channel"}
        choices = [{"name": spec.name, "title": spec.title,
                    "query": urlencode({**keep, "channel": spec.name}),
                    "about": gettext(channel_line(spec))}
                   for spec in channel_specs().values()]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "channels": choices,
                   "title": _("Add channel settings: choose the channel")}
        return TemplateResponse(request, "admin/msgd/channelsettings/choose_channel.html", context)

    def render_change_form(self, request: Any, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        spec = _spec(request, kwargs.get("obj"))
        context["channel_presets"] = ({name: dict(p.settings) for name, p in spec.presets.items()}
                                      if spec is not None else {})
        return super().render_change_form(request, context, *args, **kwargs)
