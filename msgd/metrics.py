"""Prometheus metrics shared by the stages (names follow Prometheus conventions)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_RECEIVED = Counter("msgd_events_received_total", "Events taken by the router", ["type"])
EVENTS_ROUTED = Counter("msgd_events_routed_total", "Render jobs produced by the router", ["type"])
PARKED = Counter("msgd_messages_parked_total", "Messages moved to the parking queue", ["stage"])
MESSAGES_FINAL = Counter(
    "msgd_messages_total", "Messages by channel and final state", ["channel", "state"]
)
RENDER_FAILURES = Counter("msgd_render_failures_total", "Templates that failed to render", ["channel"])
RETRIES = Counter("msgd_retries_total", "Delivery attempts scheduled again", ["channel", "reason"])
QUIET_DELAYS = Counter("msgd_quiet_hour_delays_total", "Messages delayed by quiet hours", ["channel"])
DUPLICATES = Counter(
    "msgd_duplicate_sends_prevented_total", "Deliveries skipped because the message was already claimed",
    ["channel"],
)
SEND_SECONDS = Histogram(
    "msgd_send_duration_seconds", "Time spent in one delivery attempt", ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge("msgd_messages_in_flight", "Deliveries in progress", ["channel"])


def serve(port: int) -> None:
    if port:
        start_http_server(port)
