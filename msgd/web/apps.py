from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "msgd.web"
    label = "web"
    verbose_name = "msgd web"
