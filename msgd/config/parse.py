"""Checking a whole configuration file: every problem at once, each with its place and line.

Operators and templates are checked by their models (msgd/config/entries.py), channel slots by
their channel's model (msgd/config/channels.py), template texts by the renderer's syntax check;
one bad value never hides another. Nothing here writes to the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ValidationError

from msgd.config.channels import Slot, Stored, check_channels
from msgd.config.entries import FORMAT_VERSION, OperatorEntry, TemplateEntry
from msgd.config.problems import Problems
from msgd.config.yamlio import Marks, Path_
from msgd.storable import unstorable_paths
from services.senders.model import did_you_mean, plain_words

TOP_KEYS = ("version", "operators", "templates")
CheckTemplate = Callable[[Any], "str | None"]


@dataclass
class ParsedOperator:
    path: Path_
    code: str
    fields: dict[str, Any]
    channels: list[Slot] | None  # None: the file has no `channels:` key for it


@dataclass
class ParsedTemplate:
    path: Path_
    owner: str | None
    name: str
    generated_name: bool
    fields: dict[str, Any]


@dataclass
class Parsed:
    """What the file holds that passed every check (the rest is in the problems)."""

    operators: list[ParsedOperator] = field(default_factory=list)
    templates: list[ParsedTemplate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)  # every operator code the file names, valid or not


def _entry(model: type[BaseModel], raw: Any, path: Path_, problems: Problems) -> Any:
    """``raw`` validated by ``model``, or None with its problems added."""
    if not isinstance(raw, dict):
        problems.add(path, f"must be a mapping (key: value), got {type(raw).__name__}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            problems.add((*path, *e["loc"]), plain_words(e, model))
    return None


def parse(data: Any, marks: Marks | None = None, *, check_template: CheckTemplate | None = None,
          stored: Callable[[str], Stored] | None = None) -> tuple[Parsed, Problems]:
    """Check the whole file. ``check_template`` returns why a template's text cannot render (the
    renderer's check); ``stored(code)`` gives that operator's stored slots, so ``***`` can stand
    for a stored secret. Returns what passed and every problem."""
    problems = Problems(marks or {})
    out = Parsed()
    data = {} if data is None else data
    unstorable = unstorable_paths(data)  # PostgreSQL would refuse the row half-way through the load
    if unstorable:
        for path, why in unstorable:
            problems.add(tuple(path), why)
        return out, problems
    if not isinstance(data, dict):
        problems.add((), f"must be a mapping with operators and templates, got {type(data).__name__}")
        return out, problems
    for key in data:
        if key not in TOP_KEYS:
            problems.add((key,), f"unknown key{did_you_mean(str(key), list(TOP_KEYS))} (known: {', '.join(TOP_KEYS)})")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        problems.add(("version",), f"unsupported version {version!r} (this msgd reads version {FORMAT_VERSION})")
    _operators(data.get("operators"), problems, out, stored)
    _templates(data.get("templates"), problems, out, check_template)
    return out, problems


def _operators(raw: Any, problems: Problems, out: Parsed, stored: Callable[[str], Stored] | None) -> None:
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        problems.add(("operators",), "must be a list of operators (- code: ...)")
        return
    codes: dict[str, Path_] = {}
    for i, item in enumerate(raw):
        path: Path_ = ("operators", i)
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str | int) and not isinstance(code, bool):
            problems.name(path, str(code))
            out.codes.add(str(code))
        fields = {k: v for k, v in item.items() if k != "channels"} if isinstance(item, dict) else item
        entry = _entry(OperatorEntry, fields, path, problems)
        slots = None
        if isinstance(item, dict) and "channels" in item:  # checked even when the operator is not
            lookup = stored(str(code)) if stored and isinstance(code, str) else None
            slots = check_channels(item["channels"], (*path, "channels"), problems, lookup, out.notes)
        if entry is None:
            continue
        if entry.code in codes:
            problems.labels.pop(path, None)  # two of one name: this one by its place
            problems.add((*path, "code"), f"{entry.code!r} is already used by {problems.place(codes[entry.code])}")
            continue
        codes[entry.code] = path
        out.operators.append(ParsedOperator(path, entry.code, entry.store_fields(), slots))


def _templates(raw: Any, problems: Problems, out: Parsed, check_template: CheckTemplate | None) -> None:
    raw = [] if raw is None else raw
    if not isinstance(raw, list):
        problems.add(("templates",), "must be a list of templates (- event: ...)")
        return
    keys: dict[tuple[Any, ...], Path_] = {}
    for i, item in enumerate(raw):
        path: Path_ = ("templates", i)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name.strip():
            problems.name(path, name.strip())
        entry = _entry(TemplateEntry, item, path, problems)
        if entry is None:
            continue
        fields = entry.store_fields()
        name = entry.name.strip()
        generated = not name
        if generated:
            name = f"{entry.event}/{entry.channel or 'any'}"
            out.notes.append(f"{problems.place(path)}: has no name; it is matched as {name!r} (add `name:` to keep"
                             " it matched when you change its event or channel)")
        if entry.every_day and entry.event != "days_before_block":
            out.notes.append(f"{problems.place((*path, 'every_day'))}: only days_before_block templates use it")
        reason = check_template(SimpleNamespace(id=None, name=name, owner=None, owner_id=None, **fields)) \
            if check_template else None
        if reason:
            part, sep, why = reason.partition(": ")
            located = bool(sep) and part in ("subject", "body")
            problems.add((*path, part) if located else path, why if located else reason)
            continue
        key = (entry.owner, entry.event, entry.channel, name)
        if key in keys:
            problems.labels.pop(path, None)
            problems.add(path, f"same owner, event, channel and name as {problems.place(keys[key])}: give it"
                               " another name")
            continue
        keys[key] = path
        out.templates.append(ParsedTemplate(path, entry.owner, name, generated, fields))
