"""A Django template's data converted when read (services/renderer/django_engine.py LazyFields)
is what converting everything first gave, field by field, for every example event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.renderer.context import build_context
from services.renderer.django_engine import LazyFields, Record, readonly, template_context

EVENTS = sorted((Path(__file__).resolve().parent.parent / "examples" / "events").glob("*.json"))
OPERATOR = {"id": 1, "code": "best", "name": "ООО Лучший провайдер", "email": "noc@best.example",
            "timezone": "Europe/Moscow", "default_subject": "", "warn_days": 3}


def shown(value: Any) -> Any:
    """A comparable picture of template data: type and text, records field by field."""
    if isinstance(value, Record | LazyFields):
        return {k: shown(value[k]) for k in value}
    if isinstance(value, tuple):
        return [shown(v) for v in value]
    if hasattr(value, "all") and callable(value.all):
        return [shown(v) for v in value.all()]
    return (type(value).__name__, str(value))


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_every_field_read_lazily_is_what_eager_conversion_gave(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    flat = build_context(event, OPERATOR)
    lazy = template_context(event, OPERATOR, flat)
    eager = {key: readonly(key, value) for key, value in flat.items()}  # the conversion before LazyFields
    assert set(eager) <= set(lazy)
    for key, value in eager.items():
        assert shown(lazy[key]) == shown(value), key
    assert shown(lazy["abonent"]) == shown(Record({k: readonly(k, v) for k, v in event["abonent"].items()}))
