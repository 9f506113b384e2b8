"""Cluster policy: read-with-defaults, validation and update (audited). See ``clusters.disruption`` for budgets."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import record
from spotopt.errors import ValidationFailed

from . import disruption
from .models import Cluster, ClusterPolicy

# Fields an operator sets, in the API's order. ``node_template`` is a template id (or None: the org's default).
POLICY_FIELDS = (
    "optimization_enabled",
    "mode",
    "node_template",
    "on_demand_base",
    "max_pool_share",
    "max_interruption_rate",
    "headroom_pct",
    "consolidation_policy",
    "consolidate_after",
    "disruption_budgets",
    "maintenance_windows",
    "on_rebalance",
    "uncordon_after_minutes",
    "validation_delay_seconds",
    "ready_timeout_minutes",
    "drain_timeout_minutes",
    "min_saving_pct",
)


def policy_for(cluster: Cluster) -> ClusterPolicy:
    """The cluster's policy, created with the defaults the first time it is asked for (race-safe)."""
    try:
        return ClusterPolicy.objects.select_related("node_template").get(cluster=cluster)
    except ClusterPolicy.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            policy = ClusterPolicy.objects.create(cluster=cluster)
    except IntegrityError:  # created concurrently
        return ClusterPolicy.objects.select_related("node_template").get(cluster=cluster)
    record(
        action="cluster_policy.created",
        organization_id=cluster.organization_id,
        resource=policy,
        after=policy_snapshot(policy),
        actor="system",
    )
    return policy


def policy_snapshot(policy: ClusterPolicy) -> dict[str, Any]:
    data: dict[str, Any] = {"cluster_id": policy.cluster_id}
    for field in POLICY_FIELDS:
        data[field] = policy.node_template_id if field == "node_template" else getattr(policy, field)
    return data


def _share(value: Any, *, allow_zero: bool = True) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return False
    return (0 <= value <= 1) if allow_zero else (0 < value <= 1)


def policy_errors(policy: ClusterPolicy) -> dict[str, Any]:
    """Every rule a policy must satisfy; ``{}`` when valid."""
    errors: dict[str, Any] = {}
    if policy.mode not in ClusterPolicy.Mode.values:
        errors["mode"] = [f"Choose from: {', '.join(ClusterPolicy.Mode.values)}."]
    if not _share(policy.on_demand_base):
        errors["on_demand_base"] = ["A share between 0 and 1."]
    if not _share(policy.max_pool_share, allow_zero=False):
        errors["max_pool_share"] = ["A share greater than 0 and at most 1."]
    if policy.max_interruption_rate is not None and not _share(policy.max_interruption_rate):
        errors["max_interruption_rate"] = ["A rate between 0 and 1 (0.1 means 10% of instances interrupted)."]
    if not isinstance(policy.headroom_pct, int) or not 0 <= policy.headroom_pct <= 100:
        errors["headroom_pct"] = ["Between 0 and 100 percent."]
    if policy.consolidation_policy not in ClusterPolicy.ConsolidationPolicy.values:
        errors["consolidation_policy"] = [f"Choose from: {', '.join(ClusterPolicy.ConsolidationPolicy.values)}."]
    after = policy.consolidate_after
    if not isinstance(after, str) or (after != "Never" and disruption.parse_duration(after) is None):
        errors["consolidate_after"] = ['A duration such as "30s", "5m" or "1h30m" (at most a year), or "Never".']
    if (problems := disruption.budget_errors(policy.disruption_budgets)) is not None:
        errors["disruption_budgets"] = [problems] if isinstance(problems, str) else problems
    if (problems := disruption.window_errors(policy.maintenance_windows)) is not None:
        errors["maintenance_windows"] = [problems] if isinstance(problems, str) else problems
    if policy.on_rebalance not in ClusterPolicy.OnRebalance.values:
        errors["on_rebalance"] = [f"Choose from: {', '.join(ClusterPolicy.OnRebalance.values)}."]
    minutes = policy.uncordon_after_minutes
    if minutes is not None and (not isinstance(minutes, int) or not 1 <= minutes <= 10080):
        errors["uncordon_after_minutes"] = ["Between 1 and 10080 minutes, or null to keep the node cordoned."]
    for name, low, high in (
        ("validation_delay_seconds", 0, 3600),
        ("ready_timeout_minutes", 1, 240),
        ("drain_timeout_minutes", 1, 1440),
    ):
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors[name] = [f"A whole number between {low} and {high}."]
    pct = policy.min_saving_pct
    try:
        pct = Decimal(str(pct)) if not isinstance(pct, bool) else None
    except (InvalidOperation, ValueError):
        pct = None
    if pct is None or not pct.is_finite() or not Decimal(0) <= pct <= Decimal(100):
        errors["min_saving_pct"] = ["A percentage between 0 and 100."]
    else:
        policy.min_saving_pct = pct.quantize(Decimal("0.01"))
    return errors


