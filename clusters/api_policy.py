"""``GET|PUT|PATCH /api/v1/clusters/{id}/policy``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from . import policy_services
from .models import Cluster
from .selectors import cluster_for_user
from .serializers_policy import ClusterPolicyInputSerializer, ClusterPolicySerializer


def _policy_response(policy) -> Response:
    context = {"effective_template": policy_services.effective_template(policy)}
    return Response(ClusterPolicySerializer(policy, context=context).data)


class ClusterPolicyView(APIView):
    """The cluster's policy; created with defaults on first read. PUT replaces (omitted fields take their defaults),
    PATCH changes the given fields."""

    permission_classes = [permissions.IsAuthenticated]

    def _cluster(self, request, pk) -> Cluster:
        return cluster_for_user(request.user, pk)

    @extend_schema(responses={200: ClusterPolicySerializer})
    def get(self, request, pk):
        return _policy_response(policy_services.policy_for(self._cluster(request, pk)))

    def _write(self, request, pk, *, replace: bool) -> Response:
        cluster = self._cluster(request, pk)
        data = ClusterPolicyInputSerializer(data=request.data, partial=not replace)
        data.is_valid(raise_exception=True)
        policy = policy_services.policy_update(
            cluster=cluster, data=data.validated_data, actor=request.user, replace=replace
        )
        return _policy_response(policy)

    @extend_schema(request=ClusterPolicyInputSerializer, responses={200: ClusterPolicySerializer})
    def put(self, request, pk):
        return self._write(request, pk, replace=True)

    @extend_schema(request=ClusterPolicyInputSerializer, responses={200: ClusterPolicySerializer})
    def patch(self, request, pk):
        return self._write(request, pk, replace=False)
