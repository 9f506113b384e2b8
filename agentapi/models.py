"""API keys, the agent's view of its cluster (nodes, pods, status), the action queue and agent events."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet

KEY_PREFIX_TAG = "spk"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def split_key(raw: str) -> tuple[str, str] | None:
    """``spk_<8 hex>.<secret>`` → (prefix, secret); None when it does not look like a key."""
    prefix, sep, secret = raw.partition(".")
    if not sep or not secret or not prefix.startswith(f"{KEY_PREFIX_TAG}_") or len(prefix) != 12:
        return None
    return prefix, secret


class ClusterScopedQuerySet(TenantQuerySet):
    """Rows that belong to an organization through their cluster."""

    tenant_field = "cluster__organization"


class ApiKeyQuerySet(ClusterScopedQuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def for_key(self, raw: str) -> ApiKey | None:
        """The active key matching ``raw``: one query on the unique prefix index, then a constant-time compare."""
        parts = split_key(raw or "")
        if parts is None:
            return None
        key = self.select_related("cluster").filter(prefix=parts[0], revoked_at__isnull=True).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
            return None
        return key


class ApiKey(models.Model):
    """A per-cluster credential of the agent. Only the prefix and the SHA-256 of the whole key are stored; the key is
    shown once, at creation."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "api_keys"
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @staticmethod
    def generate() -> tuple[str, str]:
        """A new raw key and its prefix."""
        prefix = f"{KEY_PREFIX_TAG}_{secrets.token_hex(4)}"
        return f"{prefix}.{secrets.token_urlsafe(32)}", prefix

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AgentStatus(models.Model):
    """What the platform knows about a cluster's agent: last contact, versions, the last snapshot."""

    class Connection(models.TextChoices):
        CONNECTED = "connected", "Connected"
        STALE = "stale", "Stale"
        NEVER = "never", "Never connected"

    cluster = models.OneToOneField(
        "clusters.Cluster", primary_key=True, on_delete=models.CASCADE, related_name="agent_status"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    kubernetes_version = models.CharField(max_length=64, blank=True)
    poll_seconds = models.PositiveIntegerField(default=30)
    last_snapshot_at = models.DateTimeField(null=True, blank=True)
    # Counts the snapshots received; the agent gets it back, which helps when reading its logs.
    snapshot_generation = models.BigIntegerField(default=0)
    node_count = models.PositiveIntegerField(default=0)
    pod_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "agent_status"

    def __str__(self) -> str:
        return f"agent of cluster {self.cluster_id}"

    def connection(self, now=None) -> str:
        return connection_state(self.last_seen_at, self.poll_seconds, now)


def connection_state(last_seen_at, poll_seconds: int, now=None) -> str:
    """connected, stale (no contact for 3× the poll interval) or never."""
    if last_seen_at is None:
        return AgentStatus.Connection.NEVER
    now = now or timezone.now()
    if now - last_seen_at > timedelta(seconds=3 * poll_seconds):
        return AgentStatus.Connection.STALE
    return AgentStatus.Connection.CONNECTED


class KubeNode(models.Model):
    """A Kubernetes node as the agent last reported it, linked to its EC2 instance when the platform knows it."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="kube_nodes")
    name = models.CharField(max_length=253)
    provider_id = models.CharField(max_length=255, blank=True)
    ec2_instance_id = models.CharField(max_length=32, blank=True)
    instance = models.ForeignKey(
        "clusters.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="kube_nodes"
    )
    instance_type = models.CharField(max_length=64, blank=True)
    zone = models.CharField(max_length=32, blank=True)
    capacity_type = models.CharField(max_length=16, blank=True)
    labels = models.JSONField(default=dict)
    taints = models.JSONField(default=list)
    unschedulable = models.BooleanField(default=False)
    ready = models.BooleanField(default=False)
    cpu_m = models.BigIntegerField(default=0)
    memory_mib = models.BigIntegerField(default=0)
    max_pods = models.IntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last time a snapshot changed this node.")

    objects = ClusterScopedQuerySet.as_manager()

    class Meta:
        db_table = "agent_kube_nodes"
        ordering = ("name", "id")
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="unique_kube_node_per_cluster")]

    def __str__(self) -> str:
        return self.name


class KubePod(models.Model):
    """A pod as the agent last reported it."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="kube_pods")
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    node_name = models.CharField(max_length=253, blank=True)
    phase = models.CharField(max_length=20, blank=True)
    cpu_m = models.BigIntegerField(default=0)
    memory_mib = models.BigIntegerField(default=0)
    owner_kind = models.CharField(max_length=64, blank=True)
    owner_name = models.CharField(max_length=253, blank=True)
    daemonset = models.BooleanField(default=False)
    do_not_disrupt = models.BooleanField(default=False)
    priority = models.IntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last time a snapshot changed this pod.")

    class Meta:
        db_table = "agent_kube_pods"
        ordering = ("namespace", "name")
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="unique_kube_pod_per_cluster")
        ]
        # The unique constraint's index serves the snapshot's upsert and its delete of the pods that are gone.

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class AgentActionQuerySet(ClusterScopedQuerySet):
    def open(self):
        return self.filter(state__in=AgentAction.OPEN_STATES)


