from django.apps import AppConfig


class StoreConfig(AppConfig):
    name = "msgd.store"
    label = "msgd"
    verbose_name = "msgd"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from msgd.store import signals  # noqa: F401 - registers config-change hooks
