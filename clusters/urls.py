from django.urls import path

from . import views
from .urls_policy import policy_urlpatterns

app_name = "clusters"
urlpatterns = [
    path("", views.cluster_list, name="list"),
    path("<int:pk>/", views.cluster_detail, name="detail"),
]

# --- Cluster policy (node templates and policies) -------------------------------------------------------------------
urlpatterns += policy_urlpatterns
