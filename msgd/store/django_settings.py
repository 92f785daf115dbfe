"""Django settings for every msgd process: the store, plus the web admin and HTTP API (msgd.web)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "msgd-insecure-development-key"  # `msgd doctor` warns when production uses it


def _listed(name: str, default: str = "") -> list[str]:
    return [h.strip() for h in os.environ.get(name, default).split(",") if h.strip()]


def max_body_bytes(env: dict[str, str] | None = None) -> int:
    """The largest HTTP request body the web process accepts, in bytes: MSGD_MAX_BODY_BYTES
    (``Settings.max_body_bytes``, the same limit the router applies to events, so the API never
    accepts an event the router would park). Raises ValueError for a value that is not a
    positive integer."""
    from msgd.settings import Settings

    value = Settings.from_env(env).max_body_bytes
    if value < 1:
        raise ValueError(f"MSGD_MAX_BODY_BYTES must be a positive number of bytes, not {value}")
    return value


def _https() -> dict[str, Any]:
    """Behind a TLS-terminating reverse proxy (MSGD_WEB_HTTPS=1): trust its X-Forwarded-Proto,
    so that CSRF checks compare against https origins, and send cookies only over HTTPS."""
    if os.environ.get("MSGD_WEB_HTTPS", "") != "1":
        return {}
    return {
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def _login_throttle() -> dict[str, Any]:
    """django-axes: after MSGD_LOGIN_FAILURES failed logins of one user name from one address,
    that pair is locked out for MSGD_LOGIN_LOCKOUT_MINUTES (answered 429; `msgd admin unlock`
    lifts it at once)."""
    import datetime as dt

    return {
        "AXES_FAILURE_LIMIT": int(os.environ.get("MSGD_LOGIN_FAILURES", "") or 5),
        "AXES_COOLOFF_TIME": dt.timedelta(minutes=float(os.environ.get("MSGD_LOGIN_LOCKOUT_MINUTES", "") or 15)),
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_VERBOSE": False,
        # The address is REMOTE_ADDR: behind a reverse proxy every client has the proxy's, so a
        # lockout there holds the user name from everywhere until the cool-off ends.
    }


def django_settings(database: dict[str, Any]) -> dict[str, Any]:
    from msgd.i18n import LANGUAGES, default_language, locale_paths
    from msgd.localtime import zone_name

    return {
        "DATABASES": {"default": database},
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.admin",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "mathfilters",
            "axes",
            "msgd.store",
            "msgd.web",
        ],
        "USE_TZ": True,
        # Stored in UTC, shown in this zone (MSGD_TIME_ZONE, else the server's) with the zone.
        "TIME_ZONE": zone_name(),
        "FORMAT_MODULE_PATH": ["msgd.web.formats"],
        "AUTHENTICATION_BACKENDS": ["msgd.web.login.ThrottledLogins", "django.contrib.auth.backends.ModelBackend"],
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "SECRET_KEY": os.environ.get("MSGD_SECRET_KEY") or DEV_SECRET_KEY,
        "LOGGING_CONFIG": None,
        # The web admin and the HTTP API (msgd.web); message templates use their own engine.
        "DEBUG": os.environ.get("MSGD_WEB_DEBUG", "") == "1",
        "ALLOWED_HOSTS": _listed("MSGD_WEB_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver"),
        # Origins the admin's forms may be posted from when the proxy does not pass the Host on.
        "CSRF_TRUSTED_ORIGINS": _listed("MSGD_WEB_TRUSTED_ORIGINS"),
        # Larger bodies get 413 (JSON under /api/): the API's limit, also for the admin's forms.
        "DATA_UPLOAD_MAX_MEMORY_SIZE": max_body_bytes(),
        "ROOT_URLCONF": "msgd.web.urls",
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "msgd.web.api_http.refuse_unstorable_input",  # NUL in a path or query: 400, never a 500
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.locale.LocaleMiddleware",  # the browser's Accept-Language: ru or en
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            "axes.middleware.AxesMiddleware",  # a locked-out login: 429 with the reason
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [str(Path(__file__).resolve().parent.parent / "web" / "templates")],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "STATIC_URL": "/static/",
        "WHITENOISE_USE_FINDERS": True,  # static files straight from the apps: no collectstatic step
        "WHITENOISE_AUTOREFRESH": False,
        "LOGIN_URL": "/admin/login/",
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": False,
        "USE_I18N": True,
        # Russian or English (msgd/i18n.py): the browser's choice, else MSGD_LANGUAGE, else the
        # server's locale; msgd's catalogs are compiled with Babel where stale.
        "LANGUAGE_CODE": default_language(),
        "LANGUAGES": list(LANGUAGES),
        "LOCALE_PATHS": locale_paths(),
    } | _https() | _login_throttle()
