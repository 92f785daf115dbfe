"""The ``msgd`` command."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from msgd.settings import ROOT, Settings

PREINSTALLED = ROOT / "msgd" / "data" / "templates.ru.yaml"


def _store(settings: Settings, migrate: bool = False) -> None:
    from msgd import store

    store.setup(settings.effective_database_url)
    if migrate:
        store.migrate()


def _read_events(source: str) -> list[dict[str, Any]]:
    """One event, a list of events or JSON lines from a file (or stdin), decoded as the API
    decodes bodies (msgd.safejson: UTF-8, depth, digits and Unicode checked); SystemExit
    naming the problem otherwise."""
    from msgd.safejson import InvalidJSON, loads

    try:
        raw = (sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()).strip()
    except FileNotFoundError:
        raise SystemExit(f"{source}: no such file") from None
    except OSError as exc:  # a directory, no permission...
        raise SystemExit(f"{source}: cannot read ({exc.strerror or exc})") from None
    raw = raw.removeprefix(b"\xef\xbb\xbf").strip()  # a file saved "UTF-8 with BOM" (as config load reads it)
    if not raw:
        raise SystemExit("no event given")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SystemExit(f"{source}, line {line}: not UTF-8 text (byte {exc.start})") from None
    size = len(raw)  # a file may hold many events: no size limit here
    try:
        data = loads(raw, max_bytes=size)
    except InvalidJSON as whole:
        lines = [(n, line) for n, line in enumerate(raw.splitlines(), start=1) if line.strip()]
        if len(lines) < 2 or not whole.reason.startswith("body is not valid JSON"):
            raise SystemExit(f"{source}: {whole.reason}") from None
        data = []
        for n, line in lines:  # JSON lines: one event per line
            try:
                data.append(loads(line, max_bytes=size))
            except InvalidJSON as exc:
                raise SystemExit(f"{source}, line {n}: {exc.reason}") from None
    events = data if isinstance(data, list) else [data]
    if not all(isinstance(e, dict) for e in events):
        raise SystemExit(f"{source}: expected a JSON object, a list of objects or JSON lines")
    return events


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from msgd.publishing import publish_events
    from msgd.schemas import validate_event

    events = [e for source in args.files for e in _read_events(source)]
    if args.new_id:  # the event id is the idempotency key: a reused one is delivered once only
        import uuid

        for e in events:
            e["event_id"] = f"{e.get('type', 'event')}-{uuid.uuid4().hex[:12]}"
    problems = [(i, validate_event(e)) for i, e in enumerate(events)]
    bad = [(i, errs) for i, errs in problems if errs]
    if bad and not args.no_validate:
        for i, errs in bad:
            print(f"event #{i + 1} is invalid:", *(f"  - {e}" for e in errs), sep="\n", file=sys.stderr)
        return 2
    where = publish_events(settings, events)
    for e in events:
        print(f"published {e.get('type')} event {e.get('event_id')} to {where}")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from msgd import logs, metrics, runner

    logs.configure(settings.log_format, settings.log_level)
    import structlog

    log = structlog.get_logger("msgd")
    _store(settings, migrate=settings.embedded or args.migrate)
    if settings.embedded:
        log.warning(
            "embedded mode: no MSGD_BROKER_URL, using the SQLite broker",
            file=str(settings.embedded_broker_path),
            promises="messages survive a restart of this process; delays and retries work",
            not_promised="one machine only, no replication, no scaling out, modest throughput;"
            " set MSGD_BROKER_URL=amqp://... for production",
        )
    if not settings.enabled:
        log.warning("sending is switched off (MSGD_ENABLED=0): messages are recorded as suppressed")
    metrics.serve(settings.metrics_port)
    stop = threading.Event()
    runner.install_signal_handlers(stop)
    if args.stage == "web":  # the admin and the HTTP API (msgd/web/server.py)
        from msgd.web import server

        server.ensure_admin()
        server.run_gunicorn()
        return 0
    if args.stage == "all":
        if settings.embedded and not args.no_web:  # embedded: the admin and API in a thread
            from msgd.web import server

            server.ensure_admin()
            server.start_thread(stop)
        runner.run_all(settings, stop)
    else:
        runner.run_stage(args.stage, settings, stop, args.channel)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    _store(settings, migrate=True)
    print(f"database is up to date: {settings.effective_database_url.split('@')[-1]}")
    return 0


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from msgd.broker import make_broker
    from services.senders.registry import live_channels

    _store(settings, migrate=True)
    broker = make_broker(settings)
    try:
        broker.setup(live_channels())
    finally:
        broker.close()
    print(f"database migrated; exchanges and queues declared on {broker.describe()}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "schema":  # no store needed: the models say it all
        from msgd.config import config_schema_text

        sys.stdout.write(config_schema_text())
        return 0
    _store(settings, migrate=settings.embedded)
    from msgd.config import ConfigError, dump_config, load_config

    if args.action == "load":
        from services.renderer.preview import sample_warnings

        files = [*([PREINSTALLED] if args.preinstalled else []), *(Path(f) for f in args.files)]
        if not files:
            print("name a file to load, or --preinstalled", file=sys.stderr)
            return 2
        for path in files:
            try:
                report = load_config(path, warn_template=sample_warnings)
            except ConfigError as exc:
                print(f"{path}: not loaded, nothing changed:\n{exc}", file=sys.stderr)
                return 2
            print(f"{path}:\n{report}")
        return 0
    sys.stdout.write(dump_config(include_secrets=args.include_secrets))
    return 0


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    events = _read_events(args.event)  # a file that cannot be read is named before the store opens
    _store(settings, migrate=settings.embedded)
    from services.renderer.preview import PreviewError, RenderError, find_template, preview

    try:
        template = find_template(args.template)
        channel, rendered = preview(template, events[0], args.channel)
    except PreviewError as exc:
        print(exc, file=sys.stderr)
        return 2
    except RenderError as exc:
        print(f"render error: {exc}", file=sys.stderr)
        return 1
    for warning in rendered.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Channel: {channel}\nSubject: {rendered.subject}\n\n{rendered.body}")
    if rendered.html is not None and args.html:
        print(f"\n----- HTML -----\n{rendered.html}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from msgd import doctor

    text, code = doctor.report(doctor.run(settings, gateways=not args.no_gateways))
    sys.stdout.write(text)
    return code


def cmd_parking(args: argparse.Namespace, settings: Settings) -> int:
    from msgd import parking
    from msgd.broker import make_broker

    broker = make_broker(settings)
    try:
        if args.action == "list":
            depth = broker.queue_depths([parking.parking_queue(settings.namespace)])  # before peeking
            items = parking.peek(broker, settings, args.limit)
            for p in items:  # every field made printable: bodies and headers may be anything
                body = p.shown_body(160).replace("\n", " ")
                reason = parking.shown_text(p.reason, 2000)
                print(f"{parking.shown_text(p.parked_at or '-', 64)}  from {parking.shown_text(p.source_queue or '?', 300)}"
                      f"  ({parking.shown_text(p.stage or '-', 64)})\n  reason: {reason}\n  body:   {body}")
            print(f"{sum(depth.values())} message(s) parked" + (f"; first {len(items)} shown" if items else ""))
            return 0
        done, kept = parking.replay(broker, settings, args.limit)
        print(f"replayed {done} message(s)" + (f"; {kept} kept in parking (source queue unknown)" if kept else ""))
        return 0
    finally:
        broker.close()


def cmd_i18n(args: argparse.Namespace, settings: Settings) -> int:
    from msgd.i18n import LOCALE_DIR, compile_catalogs

    if args.action == "extract":  # for developers who change texts: GNU gettext's xgettext reads them
        import os
        import shutil

        if not shutil.which("xgettext"):
            print("msgd: extracting needs GNU gettext (apt-get install gettext); compiling does not",
                  file=sys.stderr)
            return 2
        _store(settings)
        from django.core.management import call_command

        os.chdir(LOCALE_DIR.parent)  # msgd/: its texts, into msgd/locale (services/ speaks English)
        call_command("makemessages", locale=["ru"], no_obsolete=True, add_location="file", verbosity=1)
        args.force = True
    written = compile_catalogs(force=args.force)
    print(f"{len(written)} catalog(s) compiled in {LOCALE_DIR}" if written else f"catalogs up to date in {LOCALE_DIR}")
    return 0


def parser() -> argparse.ArgumentParser:
    from msgd.cli_staff import count

    p = argparse.ArgumentParser(prog="msgd", description="Notification pipeline for ISP billing systems")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a stage, or all of them in one process")
    run.add_argument("stage", choices=["router", "renderer", "sender", "recorder", "dlr", "all", "web"])
    run.add_argument("--no-web", action="store_true", help="all: do not serve the admin and API")
    run.add_argument("--channel", help="for sender: the channel to send (sms, email, ...)")
    run.add_argument("--migrate", action="store_true", help="apply database migrations first")
    run.set_defaults(func=cmd_run)

    pub = sub.add_parser("publish", help="publish billing events from JSON files (- for stdin)")
    pub.add_argument("files", nargs="+", metavar="FILE")
    pub.add_argument("--no-validate", action="store_true", help="publish even if the schema check fails")
    pub.add_argument("--new-id", action="store_true",
                     help="give each event a fresh event_id (to send an example again)")
    pub.set_defaults(func=cmd_publish)

    mig = sub.add_parser("migrate", help="create or upgrade the database tables")
    mig.set_defaults(func=cmd_migrate)

    setup = sub.add_parser("setup", help="migrate the database and declare the broker's exchanges and queues")
    setup.set_defaults(func=cmd_setup)

    cfg = sub.add_parser("config", help="load, dump or describe operators, channel settings and templates")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    load = cfg_sub.add_parser("load", help="load YAML files (each all or nothing)")
    load.add_argument("files", nargs="*", metavar="FILE")
    load.add_argument("--preinstalled", action="store_true",
                      help="also load the shipped Russian templates for every event type and channel")
    dump = cfg_sub.add_parser("dump", help="print the configuration as YAML (secrets masked)")
    dump.add_argument("--include-secrets", action="store_true")
    cfg_sub.add_parser("schema", help="print the JSON Schema of the configuration file (for editors)")
    cfg.set_defaults(func=cmd_config)

    tpl = sub.add_parser("template", help="work with templates")
    tpl_sub = tpl.add_subparsers(dest="action", required=True)
    rnd = tpl_sub.add_parser("render", help="print a template rendered for an event, exactly as it would be sent")
    rnd.add_argument("template", help="template id or name")
    rnd.add_argument("--event", required=True, help="event JSON file (- for stdin)")
    rnd.add_argument("--channel", help="render as for this channel (default: the template's)")
    rnd.add_argument("--html", action="store_true", help="also print the HTML part of an e-mail")
    rnd.set_defaults(func=cmd_template)

    doc = sub.add_parser("doctor", help="check broker, database and every configured gateway; say what to fix")
    doc.add_argument("--no-gateways", action="store_true", help="check only the broker and the database")
    doc.set_defaults(func=cmd_doctor)

    park = sub.add_parser("parking", help="list parked messages with the reason, or replay them")
    park_sub = park.add_subparsers(dest="action", required=True)
    pl = park_sub.add_parser("list", help="show parked messages (they stay parked)")
    pl.add_argument("--limit", type=count, default=20, help="at most this many (default 20)")
    pr = park_sub.add_parser("replay", help="send parked messages back to the queue they came from")
    pr.add_argument("--limit", type=count, default=None, help="at most this many (default: all)")
    park.set_defaults(func=cmd_parking)

    i18n = sub.add_parser("i18n", help="the Russian and English catalogs of the admin and the CLI")
    i18n_sub = i18n.add_subparsers(dest="action", required=True)
    comp = i18n_sub.add_parser("compile", help="compile the .po catalogs into .mo (with Babel; make install runs it)")
    comp.add_argument("--force", action="store_true", help="compile every catalog, not only the changed ones")
    i18n_sub.add_parser("extract", help="developers: add new texts of msgd/ to the catalogs (needs GNU xgettext)")
    i18n.set_defaults(func=cmd_i18n)

    from msgd import cli_dlr
    from msgd.cli_staff import add_commands

    add_commands(sub, tpl_sub)
    cli_dlr.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from msgd.i18n import BadLanguage
    from msgd.localtime import BadTimeZone

    args = parser().parse_args(argv)
    settings = Settings.from_env()
    if args.func is not cmd_run:  # `msgd run` sets up its own (JSON in production)
        from msgd import logs

        logs.configure(settings.log_format, settings.log_level, person=True)
    try:
        code = int(args.func(args, settings) or 0)
        sys.stdout.flush()
    except (BadTimeZone, BadLanguage) as exc:
        print(f"msgd: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `msgd log | head`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush too
        return 141  # as a command ended by SIGPIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
