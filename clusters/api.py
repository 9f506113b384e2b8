"""``/api/v1/clusters``: list (with node counts, spot share, hourly cost), register by hand, detail, instances."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import CloudAccount, Organization
from spotopt.errors import ValidationFailed

from . import selectors, serializers, services
from .filters import ClusterFilter
from .models import Instance


class ClusterListView(generics.ListAPIView):
    """GET: the caller's clusters. POST: register a cluster by hand."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = serializers.ClusterSerializer
    filterset_class = ClusterFilter

    def get_queryset(self):
        return selectors.clusters_for_user(self.request.user)

    def paginate_queryset(self, queryset):
        # Costs are priced per page by the one cost rule (three queries), not summed from a column.
        return selectors.attach_costs(super().paginate_queryset(queryset))

    @extend_schema(request=serializers.ClusterCreateSerializer, responses={201: serializers.ClusterDetailSerializer})
    def post(self, request):
        data = serializers.ClusterCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        user = request.user
        if user.is_super_admin:
            organization = Organization.objects.filter(pk=values.get("organization_id")).first()
            if organization is None:
                raise ValidationFailed(
                    "Super admins must say which organization owns the cluster.",
                    fields={"organization_id": ["Required for super admins."]},
                )
        else:
            organization = user.organization
        account = None
        if values.get("cloud_account") is not None:
            account = CloudAccount.objects.filter(pk=values["cloud_account"], organization=organization).first()
            if account is None:
                raise ValidationFailed("No such cloud account.", fields={"cloud_account": ["Not found."]})
        cluster = services.cluster_register(
            organization=organization,
            name=values["name"],
            region=values["region"],
            kind=values["kind"],
            cloud_account=account,
            actor=user,
        )
        cluster = selectors.with_cost(selectors.cluster_for_user(user, cluster.pk))
        return Response(serializers.ClusterDetailSerializer(cluster).data, status=status.HTTP_201_CREATED)


class ClusterDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.ClusterDetailSerializer})
    def get(self, request, pk: int):
        cluster = selectors.with_cost(selectors.cluster_for_user(request.user, pk))
        return Response(serializers.ClusterDetailSerializer(cluster).data)


class ClusterLaunchConfigView(APIView):
    """``GET|PUT /api/v1/clusters/{id}/launch-config``: the launch template and subnets jobs launch nodes with."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.LaunchConfigOutputSerializer})
    def get(self, request, pk: int):
        return Response(selectors.cluster_for_user(request.user, pk).launch_config or {})

    @extend_schema(
        request=serializers.LaunchConfigSerializer, responses={200: serializers.LaunchConfigOutputSerializer}
    )
    def put(self, request, pk: int):
        cluster = selectors.cluster_for_user(request.user, pk)
        cluster = services.cluster_set_launch_config(cluster=cluster, data=request.data, actor=request.user)
        return Response(cluster.launch_config)


class ClusterInstancesView(generics.ListAPIView):
    """The cluster's EC2 instances from the inventory (``?include_closed=true`` adds terminated ones)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = serializers.InstanceSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Instance.objects.none()
        cluster = selectors.cluster_for_user(self.request.user, self.kwargs["pk"])
        include_closed = self.request.query_params.get("include_closed", "").lower() in ("1", "true", "yes")
        return selectors.cluster_instances(cluster, include_closed=include_closed)

    def paginate_queryset(self, queryset):
        return selectors.price_instances(super().paginate_queryset(queryset))


class MetricsSummaryView(APIView):
    """The caller's estate at a glance: cost now, what it would cost all on-demand, the saving, spot share and each
    cluster's cost and agent connection."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.MetricsSummarySerializer})
    def get(self, request):
        return Response(serializers.MetricsSummarySerializer(selectors.organization_summary(request.user)).data)
