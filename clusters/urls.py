from django.urls import path

from spotopt.views import section_placeholder

from .urls_policy import policy_urlpatterns

app_name = "clusters"
urlpatterns = [
    # Placeholder until the clusters pages exist.
    path("", section_placeholder, {"section": "clusters"}, name="list"),
]

# --- Cluster policy (node templates and policies) -------------------------------------------------------------------
urlpatterns += policy_urlpatterns
