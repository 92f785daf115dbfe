"""The web admin for operator staff (Django admin): importing the modules registers the model
admins; msgd/web/admin_views.py and its siblings are the admin's own pages."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from msgd.web import admin_access, admin_channels, admin_log, admin_site, admin_templates  # noqa: F401 - they register

# The site's titles in the reader's language (set here, after admin_site, which sets them in English).
admin.site.site_header = _("msgd: message system")
admin.site.site_title = _("msgd")
admin.site.index_title = _("Operators, templates, the message log")
# No navigation sidebar: beside the filter column it left a 1366 px screen too narrow for the
# message log and the channel list (their last columns scrolled out of sight); the breadcrumbs
# and the index page lead everywhere it did.
admin.site.enable_nav_sidebar = False
