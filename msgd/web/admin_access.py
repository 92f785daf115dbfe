"""Access in the admin: API tokens with their scopes and operators, and users with their
role groups and the operators they work for (msgd/web/access.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from msgd.web.access import ROLE_LABELS, operator_codes
from msgd.web.models import ApiToken, StaffProfile


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "ingest", "read", "resend", "operator_list", "created_at", "last_used_at",
                    "revoked")
    fields = ("name", "prefix", "ingest", "read", "resend", "operators", "created_at", "last_used_at", "revoked")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")
    filter_horizontal = ("operators",)

    @admin.display(description=_("operators"))
    def operator_list(self, obj: ApiToken) -> str:
        return ", ".join(o.code for o in obj.operators.all()) or str(_("every operator"))

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("operators")

    def has_add_permission(self, request: Any) -> bool:
        return False  # `msgd token create NAME` prints the key once

    def has_module_permission(self, request: Any) -> bool:  # tokens serve every operator's data
        return super().has_module_permission(request) and operator_codes(request.user) is None

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and operator_codes(request.user) is None

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and operator_codes(request.user) is None


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    filter_horizontal = ("operators",)
    verbose_name_plural = _("Operators this person works for")


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


class RoleFilter(admin.RelatedFieldListFilter):
    """The groups filter with the roles in the reader's language (the group names stay English)."""

    def field_choices(self, field: Any, request: Any, model_admin: Any) -> list[tuple[Any, str]]:
        return [(pk, str(ROLE_LABELS.get(name, name))) for pk, name in super().field_choices(field, request, model_admin)]


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Django's user admin plus the operator scope; the role is the group."""

    inlines = [StaffProfileInline]
    list_display = ("username", "email", "is_staff", "is_superuser", "roles", "scope")
    list_filter = ("is_staff", "is_superuser", "is_active", ("groups", RoleFilter))

    @admin.display(description=_("roles"))
    def roles(self, obj: Any) -> str:
        return ", ".join(str(ROLE_LABELS.get(g.name, g.name)) for g in obj.groups.all()) or "-"

    @admin.display(description=_("operators"))
    def scope(self, obj: Any) -> str:
        profile = StaffProfile.objects.filter(user=obj).first()
        codes = sorted(profile.operators.values_list("code", flat=True)) if profile else []
        return ", ".join(codes) or str(_("every operator"))

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("groups")

    def has_module_permission(self, request: Any) -> bool:  # a scoped user does not manage accounts
        return super().has_module_permission(request) and operator_codes(request.user) is None

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and operator_codes(request.user) is None

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and operator_codes(request.user) is None

    def has_add_permission(self, request: Any) -> bool:
        return super().has_add_permission(request) and operator_codes(request.user) is None

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and operator_codes(request.user) is None
