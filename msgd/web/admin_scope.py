"""Operator scope for the model admins: a user limited to some operators sees, chooses and
changes only their rows (msgd/web/access.py)."""

from __future__ import annotations

from typing import Any

from msgd.web.access import operator_codes, visible_operators


class OperatorScoped:
    """Mixin for a ModelAdmin whose rows belong to an operator: ``operator_lookup`` is the
    path from the model to the operator's code (``operator__code``, ``code`` for Operator)."""

    operator_lookup = "operator__code"
    operator_fields = ("operator", "owner")  # foreign keys whose choices are the user's operators

    def get_queryset(self, request: Any) -> Any:
        qs = super().get_queryset(request)  # type: ignore[misc]
        codes = operator_codes(request.user)
        return qs if codes is None else qs.filter(**{f"{self.operator_lookup}__in": codes})

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.name in self.operator_fields:
            kwargs["queryset"] = visible_operators(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def in_scope(self, request: Any, obj: Any) -> bool:
        """Whether ``obj`` (None: the list) is one of the user's operators'."""
        codes = operator_codes(request.user)
        if codes is None or obj is None:
            return True
        value: Any = obj
        for part in self.operator_lookup.split("__"):
            value = getattr(value, part, None)
        return value in codes

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)  # type: ignore[misc]

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(request, obj)  # type: ignore[misc]
