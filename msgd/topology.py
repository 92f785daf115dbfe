"""Broker names as small pure functions (dramatiq habit), shared by both brokers.

Wire layout (namespace ``msgd`` by default):

* ``msgd.events``   topic exchange billing publishes to; routing key = event type.
  Transactional types are bound to ``msgd.router.tx``; everything else falls
  through the alternate exchange ``msgd.events.other`` into ``msgd.router.bulk``,
  so an unknown event type is never dropped.
* ``msgd.internal`` topic exchange between stages; routing key = queue name
  (``render.tx``, ``send.sms.bulk``, ``status``), queue = namespace + route.
* ``msgd.parking``  fanout exchange into the parking queue ``msgd.parking``.
* ``msgd.feedback`` durable topic exchange msgd publishes to for billing (schemas/feedback.v1.json):
  ``contact.invalid.<channel>`` for a dead contact, ``message.<state>`` for final states when the
  operator asks for them. msgd binds no queue to it: billing declares its own.
"""

from __future__ import annotations

from typing import Literal

Lane = Literal["tx", "bulk"]
LANES: tuple[Lane, ...] = ("tx", "bulk")
STATUS_ROUTE = "status"


def lane_for(event_type: str, transactional_types: tuple[str, ...]) -> Lane:
    """Transactional events (password reset, manual sends) never wait behind bulk ones."""
    return "tx" if event_type in transactional_types else "bulk"


def events_exchange(ns: str) -> str:
    return f"{ns}.events"


def events_fallback_exchange(ns: str) -> str:
    return f"{ns}.events.other"


def internal_exchange(ns: str) -> str:
    return f"{ns}.internal"


def parking_exchange(ns: str) -> str:
    return f"{ns}.parking"


def feedback_exchange(ns: str) -> str:
    return f"{ns}.feedback"


def feedback_queue(ns: str) -> str:
    """The embedded broker's stand-in for the feedback exchange (it has no exchanges)."""
    return f"{ns}.feedback"


def contact_route(channel: str) -> str:
    """Routing key of a dead-contact finding: ``contact.invalid.sms``."""
    return f"contact.invalid.{channel}"


def message_route(state: str) -> str:
    """Routing key of a message's final state for billing: ``message.delivered``."""
    return f"message.{state}"


def parking_queue(ns: str) -> str:
    return f"{ns}.parking"


def router_route(lane: Lane) -> str:
    return f"router.{lane}"


def render_route(lane: Lane) -> str:
    return f"render.{lane}"


def send_route(channel: str, lane: Lane) -> str:
    return f"send.{channel}.{lane}"


def queue_for_route(ns: str, route: str) -> str:
    return f"{ns}.{route}"


def router_queues(ns: str) -> list[str]:
    return [queue_for_route(ns, router_route(lane)) for lane in LANES]


def render_queues(ns: str) -> list[str]:
    return [queue_for_route(ns, render_route(lane)) for lane in LANES]


def sender_queues(ns: str, channel: str) -> list[str]:
    return [queue_for_route(ns, send_route(channel, lane)) for lane in LANES]


def status_queue(ns: str) -> str:
    return queue_for_route(ns, STATUS_ROUTE)


def internal_routes(channels: list[str]) -> list[str]:
    """Every route on the internal exchange, one queue each."""
    routes = [render_route(lane) for lane in LANES]
    routes += [send_route(ch, lane) for ch in channels for lane in LANES]
    routes.append(STATUS_ROUTE)
    return routes
