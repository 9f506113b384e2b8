from django.apps import AppConfig


class OptimizationConfig(AppConfig):
    name = "optimization"
    verbose_name = "Optimization jobs"

    def ready(self) -> None:
        from . import cluster_hooks

        cluster_hooks.register()
