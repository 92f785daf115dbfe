"""The web admin for operator staff (Django admin): importing the modules registers the model
admins; msgd/web/admin_views.py and its siblings are the admin's own pages."""

from __future__ import annotations

from msgd.web import admin_access, admin_channels, admin_log, admin_site, admin_templates  # noqa: F401 - they register
