"""``GET /api/v1/interruptions`` (filters: cluster, type, since, until, routed) and
``GET /api/v1/interruption-rates?region=`` (per pool: advisor bucket, observed interruptions, node-hours, blend)."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from spotopt.errors import ValidationFailed

from . import rates, selectors
from .filters import InterruptionFilter
from .serializers import InterruptionSerializer, PoolRateSerializer

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class InterruptionListView(generics.ListAPIView):
    """The organization's interruption events, newest first, with what was done about each."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = InterruptionSerializer
    filterset_class = InterruptionFilter

    def get_queryset(self):
        return selectors.interruptions_for_user(self.request.user)


class InterruptionRatesView(APIView):
    """Each pool of the region the organization ran spot in or saw interrupted (30 days)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("region", str, required=True)],
        responses={
            200: inline_serializer(
                name="InterruptionRates",
                fields={"region": serializers.CharField(), "pools": PoolRateSerializer(many=True)},
            )
        },
    )
    def get(self, request):
        region = request.query_params.get("region", "")
        if not REGION.match(region):
            raise ValidationFailed("region is required (e.g. us-east-1).", fields={"region": ["An AWS region name."]})
        if request.user.organization_id is None:
            return Response({"region": region, "pools": []})
        pools = rates.pool_rates(organization_id=request.user.organization_id, region=region)
        return Response({"region": region, "pools": PoolRateSerializer(pools, many=True).data})
