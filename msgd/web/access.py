"""Who may do what in the admin: roles (groups), the tools' permissions, operator scope.

Three roles ship as groups (``msgd admin groups`` makes them; ``msgd migrate`` runs it):

* **administrator** — every permission;
* **operator staff** — templates, test and manual sends, resend, the message log;
* **helpdesk** — reads the message log, nothing else.

A user who is not a superuser can be limited to some operators (``StaffProfile``:
the original's branches and agents): such a user sees and sends only for those
operators. Every page, form choice and action asks ``operator_codes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import pgettext_lazy

# The admin's own pages (permissions of msgd.web.models.StaffTools).
SEND_TEST = "web.send_test_message"
MANUAL_SEND = "web.manual_send"
RESEND = "web.resend_message"
VIEW_PARKING = "web.view_parking"
REPLAY_PARKING = "web.replay_parking"

ADMINISTRATOR = "administrator"
OPERATOR_STAFF = "operator staff"
HELPDESK = "helpdesk"
# The group names stay as they are (scripts and the README name them); the admin shows them in words.
ROLE_LABELS = {ADMINISTRATOR: pgettext_lazy("role", "administrator"),
               OPERATOR_STAFF: pgettext_lazy("role", "operator staff"), HELPDESK: pgettext_lazy("role", "helpdesk")}
LOG = ("msgd.view_message", "msgd.view_attempt")
# Role -> its permissions ("app_label.codename"); None = every permission there is.
ROLES: dict[str, tuple[str, ...] | None] = {
    ADMINISTRATOR: None,
    OPERATOR_STAFF: (
        "msgd.view_operator", "msgd.view_template", "msgd.add_template", "msgd.change_template",
        "msgd.delete_template", *LOG, SEND_TEST, MANUAL_SEND, RESEND,
    ),
    HELPDESK: LOG,
}

View = Callable[..., HttpResponse]


def require(*perms: str, unscoped: bool = False) -> Callable[[View], View]:
    """A view decorator: 403 unless the user has every permission in ``perms`` (and, with
    ``unscoped``, is not limited to some operators: pages that show every operator's data)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.has_perms(perms) or (unscoped and operator_codes(user) is not None):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def operator_codes(user: Any) -> set[str] | None:
    """The operator codes ``user`` is limited to; None when the user works for every operator
    (a superuser always does, as does a user whose profile names no operator)."""
    if getattr(user, "is_superuser", False):
        return None
    if hasattr(user, "_msgd_operator_codes"):
        cached: set[str] | None = user._msgd_operator_codes
        return cached
    from msgd.web.models import StaffProfile

    codes: set[str] | None = None
    if getattr(user, "pk", None) is not None:
        profile = StaffProfile.objects.filter(user=user).first()
        found = set(profile.operators.values_list("code", flat=True)) if profile else set()
        codes = found or None
    user._msgd_operator_codes = codes  # one lookup per request: the user object is the request's
    return codes


def may_use_operator(user: Any, code: str | None) -> bool:
    codes = operator_codes(user)
    return codes is None or code in codes


def visible_operators(user: Any) -> Any:
    """The operators ``user`` works for (a queryset)."""
    from msgd.store.models import Operator

    codes = operator_codes(user)
    return Operator.objects.all() if codes is None else Operator.objects.filter(code__in=codes)


def scope_messages(qs: Any, codes: set[str] | None) -> Any:
    """Message-log rows limited to these operator codes (None: all)."""
    return qs if codes is None else qs.filter(operator_code__in=codes)


def scope_templates(qs: Any, codes: set[str] | None, *, editable: bool = False) -> Any:
    """Templates a scoped user may see: global ones and those of their operators; ``editable``:
    only their operators' (a global template serves every operator, so only an unscoped user
    changes it)."""
    from django.db.models import Q

    if codes is None:
        return qs
    own = Q(owner__code__in=codes)
    return qs.filter(own if editable else own | Q(owner__isnull=True))


def sync_roles(reset: bool = False) -> list[str]:
    """Create the role groups and give them their permissions; returns what was done.

    Missing permissions are added to an existing group (an upgrade brings new ones);
    permissions an administrator added by hand are kept unless ``reset``."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for config in apps.get_app_configs():  # they exist only after post_migrate otherwise
        create_permissions(config, verbosity=0)
    report = []
    every = Permission.objects.all()
    for role, names in ROLES.items():
        wanted = list(every) if names is None else _permissions(names)
        group, created = Group.objects.get_or_create(name=role)
        before = set(group.permissions.values_list("id", flat=True))
        if reset:
            group.permissions.set(wanted)
        else:
            group.permissions.add(*wanted)
        after = set(group.permissions.values_list("id", flat=True))
        added, removed = len(after - before), len(before - after)
        verb = "created" if created else "updated" if added or removed else "unchanged"
        report.append(f"group {role!r} {verb}: {len(after)} permissions"
                      + (f" (+{added}" + (f", -{removed}" if removed else "") + ")" if added or removed else ""))
    return report


def _permissions(names: Iterable[str]) -> list[Any]:
    from django.contrib.auth.models import Permission

    out = []
    for name in names:
        app, _, codename = name.partition(".")
        perm = Permission.objects.filter(content_type__app_label=app, codename=codename).first()
        if perm is None:
            raise LookupError(f"permission {name!r} does not exist (run msgd migrate)")
        out.append(perm)
    return out
