"""Router stage: billing event -> render jobs (one per template and channel)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from msgd import logs, metrics
from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import RENDER_JOB_KIND, dumps, outcome_id
from msgd.schemas import too_many_values, validate_event
from msgd.settings import Settings
from msgd.stage import Received, park
from msgd.status import event_fields, status
from msgd.store.cache import ConfigCache, TemplateView
from services.router.matching import MANUAL, RENDER, decide
from services.senders.registry import sender_classes

log = structlog.get_logger("msgd.router")

# Characters of one schema error quoted in a parking reason (an unknown field's name, a value).
ERROR_SHOWN = 300


def _clip(text: str, limit: int = ERROR_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class RouterStage:
    name = "router"

    def __init__(self, settings: Settings, cache: ConfigCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or ConfigCache(settings.config_refresh_seconds)
        self.senders = sender_classes()

    def handle(self, items: list[Received]) -> Sequence[Outgoing]:
        out: list[Outgoing] = []
        for item in items:
            event = item.payload
            operator = event.get("operator")
            with logs.bound(  # clipped: the schema is not checked yet
                event_id=_clip(str(event.get("event_id", "")), 128),
                operator=_clip(str(operator.get("code", "") if isinstance(operator, dict) else ""), 64),
            ):
                out.extend(self.route(item))
        return out

    def templates(self, event: dict[str, Any]) -> list[TemplateView]:
        """The templates of the event's type; for a manual send, also the chosen template whatever
        its type (the manual's form offers every template: a password-reset template sent by hand)."""
        templates = self.cache.templates_for(event["type"])
        chosen = (event.get("manual") or {}).get("template_id") if event["type"] == MANUAL else None
        if isinstance(chosen, int) and all(t.id != chosen for t in templates):
            template = self.cache.template(chosen)
            if template is not None:
                return [*templates, template]
        return templates

    def route(self, item: Received) -> list[Outgoing]:
        event = item.payload
        oversized = too_many_values(event)
        if oversized:
            return [park(item.delivery, self.name, oversized)]
        errors = validate_event(event)
        if errors:
            more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
            return [park(item.delivery, self.name, "event does not match schemas/event.v1.json: "
                         + "; ".join(_clip(e) for e in errors[:10]) + more)]
        etype = event["type"]
        metrics.child(metrics.EVENTS_RECEIVED, etype).inc()
        code = event["operator"]["code"]
        op = self.cache.operator(code)
        if op is None:
            return [park(item.delivery, self.name,
                         f"operator {code!r} is not configured: add it (msgd config load) and replay this event")]
        lane = topo.lane_for(etype, self.settings.transactional_types)
        base = event_fields(event)
        out: list[Outgoing] = []
        for d in decide(event, op, self.templates(event), self.senders):
            tid = d.template.id if d.template else None
            if d.outcome == RENDER:
                job: dict[str, Any] = {
                    "v": 1, "kind": RENDER_JOB_KIND, "event": event, "template_id": tid,
                    "channel": d.channel, "lane": lane,
                }
                out.append(Outgoing(route=topo.render_route(lane), body=dumps(job)))
                metrics.child(metrics.EVENTS_ROUTED, etype).inc()
            else:
                mid = outcome_id(base["event_id"], tid, d.channel, d.outcome)
                fields = {**base, "template_id": tid, "channel": d.channel or "", "lane": lane}
                out.append(status(mid, d.outcome, message=fields, reason=d.reason))
                metrics.child(metrics.MESSAGES_FINAL, d.channel or "", d.outcome).inc()
                log.info("event produced no message", message_id=mid, channel=d.channel or "",
                         outcome=d.outcome, reason=d.reason)
        return out
