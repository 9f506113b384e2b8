from django.urls import path

from . import api_policy

urlpatterns = []

# --- Cluster policy (node templates and policies) -------------------------------------------------------------------
urlpatterns += [
    path("clusters/<int:pk>/policy", api_policy.ClusterPolicyView.as_view(), name="cluster-policy"),
]
