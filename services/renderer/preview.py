"""Preview: render a stored template for an event exactly as it would be sent.

``msgd template render`` and the web admin call ``preview``; it takes the
same path as the renderer stage (context, syntax, subject fallback, HTML for
e-mail, Telegram's parse mode) without publishing anything, and adds warnings
for variables the event lacks (a Django template renders them empty).
Loading and saving a template check it against the sample event of its type
(``sample_warnings``).
"""

from __future__ import annotations

import json
from typing import Any

from msgd.settings import ROOT
from msgd.store.cache import ConfigCache
from services.renderer.markup import channel_markup
from services.renderer.render import Rendered, RenderError, render, template_warnings
from services.senders.registry import normalize_channel

EXAMPLES = ROOT / "examples" / "events"


class PreviewError(Exception):
    """The template or the operator cannot be found (not a rendering problem)."""


def find_template(ref: str) -> Any:
    """A stored template by id or by exact name."""
    from msgd.store.models import Template

    found = Template.objects.filter(id=int(ref)) if ref.isdigit() else Template.objects.filter(name=ref)
    rows = list(found[:2])
    if not rows:
        raise PreviewError(f"no template with id or name {ref!r}")
    if len(rows) > 1:
        raise PreviewError(f"several templates are named {ref!r}: give its id")
    return rows[0]


def preview(template: Any, event: dict[str, Any], channel: str | None = None) -> tuple[str, Rendered]:
    """(channel, rendered subject/body/html) for ``template`` and ``event``; raises RenderError."""
    cache = ConfigCache(refresh_seconds=0)
    code = str((event.get("operator") or {}).get("code", ""))
    op = cache.operator(code)
    if op is None:
        raise PreviewError(f"operator {code!r} from the event is not configured")
    chosen = normalize_channel(channel) or normalize_channel(template.channel) or "sms"
    rendered = render(template, event, op.as_context(), html=chosen == "email",
                      markup=channel_markup(chosen, op.channels.get(chosen)))
    if not rendered.subject:
        rendered.subject = op.default_subject
    rendered.warnings = template_warnings(template, event, op.as_context())
    return chosen, rendered


def sample_event(event_type: str, operator_code: str | None = None) -> tuple[str, dict[str, Any]]:
    """(file name, event): the example event of this type (``examples/events/<type>.json``),
    else low_balance's renamed to this type; FileNotFoundError when msgd runs without its
    examples directory."""
    path = EXAMPLES / f"{event_type}.json"
    if not path.exists():
        path = EXAMPLES / "low_balance.json"
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    event["type"] = event_type
    if operator_code:
        event["operator"] = {"code": operator_code}
    return f"examples/events/{path.name}", event


def sample_warnings(template: Any) -> list[str]:
    """Warnings for a template being loaded or saved, checked against the sample event of
    its type (see ``sample_event``); none when the examples are not installed."""
    try:
        where, event = sample_event(template.event_type)
    except (FileNotFoundError, ValueError):
        return []
    owner = getattr(template, "owner", None) if getattr(template, "owner_id", None) else None
    return [f"{w} (sample {where})" for w in template_warnings(template, event, owner)]


__all__ = ["PreviewError", "RenderError", "find_template", "preview", "sample_event", "sample_warnings"]
