"""Bump the configuration revision on every change so consumers reload their caches."""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.db.models.signals import post_delete, post_save

from msgd.store.cache import changed_here
from msgd.store.models import ChannelSettings, Operator, Revision, Template


def bump_revision(**_: Any) -> None:
    changed_here()
    if not Revision.objects.filter(id=1).update(value=F("value") + 1):
        Revision.objects.get_or_create(id=1, defaults={"value": 1})


for model in (Operator, ChannelSettings, Template):
    post_save.connect(bump_revision, sender=model, dispatch_uid=f"rev-save-{model.__name__}")
    post_delete.connect(bump_revision, sender=model, dispatch_uid=f"rev-del-{model.__name__}")
