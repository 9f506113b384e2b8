from django.apps import AppConfig


class SavingsConfig(AppConfig):
    name = "savings"
    verbose_name = "Savings"

    def ready(self) -> None:
        from . import cluster_hooks

        cluster_hooks.register()
