"""The agent endpoints (``/api/v1/agent/...``, API-key auth) and the operators' cluster-scoped endpoints
(``/api/v1/clusters/{id}/api-keys|nodes|agent``, JWT or session auth)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, status
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.selectors import cluster_for_user, price_instances
from spotopt.errors import ApplicationError, ValidationFailed

from . import selectors, services
from .authentication import AgentRateThrottle, ApiKeyAuthentication, IsAgent
from .manifest import render_manifest
from .models import ApiKey, KubeNode
from .serializers import (
    ActionResultInputSerializer,
    AgentActionSerializer,
    AgentMessageSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeySerializer,
    EventsInputSerializer,
    KubeNodeSerializer,
    SnapshotInputSerializer,
)


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


def platform_url(request) -> str:
    return settings.AGENT_PLATFORM_URL or request.build_absolute_uri("/")


# --- Agent endpoints -------------------------------------------------------------------------------------------------
class AgentView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAgent]
    throttle_classes = [AgentRateThrottle]

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized body before anything reads it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.AGENT_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Request body larger than {settings.AGENT_MAX_BODY_BYTES} bytes.")
        super().initial(request, *args, **kwargs)


_SnapshotResult = inline_serializer(
    "SnapshotResult",
    {
        "next_poll_seconds": drf_serializers.IntegerField(),
        "nodes": drf_serializers.IntegerField(),
        "pods": drf_serializers.IntegerField(),
        "generation": drf_serializers.IntegerField(),
    },
)


class SnapshotView(AgentView):
    """The cluster as the agent sees it. Replaces the stored node and pod state; all or nothing."""

    @extend_schema(request=SnapshotInputSerializer, responses={200: _SnapshotResult})
    def post(self, request):
        return Response(services.snapshot_ingest(api_key=request.auth, data=request.data))


class LeaseActionsView(AgentView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "max",
                {"type": "integer", "minimum": 1, "maximum": 100},
                description="Lease at most this many (1-100, default 10).",
            )
        ],
        responses={
            200: inline_serializer(
                "LeasedActions",
                {
                    "actions": AgentMessageSerializer(many=True),
                    "next_poll_seconds": drf_serializers.IntegerField(),
                },
            )
        },
    )
    def get(self, request):
        raw = request.query_params.get("max", "10")
        try:
            max_actions = int(raw)
            if not 1 <= max_actions <= 100:
                raise ValueError
        except ValueError:
            raise ValidationFailed("max must be an integer from 1 to 100.", fields={"max": ["1 to 100."]})
        actions = services.actions_lease(api_key=request.auth, max_actions=max_actions)
        return Response(
            {"actions": [a.as_message() for a in actions], "next_poll_seconds": settings.AGENT_POLL_SECONDS}
        )


class ActionResultView(AgentView):
    @extend_schema(request=ActionResultInputSerializer, responses={200: AgentActionSerializer})
    def post(self, request, action_id: int):
        data = ActionResultInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action, changed = services.action_report_result(
            api_key=request.auth, action_id=action_id, **data.validated_data
        )
        return Response(AgentActionSerializer(action).data | {"recorded": changed})


class EventsView(AgentView):
    @extend_schema(
        request=EventsInputSerializer,
        responses={
            201: inline_serializer(
                "EventsAccepted",
                {
                    "accepted": drf_serializers.IntegerField(),
                    "ids": drf_serializers.ListField(child=drf_serializers.IntegerField()),
                },
            )
        },
    )
    def post(self, request):
        events = services.events_ingest(api_key=request.auth, data=request.data)
        return Response({"accepted": len(events), "ids": [e.pk for e in events]}, status=status.HTTP_201_CREATED)


# --- Operator endpoints ----------------------------------------------------------------------------------------------


class ApiKeyListCreateView(APIView):
    @extend_schema(responses={200: inline_serializer("ApiKeyList", {"results": ApiKeySerializer(many=True)})})
    def get(self, request, cluster_id: int):
        cluster = cluster_for_user(request.user, cluster_id)
        keys = ApiKey.objects.filter(cluster=cluster).order_by("-created_at", "-id")
        return Response({"results": ApiKeySerializer(keys, many=True).data})

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request, cluster_id: int):
        cluster = cluster_for_user(request.user, cluster_id)
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(cluster=cluster, name=data.validated_data["name"], actor=request.user)
        body = ApiKeySerializer(key).data | {
            "key": raw,
            "manifest": render_manifest(raw_key=raw, platform_url=platform_url(request), cluster_name=cluster.name),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, cluster_id: int, key_id: int):
        cluster = cluster_for_user(request.user, cluster_id)
        key = get_object_or_404(ApiKey.objects.select_related("cluster"), cluster=cluster, pk=key_id)
        services.api_key_revoke(api_key=key, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClusterNodesView(generics.ListAPIView):
    """Kubernetes nodes from the agent's last snapshot, joined with their EC2 instances."""

    serializer_class = KubeNodeSerializer
    queryset = KubeNode.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        self.cluster = cluster_for_user(self.request.user, self.kwargs["cluster_id"])
        return selectors.cluster_nodes(self.cluster)

    def paginate_queryset(self, queryset):
        nodes = super().paginate_queryset(queryset)
        instances = [node.instance for node in nodes if node.instance is not None]
        for instance in instances:
            instance.region = self.cluster.region
        price_instances(instances)  # the one cost rule: two queries per page
        return nodes


class AgentStatusView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "AgentStatus",
                {
                    "connection": drf_serializers.ChoiceField(choices=["connected", "stale", "never"]),
                    "last_seen_at": drf_serializers.DateTimeField(allow_null=True),
                    "agent_version": drf_serializers.CharField(),
                    "kubernetes_version": drf_serializers.CharField(),
                    "poll_seconds": drf_serializers.IntegerField(),
                    "last_snapshot_at": drf_serializers.DateTimeField(allow_null=True),
                    "node_count": drf_serializers.IntegerField(),
                    "pod_count": drf_serializers.IntegerField(),
                    "pending_actions": AgentActionSerializer(many=True),
                    "recent_actions": AgentActionSerializer(many=True),
                },
            )
        }
    )
    def get(self, request, cluster_id: int):
        overview = selectors.agent_overview(cluster_for_user(request.user, cluster_id))
        agent = overview["status"]
        return Response(
            {
                "connection": overview["connection"],
                "last_seen_at": agent.last_seen_at if agent else None,
                "agent_version": agent.agent_version if agent else "",
                "kubernetes_version": agent.kubernetes_version if agent else "",
                "poll_seconds": agent.poll_seconds if agent else settings.AGENT_POLL_SECONDS,
                "last_snapshot_at": agent.last_snapshot_at if agent else None,
                "node_count": agent.node_count if agent else 0,
                "pod_count": agent.pod_count if agent else 0,
                "pending_actions": AgentActionSerializer(overview["pending_actions"], many=True).data,
                "recent_actions": AgentActionSerializer(overview["recent_actions"], many=True).data,
            }
        )
