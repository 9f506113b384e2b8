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
    # and Auto Scaling group names (hibernation restores the sizes from here).
    node_groups = models.JSONField(default=list, blank=True)
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
