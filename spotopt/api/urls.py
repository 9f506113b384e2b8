"""The ``/api/v1`` router: each app contributes its own ``api_urls`` module."""

from importlib import import_module

from django.urls import include, path

_APPS = (
    "accounts",
    "audit",
    "pricing",
    "clusters",
    "templates_app",
    "hibernation",
    "agentapi",
    "savings",
    "optimization",
    "interruptions",
    "lab",
)

urlpatterns = []
for app in _APPS:
    try:
        module = import_module(f"{app}.api_urls")
    except ModuleNotFoundError as exc:
        if exc.name != f"{app}.api_urls":
            raise
        continue
    urlpatterns.append(path("", include(module)))
