from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "msgd.web"
    label = "web"
    verbose_name = "msgd web"

    def ready(self) -> None:
        # The admin's template forms refuse what the renderer cannot parse (Template.clean).
        from msgd.store.models import set_template_check
        from services.renderer.render import check_template

        set_template_check(check_template)
