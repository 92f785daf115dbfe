from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _roles_after_migrate(**kwargs: Any) -> None:
    """``msgd migrate`` (and ``msgd setup``) keep the role groups in place (msgd/web/access.py)."""
    from msgd.web.access import sync_roles

    sync_roles()


class WebConfig(AppConfig):
    name = "msgd.web"
    label = "web"
    verbose_name = _("msgd: access")

    def ready(self) -> None:
        post_migrate.connect(_roles_after_migrate, sender=self, dispatch_uid="msgd-web-roles")
        # The admin's template forms refuse what the renderer cannot parse (Template.clean).
        from msgd.store.models import set_template_check
        from services.renderer.render import check_template

        set_template_check(check_template)
