from django.apps import AppConfig


class HibernationConfig(AppConfig):
    name = "hibernation"
    verbose_name = "Hibernation"
