"""Publishing billing events: ``msgd publish`` and the HTTP API / web admin share this.

No Django here, so the command line can use it without loading the web code.

A web process publishes through one broker connection (and channel, in confirm mode) of its
own, opened on the first request and reused by every later one (``reuse=True``): opening an
AMQP connection per request cost more than the request. One publish at a time goes through it
(a lock); the messages of one request are published together and their confirms awaited
together (``Broker.publish``). A connection found broken on use (RabbitMQ restarted since the
last request) is replaced and the publish tried once more on the new one; a refusal by the
broker (a nack, an unroutable message, no confirm in time) is final. Each forked process opens
its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from msgd.settings import Settings

_setup_lock = threading.Lock()
_declared: set[str] = set()
_publish_lock = threading.Lock()
_brokers: dict[tuple[int, str], Any] = {}  # (process id, broker key) -> the broker kept open


def publish_events(settings: Settings, events: Sequence[Mapping[str, Any]], *,
                   declare_once: bool = False, reuse: bool = False) -> str:
    """Publish events to the events exchange (routing key = ``type``) with publisher confirms.

    The exchanges and queues are declared first (every call, or once per process and broker
    with ``declare_once``: a long-running web process publishes many times; ``reuse`` keeps the
    connection open for the next call, see the module doc). Raises PublishError / OSError when
    the broker does not take them. Returns the broker's description.
    """
    from msgd.broker import Outgoing
    from msgd.envelope import dumps

    items = [Outgoing(route=str(e.get("type", "")), body=dumps(e), exchange="events") for e in events]
    if reuse:
        return publish_reusing(settings, items)
    return publish(settings, items, declare_once=declare_once)


def _key(settings: Settings) -> str:
    return f"{settings.broker_url}|{settings.namespace}|{settings.var_dir}"


def publish_reusing(settings: Settings, items: Sequence[Any]) -> str:
    """Publish ``Outgoing`` messages with confirms through this process's kept connection."""
    from msgd.broker.base import PublishError

    key = (os.getpid(), _key(settings))
    with _publish_lock:
        broker = _brokers.pop(key, None)
        fresh = broker is None
        if broker is None:
            broker = _opened(settings)
        try:
            broker.publish(list(items))
        except PublishError as exc:
            broker.close()
            if fresh or exc.__cause__ is None:  # refused by the broker, or failed on a new connection
                raise
            broker = _opened(settings)  # the kept connection had broken: once more, on a new one
            try:
                broker.publish(list(items))
            except BaseException:
                broker.close()
                raise
        except BaseException:
            broker.close()
            raise
        _brokers[key] = broker  # kept only after a publish it carried
        return str(broker.describe())


def _opened(settings: Settings) -> Any:
    from msgd.broker import make_broker
    from services.senders.registry import live_channels

    broker = make_broker(settings)
    try:
        broker.setup(live_channels())
    except BaseException:
        broker.close()
        raise
    return broker


def publish(settings: Settings, items: Sequence[Any], *, declare_once: bool = False) -> str:
    """Publish ``Outgoing`` messages with publisher confirms (see ``publish_events``)."""
    from msgd.broker import make_broker
    from services.senders.registry import live_channels

    broker = make_broker(settings)
    try:
        if declare_once:
            key = _key(settings)
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
