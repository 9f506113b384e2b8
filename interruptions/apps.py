from django.apps import AppConfig


class InterruptionsConfig(AppConfig):
    name = "interruptions"
    verbose_name = "Interruptions"

    def ready(self) -> None:
        from . import hooks

        hooks.register()
