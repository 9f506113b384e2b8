from django.urls import path

from . import api, api_policy

urlpatterns = [
    path("clusters", api.ClusterListView.as_view(), name="cluster-list"),
    path("clusters/<int:pk>", api.ClusterDetailView.as_view(), name="cluster-detail"),
    path("clusters/<int:pk>/launch-config", api.ClusterLaunchConfigView.as_view(), name="cluster-launch-config"),
    path("clusters/<int:pk>/instances", api.ClusterInstancesView.as_view(), name="cluster-instances"),
    path("metrics/summary", api.MetricsSummaryView.as_view(), name="metrics-summary"),
]

# --- Cluster policy (node templates and policies) -------------------------------------------------------------------
urlpatterns += [
    path("clusters/<int:pk>/policy", api_policy.ClusterPolicyView.as_view(), name="cluster-policy"),
]
