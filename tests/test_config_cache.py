"""The configuration snapshot (msgd/store/cache.py): a change saved by this process is seen at
once; one made elsewhere (no signal here) within the refresh period."""

from __future__ import annotations

import pytest

from tests import seed

pytestmark = pytest.mark.store


def test_a_change_saved_here_is_seen_at_once_and_one_made_elsewhere_after_the_refresh(db: str) -> None:
    from msgd.store.cache import ConfigCache
    from msgd.store.models import Operator, Revision

    cache = ConfigCache(refresh_seconds=3600)
    assert cache.operator("best") is None
    seed.operator()  # saved through the ORM in this process: the save signal marks every snapshot stale
    assert cache.operator("best") is not None
    Operator.objects.filter(code="best").update(name="Другое имя")  # as another process would: no signal
    Revision.objects.filter(id=1).update(value=10_000)
    assert cache.operator("best").name == "ООО Лучший провайдер", "kept until the refresh period is over"
    cache.refresh_seconds = 0
    assert cache.operator("best").name == "Другое имя"
