"""Preview: render a stored template for an event exactly as it would be sent.

``msgd template render`` and the web admin call ``preview``; it takes the
same path as the renderer stage (context, syntax, subject fallback, HTML for
e-mail) without publishing anything.
"""

from __future__ import annotations

from typing import Any

from msgd.store.cache import ConfigCache
from services.renderer.render import Rendered, RenderError, render
from services.senders import normalize_channel


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
    rendered = render(template, event, op.as_context(), html=chosen == "email")
    if not rendered.subject:
        rendered.subject = op.default_subject
    return chosen, rendered


__all__ = ["PreviewError", "RenderError", "find_template", "preview"]
