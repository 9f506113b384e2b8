"""Interruption events: EC2's warnings and notices as EventBridge delivers them to each linked account's queue (and as
the agent reports them), stored once, routed to the cluster that owns the instance, and what was done about each."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


class InterruptionQuerySet(TenantQuerySet):
    tenant_field = "organization"

    def acted(self):
        """Events that were handled (not a duplicate of another source's notice)."""
        return self.filter(duplicate_of__isnull=True)


class Interruption(models.Model):
    """One interruption-related event about one instance. ``event_id`` is the EventBridge id of a queue event
    (``agent:<AgentEvent id>`` for the agent's), unique in the database, so that a message delivered twice, or
    received again after a crash between storing and deleting it, is recognized and acknowledged, across restarts.

    A notice that the other source already reported (same node and kind within two minutes) is stored with
    ``duplicate_of`` set and acted on no further."""

    class Kind(models.TextChoices):
        SPOT_INTERRUPTION = "spot_interruption", "Spot interruption warning"
        REBALANCE = "rebalance", "Rebalance recommendation"
        STATE_CHANGE = "state_change", "State change"
        SCHEDULED_CHANGE = "scheduled_change", "Scheduled change"

    class Source(models.TextChoices):
        QUEUE = "queue", "EventBridge queue"
        AGENT = "agent", "Agent"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    cloud_account = models.ForeignKey(
        "accounts.CloudAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event_id = models.CharField(max_length=128, unique=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail_type = models.CharField(max_length=128, blank=True)
    aws_account_id = models.CharField(max_length=12, blank=True)
    region = models.CharField(max_length=32, blank=True)
    ec2_instance_id = models.CharField(max_length=32, blank=True)
    # Routing: the cluster and inventory row of the instance; empty when the inventory does not know it (unrouted).
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="interruptions"
    )
    instance = models.ForeignKey(
        "clusters.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="interruptions"
    )
    node_name = models.CharField(max_length=253, blank=True)
    routed = models.BooleanField(default=False)
    # The pool and the instance's age when it happened (the observed rates are computed from these).
    instance_type = models.CharField(max_length=64, blank=True)
    zone = models.CharField(max_length=32, blank=True)
    lifecycle = models.CharField(max_length=10, blank=True)
    instance_age_seconds = models.BigIntegerField(null=True, blank=True)
    # state change: the new state; scheduled change: the event type code (e.g. "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED").
    state = models.CharField(max_length=64, blank=True)
    # When AWS acts: the spot instance-action time (two minutes ahead), or a scheduled change's start.
    action_at = models.DateTimeField(null=True, blank=True)
    occurred_at = models.DateTimeField(help_text="The event's time as AWS (or the agent) stamped it.")
    received_at = models.DateTimeField(default=timezone.now, help_text="When the platform stored it.")
    # Set when handling is complete. A spot warning's cordon and drain are queued when it is stored (the first
    # response); the rest (ICE, the replacement) follows, and a row left unhandled by a crash is finished later.
    handled_at = models.DateTimeField(null=True, blank=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What was done: a list of {"what", ...} (cordon/drain action ids, ICE, the replacement job, inventory closed).
    outcome = models.JSONField(default=list, blank=True)
    outcome_summary = models.CharField(max_length=255, blank=True)
    job = models.ForeignKey(
        "optimization.OptimizationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set on a rebalance-cordoned node until it is uncordoned (or an interruption followed).
    uncordon_at = models.DateTimeField(null=True, blank=True)
    replace_at = models.DateTimeField(
        null=True, blank=True, help_text="A scheduled change's replacement starts then (its date less the lead time)."
    )
    payload = models.JSONField(default=dict, blank=True)

    objects = InterruptionQuerySet.as_manager()

    class Meta:
        db_table = "interruptions"
        ordering = ("-occurred_at", "-id")
        indexes = [
            # The cluster page's timeline and the API's cluster filter: newest first.
            models.Index(fields=["cluster", "-occurred_at"], name="interruption_cluster_idx"),
            # The API list and the unrouted list of an organization.
            models.Index(fields=["organization", "routed", "-occurred_at"], name="interruption_org_idx"),
            # Cross-source de-duplication and the burst rule: one instance's / pool's recent notices.
            models.Index(fields=["ec2_instance_id", "kind", "occurred_at"], name="interruption_instance_idx"),
            models.Index(fields=["organization", "instance_type", "zone", "occurred_at"], name="interruption_pool_idx"),
            # The sweep of events whose handling a crash interrupted (WHERE handled_at IS NULL).
            models.Index(
                fields=["replace_at"], condition=models.Q(replace_at__isnull=False), name="interruption_replace_idx"
            ),
            models.Index(
                fields=["received_at"], condition=models.Q(handled_at__isnull=True), name="interruption_pending_idx"
            ),
            # The rebalance uncordon sweep (WHERE uncordon_at IS NOT NULL AND uncordon_at <= now).
            models.Index(
                fields=["uncordon_at"], condition=models.Q(uncordon_at__isnull=False), name="interruption_uncordon_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["spot_interruption", "rebalance", "state_change", "scheduled_change"]),
                name="interruption_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.ec2_instance_id or self.node_name}"


class QueueStatusQuerySet(TenantQuerySet):
    tenant_field = "cloud_account__organization"


class QueueStatus(models.Model):
    """What the consumer last saw of one account's queue in one region: reachable or not, and the counts."""

    cloud_account = models.ForeignKey("accounts.CloudAccount", on_delete=models.CASCADE, related_name="+")
    region = models.CharField(max_length=32)
    queue_url = models.CharField(max_length=512, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    received = models.BigIntegerField(default=0)
    stored = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    unrouted = models.BigIntegerField(default=0)
    malformed = models.BigIntegerField(default=0)

    objects = QueueStatusQuerySet.as_manager()

    class Meta:
        db_table = "interruption_queues"
        ordering = ("cloud_account", "region")
        constraints = [
            models.UniqueConstraint(fields=["cloud_account", "region"], name="unique_interruption_queue"),
        ]

    def __str__(self) -> str:
        return f"queue of account {self.cloud_account_id} in {self.region}"
