"""Node templates: which EC2 instances a cluster's nodes may be (DESIGN.md §1.4)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


def default_architectures() -> list[str]:
    return ["x86_64"]


def default_capacity_types() -> list[str]:
    return ["spot", "on-demand"]


def default_instance_families() -> dict[str, list[str]]:
    return {"include": [], "exclude": []}


class NodeTemplate(models.Model):
    """An organization's rule for which instance types, capacity types and zones the optimizer may launch, and the
    labels and taints the nodes carry. The field names follow what Karpenter / CAST AI users know.

    Exactly one template per organization is the default (used by clusters whose policy names none): the partial
    unique constraint ``one_default_template_per_org`` makes a second default impossible, and
    ``services.template_set_default`` moves the flag atomically.
    """

    class Gpu(models.TextChoices):
        EXCLUDE = "exclude", "Exclude GPU types"
        ALLOW = "allow", "Allow GPU types"
        REQUIRE = "require", "Only GPU types"

    class Strategy(models.TextChoices):
        LOWEST_PRICE = "lowest-price", "Lowest price"
        PRICE_CAPACITY_OPTIMIZED = "price-capacity-optimized", "Price and capacity optimized"
        CAPACITY_OPTIMIZED = "capacity-optimized", "Capacity optimized"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="node_templates")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    # What the instance may be.
    architectures = models.JSONField(default=default_architectures)
    instance_families = models.JSONField(default=default_instance_families)
    min_vcpu = models.PositiveIntegerField(null=True, blank=True)
    max_vcpu = models.PositiveIntegerField(null=True, blank=True)
    min_memory_gib = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    max_memory_gib = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    gpu = models.CharField(max_length=10, choices=Gpu.choices, default=Gpu.EXCLUDE)
    exclude_burstable = models.BooleanField(default=False)
    exclude_bare_metal = models.BooleanField(default=True)
    current_generation_only = models.BooleanField(default=True)

    # How it is bought and where.
    capacity_types = models.JSONField(default=default_capacity_types)
    spot_fallback = models.BooleanField(default=True, help_text="Use on-demand when spot is unavailable.")
    fallback_restore_minutes = models.PositiveIntegerField(default=30, help_text="Move back to spot after.")
    spot_diversity = models.BooleanField(default=False)
    max_price_increase_pct = models.PositiveIntegerField(
        default=10, help_text="How much dearer a more diverse choice may be."
    )
    zones = models.JSONField(default=list, blank=True, help_text="Empty: every zone of the cluster's region.")
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.PRICE_CAPACITY_OPTIMIZED)

    # What the node carries.
    labels = models.JSONField(default=dict, blank=True)
    taints = models.JSONField(default=list, blank=True)

    max_hourly_budget = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="USD/h all of this template's nodes may cost."
    )
    is_default = models.BooleanField(default=False)

    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "node_templates"
        ordering = ("-is_default", "name", "id")
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("name"),
                name="unique_template_name_per_org",
                violation_error_message="A template with this name already exists.",
            ),
            # At most one default per organization; the services keep it at exactly one.
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(is_default=True), name="one_default_template_per_org"
            ),
            models.CheckConstraint(
                condition=models.Q(min_vcpu__isnull=True)
                | models.Q(max_vcpu__isnull=True)
                | models.Q(min_vcpu__lte=models.F("max_vcpu")),
                name="template_vcpu_range",
            ),
            models.CheckConstraint(
                condition=models.Q(min_memory_gib__isnull=True)
                | models.Q(max_memory_gib__isnull=True)
                | models.Q(min_memory_gib__lte=models.F("max_memory_gib")),
                name="template_memory_range",
            ),
            models.CheckConstraint(
                condition=models.Q(max_hourly_budget__isnull=True) | models.Q(max_hourly_budget__gt=0),
                name="template_budget_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def include_families(self) -> list[str]:
        return list((self.instance_families or {}).get("include") or [])

    @property
    def exclude_families(self) -> list[str]:
        return list((self.instance_families or {}).get("exclude") or [])
