from importlib import import_module

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import health, metrics, views

# Console sections: (url prefix, module with its pages and ``app_name``, navigation key).
CONSOLE_SECTIONS = (
    ("accounts/", "accounts.console_urls"),
    ("clusters/", "clusters.urls"),
    ("templates/", "templates_app.urls"),
    ("hibernation/", "hibernation.urls"),
    ("optimization/", "optimization.urls"),
    ("reports/", "savings.urls"),
    ("interruptions/", "interruptions.urls"),
    ("audit/", "audit.urls"),
    ("agents/", "agentapi.urls"),
    ("lab/", "lab.urls"),
)

urlpatterns = [
    path("health", health.health, name="health"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("health/detailed", health.health_detailed, name="health-detailed"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include("spotopt.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/(?P<path>.*)$", views.api_not_found),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("spotopt.console_urls")),
]

for _prefix, _module in CONSOLE_SECTIONS:
    try:
        urlpatterns.append(path(_prefix, include(import_module(_module))))
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
        # A section whose pages do not exist yet shows an empty state rather than a 404.
        urlpatterns.append(path(_prefix, views.section_placeholder, {"section": _prefix.strip("/")}))

handler400 = "spotopt.api.exceptions.handler400"
handler403 = "spotopt.api.exceptions.handler403"
handler404 = "spotopt.api.exceptions.handler404"
handler500 = "spotopt.api.exceptions.handler500"