@transaction.atomic
def policy_update(*, cluster: Cluster, data: dict[str, Any], actor: Any = None, replace: bool = False) -> ClusterPolicy:
    """Change the cluster's policy. ``replace`` (PUT) resets the fields not given to their defaults; otherwise only
    the given fields change (PATCH). Audited with before/after when anything changed."""
    from templates_app.models import NodeTemplate

    policy_for(cluster)
    policy = ClusterPolicy.objects.select_for_update().get(cluster=cluster)
    before = policy_snapshot(policy)
    unknown = set(data) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields={k: ["Unknown field."] for k in sorted(unknown)})
    errors: dict[str, Any] = {}
    if replace:
        for field in POLICY_FIELDS:
            if field not in data:
                model_field = ClusterPolicy._meta.get_field(field)
                setattr(policy, model_field.attname, model_field.get_default())
    for field, value in data.items():
        if field == "node_template":
            if value is None:
                policy.node_template = None
                continue
            template_id = value.pk if isinstance(value, NodeTemplate) else value
            # Locked: a concurrent delete of the template either sees this policy (409) or has already removed it.
            template = (
                NodeTemplate.objects.select_for_update()
                .filter(pk=template_id, organization_id=cluster.organization_id)
                .first()
            )
            if template is None:
                errors["node_template"] = ["No such template in this organization."]
            else:
                policy.node_template = template
        else:
            setattr(policy, field, value)
    errors = policy_errors(policy) | errors
    if errors:
        raise ValidationFailed("The cluster policy is not valid.", fields=errors)
    after = policy_snapshot(policy)
    if after == before:
        return policy
    policy.save()
    record(
        action="cluster_policy.updated",
        organization_id=cluster.organization_id,
        resource=policy,
        before=before,
        after=after,
        actor=actor,
    )
    return policy


def effective_template(policy: ClusterPolicy):
    """The template the optimizer uses for the cluster: the policy's, else the organization's default."""
    if policy.node_template_id is not None:
        return policy.node_template
    from templates_app.selectors import default_template

    return default_template(policy.cluster.organization_id)


def disruption_allowance(
    policy: ClusterPolicy, *, node_count: int, at: datetime, reason: str | None = None, disrupting: int = 0
) -> disruption.BudgetDecision:
    """How many nodes the optimizer may disrupt now: zero outside the maintenance windows (when any are set), else
    the most restrictive active disruption budget."""
    if not disruption.in_maintenance_window(policy.maintenance_windows, at):
        return disruption.BudgetDecision(allowed=0, active=[])
    return disruption.allowed_disruptions(
        policy.disruption_budgets, node_count=node_count, at=at, reason=reason, disrupting=disrupting
    )


def optimizer_constraints(policy: ClusterPolicy) -> dict[str, Any]:
    """The policy's part of the optimizer problem (DESIGN.md §6 ``constraints``)."""
    constraints: dict[str, Any] = {
        "on_demand_base": policy.on_demand_base,
        "max_pool_share": policy.max_pool_share,
    }
    if policy.max_interruption_rate is not None:
        constraints["max_interruption_rate"] = policy.max_interruption_rate
    return constraints
