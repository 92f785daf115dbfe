"""Renderer stage: render job -> one outbound message per recipient."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import structlog

from msgd import logs, metrics
from msgd import topology as topo
from msgd.broker.base import Outgoing
from msgd.envelope import (
    FAILED,
    FAULT_CONTENT,
    FAULT_GATEWAY,
    QUEUED,
    dumps,
    message_id,
    outcome_id,
)
from msgd.settings import Settings
from msgd.stage import Received
from msgd.status import event_fields, status
from msgd.store.cache import ConfigCache, OperatorView
from services.renderer.markup import channel_markup
from services.renderer.render import RenderError, render
from services.senders.base import Outbound
from services.senders.registry import sender_classes

log = structlog.get_logger("msgd.renderer")


def dedup_key(event: dict[str, Any], op: OperatorView) -> str:
    """What makes two events "the same" for the once-only claim.

    N-day warnings go at most once per subscriber per day, even when billing
    publishes twice with different event ids; everything else is keyed by event id.
    """
    if event.get("type") == "days_before_block":
        try:
            when = dt.datetime.fromisoformat(str(event.get("occurred_at")))
        except ValueError:
            when = dt.datetime.now(dt.UTC)
        day = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(op.timezone).date()
        return f"days_before_block:{op.code}:{event['abonent']['id']}:{day.isoformat()}"
    return str(event["event_id"])


def sender_address(event: dict[str, Any], op: OperatorView, domain: str) -> str:
    """Manual sends come from the admin, system messages from the operator, else root@<domain>."""
    if event.get("type") == "manual":
        admin = (event.get("manual") or {}).get("admin_email")
        if admin:
            return str(admin)
    return op.email or f"root@{domain}"


class RendererStage:
    name = "renderer"

    def __init__(self, settings: Settings, cache: ConfigCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or ConfigCache(settings.config_refresh_seconds)
        self.senders = sender_classes()
        for channel in self.senders:  # render failures count from 0 (metrics.count_failures_from_zero)
            metrics.count_failures_from_zero(channel, "none")

    def handle(self, items: list[Received]) -> Sequence[Outgoing]:
        out: list[Outgoing] = []
        for item in items:
            job = item.payload
            event = job.get("event") or {}
            with logs.bound(
                event_id=str(event.get("event_id", "")), channel=str(job.get("channel", "")),
                operator=str((event.get("operator") or {}).get("code", "")),
            ):
                out.extend(self.render_job(job))
        return out

    def render_job(self, job: dict[str, Any]) -> list[Outgoing]:
        event, channel, lane = job["event"], job["channel"], job.get("lane", "bulk")
        tid = job.get("template_id")
        base = {**event_fields(event), "template_id": tid, "channel": channel, "lane": lane}
        template = self.cache.template(tid) if tid is not None else None
        op = self.cache.operator(base["operator_code"])
        if template is None or op is None:
            what = f"template #{tid}" if template is None else f"operator {base['operator_code']!r}"
            # No template: nothing to send (content); no operator: its configuration (gateway).
            fault = FAULT_CONTENT if template is None else FAULT_GATEWAY
            mid = outcome_id(base["event_id"], tid, channel, FAILED)
            metrics.MESSAGES_FINAL.labels(channel, FAILED).inc()
            metrics.FAILURES.labels(channel, "none", fault).inc()
            log.warning("message not rendered", message_id=mid, reason=f"{what} was deleted")
            return [status(mid, FAILED, message=base, reason=f"{what} was deleted before the message was rendered",
                           fault=fault, code="content.refused" if template is None else "gateway.not_configured")]
        try:
            rendered = render(template, event, op.as_context(), html=channel == "email",
                              markup=channel_markup(channel, op.channels.get(channel)))
        except RenderError as exc:
            metrics.RENDER_FAILURES.labels(channel).inc()
            mid = outcome_id(base["event_id"], tid, channel, FAILED)
            metrics.MESSAGES_FINAL.labels(channel, FAILED).inc()
            metrics.FAILURES.labels(channel, "none", FAULT_CONTENT).inc()
            log.warning("render failed", message_id=mid, template=tid, error=str(exc))
            return [status(mid, FAILED, message=base, reason=f"render error: {exc}", fault=FAULT_CONTENT,
                           code="content.render_error")]
        contacts = (event.get("abonent") or {}).get("contacts") or {}
        key = dedup_key(event, op)
        out: list[Outgoing] = []
        for recipient in self.senders[channel].recipients(contacts):
            msg = Outbound(
                message_id=message_id(key, tid, channel, recipient),
                event_id=base["event_id"], event_type=base["event_type"], operator_code=op.code,
                channel=channel, recipient=recipient, body=rendered.body,
                subject=rendered.subject or op.default_subject, html=rendered.html,
                sender=sender_address(event, op, self.settings.domain), lane=lane, template_id=tid,
                abonent_id=base["abonent_id"], abonent_name=base["abonent_name"],
                created_at=base["created_at"],
            )
            wire = msg.to_wire()
            out.append(Outgoing(route=topo.send_route(channel, lane), body=dumps(wire)))
            out.append(status(msg.message_id, QUEUED, message=wire))
            log.debug("message rendered", message_id=msg.message_id, template=tid)
        return out
