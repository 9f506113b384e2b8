"""Clusters and their EC2 instances."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


class Cluster(models.Model):
    """A Kubernetes cluster: discovered in a linked account (EKS or tag-based self-managed) or registered by hand."""

    class Kind(models.TextChoices):
        EKS = "eks", "EKS"
        SELF_MANAGED = "self-managed", "Self-managed"

    class Source(models.TextChoices):
        DISCOVERED = "discovered", "Discovered"
        MANUAL = "manual", "Registered by hand"

    class HibernationState(models.TextChoices):
        AWAKE = "awake", "Awake"
        SLEEPING = "sleeping", "Going to sleep"
        ASLEEP = "asleep", "Asleep"
        WAKING = "waking", "Waking up"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="clusters")
    cloud_account = models.ForeignKey(
        "accounts.CloudAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="clusters"
    )
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=32)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.EKS)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    arn = models.CharField(max_length=2048, blank=True)
    kubernetes_version = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=32, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    missing_since = models.DateTimeField(null=True, blank=True, help_text="Set when discovery no longer finds it.")
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Last time discovery found it.")
    inventory_synced_at = models.DateTimeField(null=True, blank=True)
    # EKS managed node groups as discovery last saw them: name, capacity_type, instance_types, min/max/desired size
    # and Auto Scaling group names. Hibernation keeps its own copy of the sizes to restore, on the schedule.
    node_groups = models.JSONField(default=list, blank=True)
    # Set by hibernation through ``clusters.services.cluster_set_hibernation_state``.
    hibernation_state = models.CharField(
        max_length=10, choices=HibernationState.choices, default=HibernationState.AWAKE
    )
    hibernation_state_changed_at = models.DateTimeField(null=True, blank=True)
    # How the platform launches nodes for this cluster: {"launch_template_id", "launch_template_version",
    # "subnets": {"<zone>": "<subnet id>"}, "source": "discovered" | "manual"}. Discovery fills it from the cluster's
    # node group / Auto Scaling group; an operator may set it on a hand-registered cluster. Empty: no launch possible.
    launch_config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "clusters"
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "cloud_account", "region", "name"], name="unique_cluster_per_account_region"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_missing(self) -> bool:
        return self.missing_since is not None


class InstanceQuerySet(TenantQuerySet):
    tenant_field = "cluster__organization"

    def running(self):
        return self.filter(terminated_at__isnull=True)


class Instance(models.Model):
    """An EC2 instance of a cluster. Terminated instances are closed (``terminated_at``), never deleted, so that
    their cost history stays."""

    class Lifecycle(models.TextChoices):
        SPOT = "spot", "Spot"
        ON_DEMAND = "on-demand", "On-demand"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="instances")
    instance_id = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    zone = models.CharField(max_length=32)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices)
    state = models.CharField(max_length=20)
    launch_time = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    node_group = models.CharField(max_length=255, blank=True)
    asg_name = models.CharField(max_length=255, blank=True)
    private_dns = models.CharField(max_length=255, blank=True)
    hourly_price = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        db_table = "instances"
        ordering = ("id",)
        constraints = [models.UniqueConstraint(fields=["cluster", "instance_id"], name="unique_instance_per_cluster")]
        indexes = [
            # Inventory and dashboards read a cluster's running instances.
            models.Index(
                fields=["cluster"], condition=models.Q(terminated_at__isnull=True), name="instance_running_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.instance_id


# --- Cluster policy (node templates and policies) -------------------------------------------------------------------


def default_disruption_budgets() -> list[dict]:
    # Karpenter's default: at most 10% of the nodes disrupted at once.
    return [{"nodes": "10%"}]


class ClusterPolicyQuerySet(TenantQuerySet):
    tenant_field = "cluster__organization"


class ClusterPolicy(models.Model):
    """How far the optimizer may go on one cluster. One per cluster, created with safe defaults by
    ``clusters.policy_services.policy_for`` (optimization off, recommend mode)."""

    class Mode(models.TextChoices):
        RECOMMEND = "recommend", "Recommend (plans wait for approval)"
        AUTOMATIC = "automatic", "Automatic"

    class ConsolidationPolicy(models.TextChoices):
        WHEN_EMPTY = "when-empty", "When empty"
        WHEN_UNDERUTILIZED = "when-underutilized", "When empty or underutilized"

    class OnRebalance(models.TextChoices):
        IGNORE = "ignore", "Ignore"
        CORDON = "cordon", "Cordon the node"
        REPLACE = "replace", "Replace the node"

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="policy")
    optimization_enabled = models.BooleanField(default=False)
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.RECOMMEND)
    node_template = models.ForeignKey(
        "templates_app.NodeTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cluster_policies",
        help_text="Empty: the organization's default template.",
    )
    on_demand_base = models.FloatField(default=0.0, help_text="Share of each workload's replicas kept on on-demand.")
    max_pool_share = models.FloatField(default=0.5, help_text="Most of the spot nodes one (type, zone) pool may hold.")
    max_interruption_rate = models.FloatField(
        null=True, blank=True, help_text="Spot pools interrupted more often than this (0-1) are not used."
    )
    headroom_pct = models.PositiveIntegerField(default=10, help_text="Spare capacity kept above the pods' requests.")
    consolidation_policy = models.CharField(
        max_length=24, choices=ConsolidationPolicy.choices, default=ConsolidationPolicy.WHEN_UNDERUTILIZED
    )
    consolidate_after = models.CharField(max_length=32, default="5m", help_text='A duration ("30s", "5m") or "Never".')
    disruption_budgets = models.JSONField(default=default_disruption_budgets, blank=True)
    maintenance_windows = models.JSONField(default=list, blank=True)
    on_rebalance = models.CharField(max_length=10, choices=OnRebalance.choices, default=OnRebalance.CORDON)
    uncordon_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, default=60, help_text="Uncordon a rebalance-cordoned node if no interruption follows."
    )
    # Optimization jobs: wait this long after planning, then plan again before touching anything (as Karpenter does).
    validation_delay_seconds = models.PositiveIntegerField(default=15)
    # A launched node not Ready this long after launch rolls the job back.
    ready_timeout_minutes = models.PositiveIntegerField(default=10)
    # A drain blocked (PDB) this long fails the job and uncordons the node.
    drain_timeout_minutes = models.PositiveIntegerField(default=15)
    # No job for less than this saving (percent of the current hourly cost).
    min_saving_pct = models.DecimalField(max_digits=5, decimal_places=2, default=5)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClusterPolicyQuerySet.as_manager()

    class Meta:
        db_table = "cluster_policies"
        verbose_name_plural = "cluster policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(on_demand_base__gte=0, on_demand_base__lte=1), name="policy_on_demand_base_share"
            ),
            models.CheckConstraint(
                condition=models.Q(max_pool_share__gt=0, max_pool_share__lte=1), name="policy_max_pool_share"
            ),
            models.CheckConstraint(condition=models.Q(headroom_pct__lte=100), name="policy_headroom_pct"),
        ]

    def __str__(self) -> str:
        return f"policy of {self.cluster_id}"
