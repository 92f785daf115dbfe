"""Django settings for every msgd process (the web admin adds to these later)."""

from __future__ import annotations

import os
from typing import Any


def django_settings(database: dict[str, Any]) -> dict[str, Any]:
    return {
        "DATABASES": {"default": database},
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "mathfilters",
            "msgd.store",
        ],
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "SECRET_KEY": os.environ.get("MSGD_SECRET_KEY", "msgd-insecure-development-key"),
        "LOGGING_CONFIG": None,
        "TEMPLATES": [],
    }
