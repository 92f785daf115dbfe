"""Publishing billing events: ``msgd publish`` and the HTTP API / web admin share this.

No Django here, so the command line can use it without loading the web code.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from msgd.settings import Settings

_setup_lock = threading.Lock()
_declared: set[str] = set()


def publish_events(settings: Settings, events: Sequence[Mapping[str, Any]], *,
                   declare_once: bool = False) -> str:
    """Publish events to the events exchange (routing key = ``type``) with publisher confirms.

    The exchanges and queues are declared first (every call, or once per process and broker
    with ``declare_once``: a long-running web process publishes many times). Raises
    PublishError / OSError when the broker does not take them. Returns the broker's description.
    """
    from msgd.broker import Outgoing
    from msgd.envelope import dumps

    return publish(settings, [Outgoing(route=str(e.get("type", "")), body=dumps(e), exchange="events")
                              for e in events], declare_once=declare_once)


def publish(settings: Settings, items: Sequence[Any], *, declare_once: bool = False) -> str:
    """Publish ``Outgoing`` messages with publisher confirms (see ``publish_events``)."""
    from msgd.broker import make_broker
    from services.senders.registry import live_channels

    broker = make_broker(settings)
    try:
        if declare_once:
            key = f"{settings.broker_url}|{settings.namespace}|{settings.var_dir}"
            with _setup_lock:
                if key not in _declared:
                    broker.setup(live_channels())
                    _declared.add(key)
        else:
            broker.setup(live_channels())
        broker.publish(list(items))
        return broker.describe()
    finally:
        broker.close()
