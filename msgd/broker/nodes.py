"""The RabbitMQ nodes of MSGD_BROKER_URL, each on its own (``msgd doctor``).

Failover hides a dead node from the stages: they just use another one. The doctor looks at
every node of the list so that the operator learns of it before the next one fails too.
"""

from __future__ import annotations

from kombu.connection import Connection

from msgd.redact import redact_text, redact_url
from msgd.settings import Settings


def unreachable_nodes(settings: Settings, timeout: float = 2.0) -> list[tuple[str, str]]:
    """(node URL with its password masked, why) for every node of the list that does not
    accept an AMQP connection: one attempt each, ``timeout`` seconds at most."""
    down = []
    for url in settings.broker_urls:
        conn = Connection(url, connect_timeout=timeout)
        try:
            conn.ensure_connection(max_retries=0)
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            down.append((redact_url(url), redact_text(str(exc)) or type(exc).__name__))
        finally:
            conn.release()
    return down
