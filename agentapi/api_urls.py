from django.urls import path

from . import api

urlpatterns = [
    path("agent/snapshot", api.SnapshotView.as_view(), name="agent-snapshot"),
    path("agent/actions", api.LeaseActionsView.as_view(), name="agent-actions"),
    path("agent/actions/<int:action_id>/result", api.ActionResultView.as_view(), name="agent-action-result"),
    path("agent/events", api.EventsView.as_view(), name="agent-events"),
    path("clusters/<int:cluster_id>/api-keys", api.ApiKeyListCreateView.as_view(), name="cluster-api-keys"),
    path(
        "clusters/<int:cluster_id>/api-keys/<int:key_id>", api.ApiKeyRevokeView.as_view(), name="cluster-api-key"
    ),
    path("clusters/<int:cluster_id>/nodes", api.ClusterNodesView.as_view(), name="cluster-nodes"),
    path("clusters/<int:cluster_id>/agent", api.AgentStatusView.as_view(), name="cluster-agent"),
]