class AgentAction(models.Model):
    """A Kubernetes action queued for a cluster's agent, delivered with SQS-like semantics: a leased action is
    invisible until its lease expires, then handed out again; failed after ``max_attempts``; expired after
    ``deadline``. Create through :func:`agentapi.services.enqueue_action` only."""

    class Type(models.TextChoices):
        CORDON = "cordon", "Cordon"
        UNCORDON = "uncordon", "Uncordon"
        DRAIN = "drain", "Drain"
        EVICT = "evict", "Evict"
        LABEL = "label", "Label"
        TAINT = "taint", "Taint"
        SCALE = "scale", "Scale workloads"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        LEASED = "leased", "Leased"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    OPEN_STATES = (State.PENDING, State.LEASED)
    TERMINAL_STATES = (State.SUCCEEDED, State.FAILED, State.EXPIRED)

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="agent_actions")
    type = models.CharField(max_length=16, choices=Type.choices)
    target = models.CharField(max_length=512, help_text="Node name, or namespace/pod for evict.")
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    deadline = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    # What asked for the action, e.g. "optimization_job:12:step:40" or "agent_event:7", so its requester can follow it.
    origin = models.CharField(max_length=128, blank=True, default="")
    # Leased ahead of lower priorities (an interruption's cordon and drain: the node has two minutes left).
    priority = models.SmallIntegerField(default=0)
    result_message = models.TextField(blank=True)
    # What the agent reported with its result (``scale``: each workload and its previous replicas / suspend).
    result_output = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    leased_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AgentActionQuerySet.as_manager()

    class Meta:
        db_table = "agent_actions"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=["cordon", "uncordon", "drain", "evict", "label", "taint", "scale"]),
                name="agent_action_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "leased", "succeeded", "failed", "expired"]),
                name="agent_action_state_valid",
            ),
        ]
        indexes = [
            # The lease query: a cluster's open actions, highest priority first, then oldest first.
            models.Index(
                fields=["cluster", "-priority", "created_at"],
                condition=models.Q(state__in=["pending", "leased"]),
                name="agent_action_open_idx",
            ),
            # A requester following its actions: WHERE origin = ... (optimization job steps).
            models.Index(fields=["origin"], condition=~models.Q(origin=""), name="agent_action_origin_idx"),
            # The lease sweeper: WHERE state IN (pending, leased) AND deadline <= now, across clusters.
            models.Index(
                fields=["deadline"],
                condition=models.Q(state__in=["pending", "leased"]),
                name="agent_action_deadline_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.target} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES

    def as_message(self) -> dict:
        """The action as the agent receives it."""
        return {
            "id": self.pk,
            "type": self.type,
            "target": self.target,
            "params": self.params,
            "attempt": self.attempts,
            "max_attempts": self.max_attempts,
            "origin": self.origin,
            "deadline": self.deadline.isoformat().replace("+00:00", "Z"),
            "lease_expires_at": self.lease_expires_at.isoformat().replace("+00:00", "Z")
            if self.lease_expires_at
            else None,
        }


class AgentEvent(models.Model):
    """An interruption or node event reported by the agent."""

    class Type(models.TextChoices):
        SPOT_INTERRUPTION = "spot-interruption", "Spot interruption"
        REBALANCE_RECOMMENDATION = "rebalance-recommendation", "Rebalance recommendation"
        NODE_NOT_READY = "node-not-ready", "Node not ready"

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="agent_events")
    type = models.CharField(max_length=32, choices=Type.choices)
    node_name = models.CharField(max_length=253, blank=True)
    instance_id = models.CharField(max_length=32, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    detail = models.JSONField(default=dict, blank=True)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = ClusterScopedQuerySet.as_manager()

    class Meta:
        db_table = "agent_events"
        ordering = ("-occurred_at", "-id")
        indexes = [models.Index(fields=["cluster", "-occurred_at"], name="agent_event_recent_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.node_name}"
