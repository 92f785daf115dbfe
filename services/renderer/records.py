"""What a Django template sees: the event's data as read-only records (no Django).

``template_context`` builds the top level (see ``services.renderer.django_engine`` for what a
template may reach); ``Record``/``Related`` wrap the subscriber, the operator and related
records, converting (``readonly``) a field when a template first reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from itertools import islice
from typing import Any

from services.renderer.context import Money, is_related_list, normalize, operator_fields_shared
from services.renderer.dates import DateText

__all__ = ["LazyFields", "Record", "Related", "TemplateData", "readonly", "template_context"]


class LazyFields(MutableMapping[str, Any]):
    """Template data converted (``readonly``) field by field when a template first reads it: a
    template names a few of an event's fields, and converting them all (dates parsed, amounts
    made exact, records wrapped) cost more than rendering. What a field becomes is the same
    whenever it is converted; values set here are stored as they are.

    ``fields`` is copied when first used (most records a template is given it never reads),
    so it must not change while the template renders."""

    __slots__ = ("_source", "_fields", "_done")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._source: Mapping[str, Any] | None = fields
        self._fields: dict[str, Any] | None = None
        self._done: dict[str, Any] = {}

    @property
    def _raw(self) -> dict[str, Any]:
        raw = self._fields
        if raw is None:
            raw = self._fields = {str(k): v for k, v in (self._source or {}).items()}
            self._source = None
        return raw

    def __getitem__(self, key: str) -> Any:
        try:
            return self._done[key]
        except KeyError:
            value = self._done[key] = readonly(key, self._raw[key])
            return value

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __setitem__(self, key: str, value: Any) -> None:
        self._raw[key] = self._done[key] = value

    def __delitem__(self, key: str) -> None:
        del self._raw[key]
        self._done.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class Record(Mapping[str, Any]):
    """A read-only record: ``rec.field`` and ``rec["field"]``; no mutating methods. Its fields
    are converted when first read (``LazyFields``)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_fields", LazyFields(fields))

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("template data is read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Record({dict(self._fields.items())!r})"

    def __str__(self) -> str:
        return str({k: str(v) if not isinstance(v, str) else v for k, v in self._fields.items()})


class Related:
    """Related records as a read-only manager: ``.all``, ``.count``, ``.first``, iteration, ``.0``."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items: tuple[Record, ...] = tuple(Record(item) for item in items)

    def all(self) -> tuple[Record, ...]:
        return self._items

    def count(self) -> int:
        return len(self._items)

    def exists(self) -> bool:
        return bool(self._items)

    def first(self) -> Record | None:
        return self._items[0] if self._items else None

    def last(self) -> Record | None:
        return self._items[-1] if self._items else None

    def __getitem__(self, index: int) -> Record:
        if not isinstance(index, int):
            raise TypeError("related records are indexed by number")
        return self._items[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __str__(self) -> str:
        return ", ".join(str(item) for item in self._items)


_CONTAINERS = (Mapping, list, tuple, set, frozenset)
#: exact types that are no container, tested before the (slower) ``Mapping`` check
_SCALARS = frozenset({str, int, float, bool, type(None), Money, DateText})


def readonly(key: str | None, value: Any) -> Any:
    """``value`` as template data: records, managers and tuples instead of dicts and lists."""
    if type(value) in _SCALARS:
        return normalize(key, value)
    if isinstance(value, Record | Related):
        return value
    if isinstance(value, Mapping):
        return Record(value)
    if is_related_list(value) and not isinstance(value, tuple):
        return Related(value)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(readonly(None, item) for item in value)
    return normalize(key, value)


class TemplateData(dict[str, Any]):
    """``template_context``'s result: the top level of a Django template's data, one dict
    for one message's renders (subject, body), which ``render_django`` uses as it is."""


def template_context(event: Mapping[str, Any], operator: Any, flat: Mapping[str, Any]) -> TemplateData:
    """What a Django template sees (see the module docstring).

    Top-level values are converted here (``build_context`` already normalised nearly all
    of them: only its derived values and containers need ``readonly``), a plain dict that
    Django reads at dict speed; records and related records convert their fields when a
    template first reads them (``Record``)."""
    normalized: int = getattr(flat, "normalized", 0)
    if all(type(key) is str for key in flat):
        ctx = TemplateData(flat)
    else:  # keys are read as text; normalized keys keep their place
        ctx = TemplateData({str(key): value for key, value in flat.items()})
    items = iter(ctx.items())  # values are replaced, no key added: iterating stays valid
    for key, value in islice(items, normalized):  # normalize() gives its own output back unchanged
        if type(value) not in _SCALARS and isinstance(value, _CONTAINERS):
            ctx[key] = readonly(key, value)
    for key, value in items:  # derived values
        ctx[key] = readonly(key, value)
    data = event.get("data")
    if type(data) is dict or isinstance(data, Mapping):
        for key, value in data.items():
            if is_related_list(value):
                ctx.setdefault(str(key), Related(value))
    abonent = event.get("abonent")
    ctx["abonent"] = Record(abonent if type(abonent) is dict or isinstance(abonent, Mapping) else {})
    op = getattr(flat, "operator", None)
    ctx["operator"] = ctx["Operator"] = _operator_record(operator_fields_shared(event, operator) if op is None else op)
    return ctx


_OPERATOR_RECORDS: dict[int, tuple[Mapping[str, Any], Record]] = {}


def _operator_record(fields: Mapping[str, Any]) -> Record:
    """``Record(fields)`` for the shared operator fields: one per operator, reused by every
    render (a record is read-only and converts a field the same way each time)."""
    kept = _OPERATOR_RECORDS.get(id(fields))
    if kept is not None and kept[0] is fields:
        return kept[1]
    if len(_OPERATOR_RECORDS) >= 256:
        _OPERATOR_RECORDS.clear()
    record = Record(fields)
    _OPERATOR_RECORDS[id(fields)] = (fields, record)  # holds ``fields``: its id stays its own
    return record
