"""Interruption jobs: the replacement of a node AWS is taking back (a spot interruption warning, a rebalance
recommendation under the ``replace`` policy, a scheduled retirement), carried out by the job runner.

Such a job skips planning, approval, the validation delay, budgets and the one-job rule: it starts ``launching`` at
once with one launch step, on another spot pool of the cluster's template (the interrupted pool is in the ICE cache),
or on-demand when no spot pool is left and the template allows fallback. ``remove`` names the old node only when it
still has time to be drained after the replacement is Ready (rebalance, scheduled change); a spot warning's node is
cordoned and drained at once by the interruption service and AWS terminates it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import record
from clusters.models import Cluster, Instance
from clusters.policy_services import effective_template, policy_for
from templates_app.services.matching import eligible_offerings

from .. import actions, ice
from ..models import JobStep, OptimizationJob
from .jobs import job_summary, step_create, step_finish

Trigger = OptimizationJob.Trigger
State = OptimizationJob.State


def _key(o: dict) -> tuple[str, str, str]:
    return (o["instance_type"], o["zone"], o["capacity_type"])


def replacement_offering(
    *, cluster: Cluster, offerings: list[dict], instance: Instance, fallback_allowed: bool, now: datetime
) -> tuple[dict, bool] | None:
    """The cheapest offering that holds at least what the instance's type holds, in a zone the cluster launches in,
    not in the ICE cache and not the instance's own pool: spot first; on-demand only when no spot offering is left
    and fallback is allowed (or the instance was on-demand). Returns (offering, is_fallback) or None."""
    unavailable = {ice_key for ice_key in map(_key, ice.unavailable_for(cluster, now=now))}
    subnets = (cluster.launch_config or {}).get("subnets") or {}
    own = (instance.instance_type, instance.zone, instance.lifecycle)
    like = next((o for o in offerings if o["instance_type"] == instance.instance_type), None) or {}
    candidates = [
        o
        for o in offerings
        if _key(o) not in unavailable
        and _key(o) != own
        and (not subnets or o["zone"] in subnets)
        and (not like or o.get("arch") == like.get("arch"))
        and o.get("allocatable_cpu_m", 0) >= like.get("allocatable_cpu_m", 0)
        and o.get("allocatable_memory_mib", 0) >= like.get("allocatable_memory_mib", 0)
        and o.get("max_pods", 0) >= like.get("max_pods", 0)
    ]

    def cheapest(capacity: str) -> dict | None:
        pool = [o for o in candidates if o["capacity_type"] == capacity]
        return min(pool, key=lambda o: (Decimal(str(o["price"])), o["instance_type"], o["zone"])) if pool else None

    if instance.lifecycle == Instance.Lifecycle.SPOT:
        spot = cheapest("spot")
        if spot is not None:
            return spot, False
        if fallback_allowed:
            on_demand = cheapest("on-demand")
            if on_demand is not None:
                return on_demand, True
        return None
    on_demand = cheapest("on-demand")
    return (on_demand, False) if on_demand is not None else None


def active_replacement(*, instance: Instance) -> OptimizationJob | None:
    """The interruption job already replacing ``instance``, if any (one replacement however many notices)."""
    return (
        OptimizationJob.objects.active()
        .filter(
            cluster_id=instance.cluster_id,
            trigger=Trigger.INTERRUPTION,
            plan__interrupted_instance_id=instance.instance_id,
        )
        .first()
    )


def template_offerings(cluster: Cluster) -> tuple[Any, list[dict]]:
    """The cluster's template and the offerings it allows (fallback included), as the problem lists them."""
    template = effective_template(policy_for(cluster))
    if template is None:
        return None, []
    return template, [o.as_problem() for o in eligible_offerings(template, cluster.region, include_fallback=True)]


#: The job keeps this many substitutes for its launch (the runner picks among them if the pool lacks capacity).
SUBSTITUTES = 30


