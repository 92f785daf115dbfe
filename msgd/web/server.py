"""Serving the admin and the API.

``msgd run web`` runs gunicorn (workers ``MSGD_WEB_WORKERS``, default 2; bind
``MSGD_WEB_BIND``, default 127.0.0.1:8000).  In embedded mode ``msgd run all``
serves the same WSGI application from a thread of its own process with the
standard library's threading wsgiref server (one process, no forking: the
SQLite store and broker stay in one place).
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

log = structlog.get_logger("msgd.web")

DEFAULT_BIND = "127.0.0.1:8000"


def bind_address(env: dict[str, str] | None = None) -> tuple[str, int]:
    raw = (env if env is not None else os.environ).get("MSGD_WEB_BIND", "") or DEFAULT_BIND
    host, _, port = raw.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def ensure_admin(out: Any = None) -> str | None:
    """Create the first admin account if there is none; returns the one-time password it printed."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if user_model.objects.filter(is_superuser=True).exists():
        return None
    name = os.environ.get("MSGD_ADMIN_USER", "").strip() or "admin"
    password = os.environ.get("MSGD_ADMIN_PASSWORD", "")
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(username=name, email="", password=password)
    if generated:  # for staff: in MSGD_LANGUAGE (or the server's locale)
        from django.utils.translation import gettext as _

        print(_("msgd: created the first admin account %(name)r with the one-time password: %(password)s")
              % {"name": name, "password": password} + "\n"
              + _("msgd: log in at /admin/ and change it (it is not shown again)"),
              file=out or sys.stderr, flush=True)
        return password
    log.info("created the first admin account from MSGD_ADMIN_USER/MSGD_ADMIN_PASSWORD", user=name)
    return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("http", request=format % args)


def start_thread(stop: threading.Event, bind: tuple[str, int] | None = None) -> WSGIServer:
    """Serve the admin and API from a thread until ``stop`` is set (embedded mode)."""
    from django.core.wsgi import get_wsgi_application

    host, port = bind or bind_address()
    try:
        server = make_server(host, port, get_wsgi_application(), server_class=_ThreadingServer,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise SystemExit(f"cannot serve the web admin on {host}:{port}: {exc}"
                         " (set MSGD_WEB_BIND, or run with --no-web)") from None
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()

    def closer() -> None:
        stop.wait()
        server.shutdown()
        server.server_close()

    threading.Thread(target=closer, name="web-stop", daemon=True).start()
    log.info("web admin and API listening", url=f"http://{host}:{server.server_port}/admin/")
    return server


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook: a worker is gone, so are its live gauges (multiprocess metrics only)."""
    from msgd import metrics

    metrics.mark_process_dead(worker.pid)


def run_gunicorn() -> None:
    """gunicorn in this process (it forks the workers); SIGTERM stops it gracefully."""
    from django.db import connections
    from gunicorn.app.base import BaseApplication

    from msgd.web.wsgi import application

    connections.close_all()  # no connection is shared with forked workers
    host, port = bind_address()
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": int(os.environ.get("MSGD_WEB_WORKERS", "") or 2),
        "accesslog": "-",
        "timeout": 60,
        "child_exit": child_exit,
    }

    class App(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    log.info("web admin and API (gunicorn)", bind=options["bind"], workers=options["workers"])
    App().run()
