"""The web admin for operator staff (Django admin): see msgd/web/admin_views.py for the extras."""

from __future__ import annotations

from msgd.web import admin_site  # noqa: F401 - importing it registers the model admins
