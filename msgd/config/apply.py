"""Loading a configuration file into the store: all or nothing, idempotent.

Operators are matched by ``code``; channel slots by (operator, channel, position); templates by
(owner, event, channel, name). A template without ``name`` gets the stable name
``<event>/<channel or any>`` (the report says so); a stored template without a name is adopted
by it. Omitted fields take their defaults, so the file is the whole truth about what it lists.
Operators and templates not in the file are left alone; an operator's ``channels:`` is its
complete list (slots not listed are deleted, the report counts them); without ``channels:`` they
are left alone. Every problem is reported at once: the file's own (msgd/config/parse.py) and
those only the store can tell (an owner that does not exist, ``***`` with nothing stored), and
any of them leaves the store as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from msgd.config.channels import Slot, Stored
from msgd.config.masking import inline_secrets
from msgd.config.parse import CheckTemplate, Parsed, parse
from msgd.config.problems import Problems
from msgd.config.yamlio import ConfigError, read
from msgd.redact import register_secrets
from services.renderer.render import check_template as render_check

KINDS = ("operators", "channels", "templates")
WarnTemplate = Callable[[Any], "list[str]"]


@dataclass
class LoadReport:
    """What a load changed, per kind (operators, channels, templates)."""

    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or any(self.deleted.values())

    def summary(self) -> str:
        lines = []
        for kind in KINDS:
            parts = [f"{self.created[kind]} created", f"{self.updated[kind]} updated",
                     f"{self.unchanged[kind]} unchanged"]
            if self.deleted[kind]:
                parts.append(f"{self.deleted[kind]} deleted")
            lines.append(f"{kind}: {', '.join(parts)}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _stored_slots(code: str) -> Stored:
    """The stored (params, secrets) of operator ``code``'s slots, for ``***`` in the file."""
    from msgd.store.models import ChannelSettings

    rows = {(r.channel, r.position): (dict(r.params or {}), dict(r.secrets or {}))
            for r in ChannelSettings.objects.filter(operator__code=code)}
    return lambda channel, position: rows.get((channel, position))


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    check_template: CheckTemplate | None = None,
    warn_template: WarnTemplate | None = None,
) -> LoadReport:
    """Load a YAML file (path), YAML text or parsed mapping into the store.

    All or nothing; raises ConfigError (nothing changed) listing every problem with its place
    and line. ``check_template`` refuses a template (returns why; default: the renderer's syntax
    check); ``warn_template`` returns warnings that do not stop the load (they join the report's
    notes). The store must be set up (``msgd.store.setup()``) and migrated.
    """
    from django.db import transaction

    data, marks = read(source)
    parsed, problems = parse(data, marks, check_template=check_template or render_check,
                             stored=_stored_slots)
    report = LoadReport(notes=list(parsed.notes))
    secrets: list[Any] = []

    class _Refused(Exception):
        pass

    try:
        with transaction.atomic():  # run even with problems: the store may know of more
            _apply(parsed, report, problems, secrets, warn_template)
            if problems:
                raise _Refused
    except _Refused:
        raise ConfigError(problems.errors()) from None
    register_secrets(secrets)
    return report


def _save_if_changed(obj: Any, fields: dict[str, Any]) -> bool:
    changed = [k for k, v in fields.items() if getattr(obj, k) != v]
    for k in changed:
        setattr(obj, k, fields[k])
    if changed:
        obj.save()
    return bool(changed)


def _apply(parsed: Parsed, report: LoadReport, problems: Problems, secrets: list[Any],
           warn_template: WarnTemplate | None) -> None:
    from msgd.store.models import ChannelSettings, Operator

    operators: dict[str, Any] = {}
    for op in parsed.operators:
        obj = Operator.objects.filter(code=op.code).first()
        if obj is None:
            obj = Operator.objects.create(code=op.code, **op.fields)
            report.created["operators"] += 1
        elif _save_if_changed(obj, op.fields):
            report.updated["operators"] += 1
        else:
            report.unchanged["operators"] += 1
        operators[op.code] = obj
        if op.channels is None:
            continue
        wanted = {(s.channel, s.position) for s in op.channels}
        for row in ChannelSettings.objects.filter(operator=obj):
            if (row.channel, row.position) not in wanted:
                report.notes.append(f"{problems.place((*op.path, 'channels'))}: deleted {row.channel} position"
                                    f" {row.position} (not in the file)")
                row.delete()
                report.deleted["channels"] += 1
        for s in op.channels:
            _apply_channel(obj, s, report, secrets)
    _apply_templates(parsed, operators, report, problems, warn_template)


def _apply_templates(parsed: Parsed, operators: dict[str, Any], report: LoadReport, problems: Problems,
                     warn_template: WarnTemplate | None) -> None:
    from msgd.store.models import Operator, Template

    for t in parsed.templates:
        owner = None
        if t.owner is not None:
            owner = operators.get(t.owner) or Operator.objects.filter(code=t.owner).first()
            if owner is None:
                if t.owner not in parsed.codes:  # an operator of the file with problems of its own
                    problems.add((*t.path, "owner"), f"no operator with code {t.owner!r} (in this file or the"
                                                     " store)")
                continue
        found = _find_templates(Template, owner, t.fields["event_type"], t.fields["channel"], t.name)
        if not found and t.generated_name:
            found = _find_templates(Template, owner, t.fields["event_type"], t.fields["channel"], "")[:1]
        if len(found) > 1:
            ids = ", ".join(str(f.id) for f in found)
            problems.add(t.path, f"{len(found)} stored templates (ids {ids}) have this owner, event, channel and"
                                 " name; rename them so one matches")
            continue
        fields = {**t.fields, "name": t.name}
        obj = found[0] if found else Template(owner=owner, **fields)
        changed: list[str] = []
        if found:
            if not found[0].name:
                report.notes.append(f"{problems.place(t.path)}: adopted stored template id {obj.id}, which had"
                                    " no name")
            changed = [k for k, v in fields.items() if getattr(obj, k) != v]
            for k in changed:
                setattr(obj, k, fields[k])
        for warning in warn_template(obj) if warn_template else ():
            report.notes.append(f"{problems.place(t.path)}: warning: {warning}")
        if not found:
            obj.save()
            report.created["templates"] += 1
        elif changed:
            obj.save()
            report.updated["templates"] += 1
        else:
            report.unchanged["templates"] += 1


def _find_templates(model: Any, owner: Any, event: str, channel: str | None, name: str) -> list[Any]:
    from django.db.models import Q

    qs = model.objects.filter(event_type=event, name=name)
    qs = qs.filter(owner__isnull=True) if owner is None else qs.filter(owner=owner)
    qs = qs.filter(Q(channel__isnull=True) | Q(channel="")) if channel is None else qs.filter(channel=channel)
    return list(qs.order_by("id"))


def _apply_channel(op: Any, s: Slot, report: LoadReport, secrets: list[Any]) -> None:
    from msgd.store.models import ChannelSettings

    row = ChannelSettings.objects.filter(operator=op, channel=s.channel, position=s.position).first()
    secrets += list(s.secrets.values())
    secrets += [x for v in s.params.values() if isinstance(v, str) for x in inline_secrets(v)]
    fields = {"enabled": s.enabled, "outbox": s.outbox, "params": s.params, "secrets": s.secrets}
    if row is None:
        ChannelSettings.objects.create(operator=op, channel=s.channel, position=s.position, **fields)
        report.created["channels"] += 1
    elif _save_if_changed(row, fields):
        report.updated["channels"] += 1
    else:
        report.unchanged["channels"] += 1
