"""Cost history (hourly rows and their daily and monthly roll-ups) and the savings ledger.

Money is USD ``Decimal`` (6 places). Buckets are UTC; a row's ``t`` is its bucket's start.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet

from . import intervals

ZERO = Decimal(0)


class CostRecordQuerySet(TenantQuerySet):
    tenant_field = "organization"


class CostRecord(models.Model):
    """What one cluster cost over one bucket (an hour, a day or a month), next to what the same instances would have
    cost on-demand, with the node, vCPU and memory hours by capacity type and the hours it spent asleep.

    Hourly rows are written by the hourly task (one snapshot of the running instances, priced by the one cost rule at
    the hour's start); daily and monthly rows are sums of the rows below them. Quantities are *hours* so that a
    roll-up is a plain sum: nodes over a bucket = node hours / hours.
    """

    class Step(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"
        MONTH = "month", "Month"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="cost_records")
    step = models.CharField(max_length=5, choices=Step.choices)
    t = models.DateTimeField(help_text="The bucket's start (UTC).")
    hours = models.PositiveIntegerField(default=1, help_text="Hours recorded in the bucket.")
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=ZERO)
    on_demand_equivalent = models.DecimalField(
        max_digits=16, decimal_places=6, default=ZERO, help_text="The same instances at on-demand list prices."
    )
    spot_node_hours = models.PositiveIntegerField(default=0)
    on_demand_node_hours = models.PositiveIntegerField(default=0)
    spot_vcpu_hours = models.PositiveBigIntegerField(default=0)
    on_demand_vcpu_hours = models.PositiveBigIntegerField(default=0)
    spot_memory_mib_hours = models.PositiveBigIntegerField(default=0)
    on_demand_memory_mib_hours = models.PositiveBigIntegerField(default=0)
    hibernated_hours = models.PositiveIntegerField(default=0)
    unpriced_node_hours = models.PositiveIntegerField(default=0)
    recorded_at = models.DateTimeField(default=timezone.now)

    objects = CostRecordQuerySet.as_manager()

    class Meta:
        db_table = "savings_cost_records"
        ordering = ("cluster_id", "step", "t")
        constraints = [
            models.UniqueConstraint(fields=["cluster", "step", "t"], name="unique_cost_record_bucket"),
            models.CheckConstraint(condition=models.Q(step__in=["hour", "day", "month"]), name="cost_record_step"),
        ]
        indexes = [
            # Dashboard and reports: WHERE organization_id = %s AND step = %s AND t >= %s GROUP BY t.
            models.Index(fields=["organization", "step", "t"], name="cost_record_org_step_t"),
            # Pruning hourly rows: WHERE step = 'hour' AND t < %s.
            models.Index(fields=["step", "t"], name="cost_record_step_t"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.step} {self.t:%Y-%m-%d %H:%M}"

    @property
    def nodes(self) -> int:
        total = self.spot_node_hours + self.on_demand_node_hours
        return round(total / self.hours) if self.hours else 0


class SavingsSettingsQuerySet(TenantQuerySet):
    tenant_field = "organization"


class SavingsSettings(models.Model):
    """An organization's savings settings: the discount it really gets on on-demand (Savings Plans, Reserved
    Instances, private pricing), applied to every on-demand baseline figure. No row means 0%."""

    EDITABLE_FIELDS = ("on_demand_discount_pct",)

    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    on_demand_discount_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=ZERO, help_text="0–100: what the organization pays below list price."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = SavingsSettingsQuerySet.as_manager()

    class Meta:
        db_table = "savings_settings"
        verbose_name_plural = "savings settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(on_demand_discount_pct__gte=0, on_demand_discount_pct__lt=100),
                name="savings_discount_pct_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.on_demand_discount_pct}% off on-demand"


class LedgerEntryQuerySet(TenantQuerySet):
    tenant_field = "organization"


class LedgerEntry(models.Model):
    """One action that changed a cluster's cost, and what it saved per hour while it was in force.

    The saving per hour splits in two parts, which reconcile differently:

    - ``spot_hourly``: the change in (on-demand equivalent − actual cost) the action made: moving nodes between
      on-demand and spot. The cost history's on-demand equivalent minus actual reconciles with these parts.
    - ``counterfactual_hourly``: the change in the on-demand equivalent itself (nodes a job removed, nodes asleep),
      priced at the baseline; the cost history cannot show it, so reports show it beside the difference.

    An entry is in force from ``started_at`` until ``ended_at`` (closed when superseded), except during its
    ``pauses`` (the cluster asleep: the night is the hibernation entry's, never counted twice).
    """

    class Source(models.TextChoices):
        JOB = "job", "Optimization job"
        FALLBACK = "fallback", "Fallback to on-demand"
        RESTORE = "restore", "Restore to spot"
        HIBERNATION = "hibernation", "Hibernation"
        INTERRUPTION = "interruption", "Interruption replacement"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="ledger_entries")
    source = models.CharField(max_length=16, choices=Source.choices)
    action_type = models.CharField(max_length=40, help_text='What the action is: "optimization_job", ...')
    action_id = models.CharField(max_length=64)
    projected_hourly = models.DecimalField(max_digits=14, decimal_places=6, help_text="USD/h the action promised.")
    spot_hourly = models.DecimalField(max_digits=14, decimal_places=6, default=ZERO)
    counterfactual_hourly = models.DecimalField(max_digits=14, decimal_places=6, default=ZERO)
    baseline_hourly = models.DecimalField(
        max_digits=14, decimal_places=6, default=ZERO, help_text="USD/h of what the action changed, at on-demand."
    )
    discount_pct = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    price_source = models.CharField(max_length=80, blank=True, help_text="Where the prices came from, and when.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # [[start, end-or-null], ...] ISO 8601: intervals the entry did not count (the cluster asleep).
    pauses = models.JSONField(default=list, blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        db_table = "savings_ledger_entries"
        ordering = ("-started_at", "-id")
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["source", "action_type", "action_id"], name="one_ledger_entry_per_action"),
            models.CheckConstraint(
                condition=models.Q(source__in=["job", "fallback", "restore", "hibernation", "interruption"]),
                name="ledger_source_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="ledger_ends_after_start",
            ),
        ]
        indexes = [
            # Savings and ledger reads: WHERE organization_id = %s AND (ended_at IS NULL OR ended_at > since).
            models.Index(fields=["organization", "started_at"], name="ledger_org_started"),
            # Pausing a sleeping cluster's open entries: WHERE cluster_id = %s AND ended_at IS NULL.
            models.Index(fields=["cluster"], condition=models.Q(ended_at__isnull=True), name="ledger_open_by_cluster"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.action_type}#{self.action_id}: {self.projected_hourly} USD/h"

    @property
    def realized_hourly(self) -> Decimal:
        return self.spot_hourly + self.counterfactual_hourly

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def in_force_seconds(self, since: datetime | None = None, until: datetime | None = None) -> float:
        """Seconds the entry counted within [since, until) (default: all of it up to now), pauses left out."""
        return intervals.in_force_seconds(
            self.started_at, self.ended_at, self.pauses, since=since, until=until or timezone.now()
        )
