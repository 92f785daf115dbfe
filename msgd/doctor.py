"""``msgd doctor``: check the broker, the database and every configured gateway, in plain words.

The manual's debugging section as a command: "SSL certificate problem",
"Connection refused", "Name or service not known", SMTP 550/553 and "chat
not found" each become a finding that says what is wrong and what to do.
Each channel checks its own slots (its package's ``doctor.py``, named by its
ChannelSpec's ``probe``; the building blocks are services/senders/probe.py).
Nothing is sent to a subscriber: SMTP goes as far as MAIL FROM (then RSET),
Telegram is asked getMe.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgd.redact import redact_url
from msgd.settings import Settings
from services.senders.model import SettingsInvalid
from services.senders.probe import NOTE, OK, PROBLEM, WARN, Finding, ProbeRequest, invalid
from services.senders.registry import broken_channels, channel_specs, live_channels

__all__ = ["NOTE", "OK", "PROBLEM", "WARN", "Finding", "check_broker", "check_channels", "check_database", "check_web",
           "report", "run"]

# -- broker, database, configuration -----------------------------------------------------------------
def check_broker(settings: Settings) -> list[Finding]:
    from msgd import metrics, topology

    ns = settings.namespace
    queues = [*topology.router_queues(ns), *topology.render_queues(ns), topology.status_queue(ns)]
    for ch in live_channels():
        queues += topology.sender_queues(ns, ch)
    parking = topology.parking_queue(ns)
    subject = "broker"
    try:
        broker = metrics.quick_broker(settings)
    except Exception as exc:  # noqa: BLE001
        return [Finding(PROBLEM, subject, f"cannot use MSGD_BROKER_URL: {exc}", "check MSGD_BROKER_URL")]
    found: list[Finding] = []
    try:
        missing: list[str] = []
        for q in [*queues, parking]:
            try:
                depth = broker.queue_depths([q])[q]
            except Exception as exc:  # noqa: BLE001
                if not found and not missing and _is_connection_error(exc):
                    return [Finding(PROBLEM, subject, f"cannot connect to {broker.describe()}: {exc}",
                                    "start RabbitMQ, or fix host, port, user, password and vhost in"
                                    " MSGD_BROKER_URL")]
                missing.append(q)
                continue
            if q == parking and depth:
                found.append(Finding(WARN, subject, f"{depth} message(s) are parked in {parking}",
                                     "read why (msgd parking list, or the x-msgd-reason header in the"
                                     " RabbitMQ console), fix the cause, then replay them"))
        if missing:
            found.append(Finding(PROBLEM, subject, f"queues missing: {', '.join(missing)}",
                                 "run `msgd setup` (declares exchanges and queues)"))
        if not any(f.level == PROBLEM for f in found):
            found.insert(0, Finding(OK, subject, f"connected to {broker.describe()}; {len(queues) + 1} queues"
                                    " present"))
        if len(settings.broker_urls) > 1:
            from msgd.broker.nodes import unreachable_nodes

            found += [Finding(WARN, subject, f"node {url} does not answer ({why}); the stages use the others",
                              "start that node again, or take it off MSGD_BROKER_URL if it left the cluster")
                      for url, why in unreachable_nodes(settings)]
    finally:
        broker.close()
    return found


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or "connect" in type(exc).__name__.lower() or "connection" in str(exc).lower()


def check_database(settings: Settings) -> list[Finding]:
    from msgd import store

    subject = "database"
    where = redact_url(settings.effective_database_url)
    try:
        store.setup(settings.effective_database_url)
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return [Finding(PROBLEM, subject, f"cannot connect to {where}: {exc}",
                        "start the database, or fix MSGD_DATABASE_URL")]
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return [Finding(PROBLEM, subject, f"{len(plan)} migration(s) not applied ({names}…)",
                        "run `msgd migrate` (or `msgd setup`) before starting the stages")]
    return [Finding(OK, subject, f"connected to {where}; migrations applied")]


def check_web(settings: Settings) -> list[Finding]:
    """With a real broker this is a production install: the admin's sessions must not be signed
    with the key every msgd checkout shares."""
    from django.conf import settings as django

    from msgd.store.django_settings import DEV_SECRET_KEY

    if settings.embedded or django.SECRET_KEY != DEV_SECRET_KEY:
        return []
    return [Finding(WARN, "web admin", "MSGD_SECRET_KEY is not set: sessions are signed with the"
                    " development key every msgd install shares",
                    "set MSGD_SECRET_KEY to a long random string (python3 -c 'import secrets;"
                    " print(secrets.token_urlsafe(50))') for every msgd process")]


def check_channels(settings: Settings) -> Iterator[Finding]:
    """Every configured slot, checked by its channel's probe (outbox slots only say so)."""
    from msgd.store.cache import ConfigCache

    for broken in broken_channels():
        yield Finding(PROBLEM, f"channel {broken.name}", f"the plug-in {broken.target} {broken.reason}",
                      "fix or uninstall the distribution that registers it (entry point group msgd.channels)")
    specs = channel_specs()
    cache = ConfigCache(0)
    cache.refresh()
    for op in sorted(cache.operators(), key=lambda o: o.code):
        for channel, configs in sorted(op.channels.items()):
            for cfg in configs:
                subject = f"operator {op.code}: {channel}" + (f" #{cfg.position}" if len(configs) > 1 else "")
                spec = specs.get(channel)
                values = {**cfg.params, **cfg.secrets}
                if cfg.outbox:
                    yield Finding(WARN, subject, f"writes to {settings.outbox_dir} (outbox) instead of sending",
                                  "set outbox: false and fill in the gateway to send for real")
                elif spec is None:
                    yield Finding(PROBLEM, subject, f"no installed channel is called {channel!r}: its messages fail",
                                  "install the plug-in that provides it, or delete these settings")
                elif spec.probe is not None:
                    yield from spec.probe(ProbeRequest(subject, values, settings, op.email or ""))
                else:
                    try:
                        spec.settings.parse(values)
                    except SettingsInvalid as exc:
                        yield invalid(subject, exc)
                    else:
                        yield Finding(OK, subject, "settings are valid (this channel has no further checks)")


def run(settings: Settings, gateways: bool = True) -> list[Finding]:
    found = [*check_broker(settings)]
    db = check_database(settings)
    found += db
    if any(f.level == PROBLEM for f in db):
        return found  # the rest reads the store
    found += check_web(settings)
    if gateways:
        found += list(check_channels(settings))
    return found


def report(findings: list[Finding]) -> tuple[str, int]:
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARN for f in findings)
    text = "\n".join(f.render() for f in findings)
    notes = sum(f.level == NOTE for f in findings)
    summary = (f"{problems} problem(s), {warnings} warning(s)" if problems or warnings
               else "everything msgd needs answers")
    if notes:
        summary += f"; {notes} note(s): what msgd cannot check from here"
    return f"{text}\n\n{summary}\n", 1 if problems else 0
