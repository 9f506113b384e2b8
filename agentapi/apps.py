from django.apps import AppConfig


class AgentapiConfig(AppConfig):
    name = "agentapi"
    verbose_name = "Agent"

    def ready(self) -> None:
        from . import cluster_hooks

        cluster_hooks.register()
