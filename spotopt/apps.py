from django.apps import AppConfig


class SpotoptConfig(AppConfig):
    name = "spotopt"
    verbose_name = "Spot Optimizer"

    def ready(self) -> None:
        from . import admin, checks  # noqa: F401 - registers the admin gate and the deploy checks
