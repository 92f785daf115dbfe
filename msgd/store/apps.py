from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StoreConfig(AppConfig):
    name = "msgd.store"
    label = "msgd"
    verbose_name = _("msgd: messages")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from msgd.store import signals  # noqa: F401 - registers config-change hooks
