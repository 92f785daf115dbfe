"""The web admin for operator staff (Django admin): see msgd/web/admin_views.py for the extras."""

from __future__ import annotations

from msgd.web.admin_site import register_all

register_all()
