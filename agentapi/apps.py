from django.apps import AppConfig


class AgentapiConfig(AppConfig):
    name = "agentapi"
    verbose_name = "Agent"