def interruption_job_start(
    *,
    cluster: Cluster,
    instance: Instance,
    node_name: str,
    reason: str,
    drain_after_ready: bool,
    now: datetime | None = None,
    offerings: tuple[Any, list[dict]] | None = None,
) -> tuple[OptimizationJob | None, str]:
    """Start the replacement of ``instance`` (locked by the caller's transaction through its cluster row).

    Returns (job, note): no job when the cluster cannot launch (no launch configuration, no account, no template)
    or no offering can take the node's place; the note says why. ``offerings`` is :func:`template_offerings` of the
    cluster when the caller already has it (several notices of one cluster in a batch)."""
    now = now or timezone.now()
    existing = active_replacement(instance=instance)
    if existing is not None:
        return existing, f"replacement job {existing.pk} already running"
    if cluster.cloud_account_id is None:
        return None, "no replacement: the cluster has no linked AWS account"
    if not (cluster.launch_config or {}).get("launch_template_id"):
        return None, "no replacement: the cluster has no launch configuration"
    template, offerings = offerings if offerings is not None else template_offerings(cluster)
    if template is None:
        return None, "no replacement: the cluster has no node template"
    choice = replacement_offering(
        cluster=cluster,
        offerings=offerings,
        instance=instance,
        fallback_allowed=bool(template.spot_fallback),
        now=now,
    )
    if choice is None:
        return None, (
            "no replacement: no other pool of the template can take the node's place"
            + ("" if template.spot_fallback else " (fallback to on-demand is off)")
        )
    offering, is_fallback = choice
    like = next((o for o in offerings if o["instance_type"] == instance.instance_type), offering)
    substitutes = sorted(
        (
            o
            for o in offerings
            if o.get("arch") == like.get("arch")
            and o.get("allocatable_cpu_m", 0) >= like.get("allocatable_cpu_m", 0)
            and o.get("allocatable_memory_mib", 0) >= like.get("allocatable_memory_mib", 0)
        ),
        key=lambda o: (o["capacity_type"] != "spot", Decimal(str(o["price"]))),
    )[:SUBSTITUTES]
    node_id = node_name or instance.instance_id
    remove = [node_id] if drain_after_ready else []
    current = (
        {
            node_id: {
                "instance_id": instance.instance_id,
                "node_name": node_name,
                "asg_name": instance.asg_name,
                "instance_type": instance.instance_type,
                "zone": instance.zone,
                "capacity_type": instance.lifecycle,
                "price": str(instance.hourly_price or 0),
                "protected": False,
            }
        }
        if drain_after_ready
        else {}
    )
    restore_minutes = int(template.fallback_restore_minutes or 30)
    with transaction.atomic():
        job = OptimizationJob.objects.create(
            cluster=cluster,
            trigger=Trigger.INTERRUPTION,
            state=State.LAUNCHING,
            plan={
                "nodes": [{**offering, "new": True}],
                "remove": remove,
                "offerings": substitutes if offering in substitutes else [offering, *substitutes],
                "fallback_allowed": bool(template.spot_fallback),
                "fallback_restore_minutes": restore_minutes,
                "node_setup": {"labels": dict(template.labels or {}), "taints": list(template.taints or [])},
                "interrupted_instance_id": instance.instance_id,
                "notes": [reason],
            },
            current_nodes=current,
            current_hourly_cost=instance.hourly_price,
            planned_hourly_cost=Decimal(str(offering["price"])),
            fallback=is_fallback,
            restore_after=now + timedelta(minutes=restore_minutes) if is_fallback else None,
            started_by_label="system:interruption",
            approved_at=now,
            created_at=now,
            started_at=now,
            state_changed_at=now,
            next_check_at=now,
            notes=[reason]
            + (
                [f"Fallback: no spot pool left for {instance.instance_type}; launching on-demand instead."]
                if is_fallback
                else []
            ),
        )
        job.cluster = cluster
        step_create(
            job=job,
            kind=JobStep.Kind.LAUNCH,
            target=f"1 × {offering['instance_type']} {offering['zone']} {offering['capacity_type']}",
            params={"offering": offering, "count": 1},
            now=now,
        )
        record(
            action=actions.JOB_CREATED,
            organization_id=cluster.organization_id,
            resource=job,
            after=job_summary(job)
            | {"replaces": instance.instance_id, "offering": offering, "reason": reason, "remove": remove},
            actor="system:interruption",
        )
    return job, (
        f"replacement job {job.pk}: {offering['instance_type']} {offering['zone']} {offering['capacity_type']}"
        + (" (fallback)" if is_fallback else "")
    )


def interruption_shortfall(*, job: OptimizationJob, step: JobStep, launched: list[str], reason: str, now: datetime):
    """The pool of an interruption job's launch lacks capacity (already put in the ICE cache): launch what is missing
    on the next pool the job kept (spot first, on-demand when fallback is allowed), as a new step. The job's
    ``plan`` carries no whole-cluster problem to plan again: one node's place is taken, nothing more. Returns the
    new step, or None when no pool is left (the caller fails the job; nothing was disrupted by it)."""
    failed = step.params["offering"]
    missing = int(step.params["count"]) - len(launched)
    unavailable = set(map(_key, ice.unavailable_for(job.cluster, now=now)))
    pool = [o for o in job.plan.get("offerings", []) if _key(o) not in unavailable and _key(o) != _key(failed)]

    def cheapest(capacity: str) -> dict | None:
        found = [o for o in pool if o["capacity_type"] == capacity]
        return min(found, key=lambda o: (Decimal(str(o["price"])), o["instance_type"], o["zone"])) if found else None

    offering, is_fallback = cheapest(failed["capacity_type"]), False
    if offering is None and failed["capacity_type"] == "spot" and job.plan.get("fallback_allowed"):
        offering, is_fallback = cheapest("on-demand"), True
    if offering is None:
        return None
    new = step_create(
        job=job,
        kind=JobStep.Kind.LAUNCH,
        target=f"{missing} × {offering['instance_type']} {offering['zone']} {offering['capacity_type']}",
        params={"offering": offering, "count": missing, "replaces_step": step.pk},
        now=now,
    )
    step_finish(
        step=step,
        state=JobStep.State.SUCCEEDED if launched else JobStep.State.FAILED,
        message=f"Insufficient capacity ({reason}); {len(launched)} launched, the rest on "
        f"{offering['instance_type']} {offering['zone']} {offering['capacity_type']} (step {new.pk}).",
        result={"instance_ids": launched},
        now=now,
    )
    if is_fallback and not job.fallback:
        minutes = int(job.plan.get("fallback_restore_minutes") or 30)
        job.fallback = True
        job.restore_after = now + timedelta(minutes=minutes)
        job.notes = [*job.notes, f"Fallback: no spot pool left; launching on-demand {offering['instance_type']}."]
        job.save(update_fields=["fallback", "restore_after", "notes"])
    return new
