from __future__ import annotations

from rest_framework import serializers

from . import selectors
from .models import Cluster, Instance


class ClusterSerializer(serializers.ModelSerializer):
    cloud_account_name = serializers.CharField(
        source="cloud_account.name", read_only=True, default=None, allow_null=True
    )
    node_count = serializers.IntegerField(read_only=True)
    spot_count = serializers.IntegerField(read_only=True)
    spot_share = serializers.SerializerMethodField()
    hourly_cost = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    missing = serializers.BooleanField(source="is_missing", read_only=True)

    class Meta:
        model = Cluster
        fields = (
            "id",
            "name",
            "region",
            "kind",
            "source",
            "cloud_account",
            "cloud_account_name",
            "arn",
            "kubernetes_version",
            "status",
            "time_zone",
            "hibernation_state",
            "hibernation_state_changed_at",
            "missing",
            "missing_since",
            "last_seen_at",
            "inventory_synced_at",
            "node_count",
            "spot_count",
            "spot_share",
            "hourly_cost",
            "created_at",
        )
        read_only_fields = fields

    def get_spot_share(self, cluster: Cluster) -> float:
        return selectors.spot_share(cluster)


class ClusterDetailSerializer(ClusterSerializer):
    node_groups = serializers.JSONField(read_only=True)
    cost = serializers.SerializerMethodField()

    class Meta(ClusterSerializer.Meta):
        fields = (*ClusterSerializer.Meta.fields, "node_groups", "cost")
        read_only_fields = fields

    def get_cost(self, cluster: Cluster) -> dict:
        """``cluster.cost``, set by :func:`clusters.selectors.with_cost`."""
        return {k: (f"{v:.6f}" if not isinstance(v, int) else v) for k, v in cluster.cost.items()}


class ClusterCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    region = serializers.CharField(max_length=32)
    kind = serializers.ChoiceField(choices=Cluster.Kind.choices, default=Cluster.Kind.SELF_MANAGED)
    cloud_account = serializers.IntegerField(required=False, allow_null=True)
    organization_id = serializers.IntegerField(required=False, help_text="Super admins only: the owning organization.")


class InstanceSerializer(serializers.ModelSerializer):
    hourly_price = serializers.DecimalField(
        source="price",
        max_digits=12,
        decimal_places=6,
        allow_null=True,
        read_only=True,
        help_text="USD/h now by the catalog (a closed instance: the price it ran at).",
    )

    class Meta:
        model = Instance
        fields = (
            "id",
            "instance_id",
            "instance_type",
            "zone",
            "lifecycle",
            "state",
            "launch_time",
            "terminated_at",
            "node_group",
            "asg_name",
            "private_dns",
            "hourly_price",
        )
        read_only_fields = fields


class SummaryClusterSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="cluster.pk")
    name = serializers.CharField(source="cluster.name")
    region = serializers.CharField(source="cluster.region")
    node_count = serializers.IntegerField(source="cluster.node_count")
    hourly_cost = serializers.DecimalField(source="cluster.hourly_cost", max_digits=14, decimal_places=6)
    spot_share = serializers.FloatField()
    agent = serializers.CharField()


class MetricsSummarySerializer(serializers.Serializer):
    """Money as decimal strings (USD per hour unless named monthly)."""

    cluster_count = serializers.IntegerField()
    agents_connected = serializers.IntegerField()
    nodes = serializers.IntegerField()
    spot_nodes = serializers.IntegerField()
    spot_share = serializers.FloatField()
    hourly_cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    all_on_demand_hourly_cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    hourly_savings = serializers.DecimalField(max_digits=14, decimal_places=6)
    monthly_savings = serializers.DecimalField(max_digits=16, decimal_places=2)
    savings_pct = serializers.FloatField()
    clusters = SummaryClusterSerializer(many=True)


class LaunchConfigSerializer(serializers.Serializer):
    """How jobs launch nodes for a cluster (``/clusters/{id}/launch-config``); the service validates."""

    launch_template_id = serializers.CharField(help_text="lt-…")
    launch_template_version = serializers.CharField(required=False, help_text='"$Latest", "$Default" or a number.')
    subnets = serializers.DictField(child=serializers.CharField(), help_text='{"<zone>": "subnet-…"}')
    source = serializers.CharField(read_only=True, help_text="discovered | manual")


class LaunchConfigOutputSerializer(serializers.Serializer):
    """A cluster's launch configuration as read: empty (``{}``) until discovery finds one or an operator sets it."""

    launch_template_id = serializers.CharField(required=False, help_text="lt-…")
    launch_template_version = serializers.CharField(required=False)
    subnets = serializers.DictField(child=serializers.CharField(), required=False)
    source = serializers.CharField(required=False, help_text="discovered | manual")
