"""Interruption jobs: the replacement of a node AWS is taking back (a spot interruption warning, a rebalance
recommendation under the ``replace`` policy, a scheduled retirement), carried out by the job runner.

Such a job skips planning, approval, the validation delay, budgets and the one-job rule: it starts ``launching`` at
once with one launch step, on another spot pool of the cluster's template (the interrupted pool is in the ICE cache),
or on-demand when no spot pool is left and the template allows fallback. ``remove`` names the old node only when it
still has time to be drained after the replacement is Ready (rebalance, scheduled change); a spot warning's node is
cordoned and drained at once by the interruption service and AWS terminates it."""

from __future__ import annotations

from dataclasses import dataclass
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
    *,
    cluster: Cluster,
    offerings: list[dict],
    instance: Instance,
    fallback_allowed: bool,
    now: datetime,
    unavailable: set[tuple[str, str, str]] | None = None,
) -> tuple[dict, bool] | None:
    """The cheapest offering that holds at least what the instance's type holds, in a zone the cluster launches in,
    not in the ICE cache and not the instance's own pool: spot first; on-demand only when no spot offering is left
    and fallback is allowed (or the instance was on-demand). Returns (offering, is_fallback) or None."""
    if unavailable is None:
        unavailable = {_key(o) for o in ice.unavailable_for(cluster, now=now)}
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


def replaced_instances(plan: dict | None) -> list[str]:
    """The instance ids an interruption job replaces (a burst's job replaces several; older jobs name one)."""
    plan = plan or {}
    ids = plan.get("interrupted_instance_ids")
    if ids:
        return list(ids)
    return [plan["interrupted_instance_id"]] if plan.get("interrupted_instance_id") else []


def active_replacements(*, cluster_id: int, instance_ids: set[str]) -> dict[str, OptimizationJob]:
    """instance id → the interruption job already replacing it (one replacement however many notices). One query:
    a cluster has few active interruption jobs."""
    found: dict[str, OptimizationJob] = {}
    jobs = OptimizationJob.objects.active().filter(cluster_id=cluster_id, trigger=Trigger.INTERRUPTION).order_by("id")
    for job in jobs:
        for iid in replaced_instances(job.plan):
            if iid in instance_ids:
                found.setdefault(iid, job)
    return found


def active_replacement(*, instance: Instance) -> OptimizationJob | None:
    """The interruption job already replacing ``instance``, if any."""
    return active_replacements(cluster_id=instance.cluster_id, instance_ids={instance.instance_id}).get(
        instance.instance_id
    )


def template_offerings(cluster: Cluster) -> tuple[Any, list[dict]]:
    """The cluster's template and the offerings it allows (fallback included), as the problem lists them."""
    template = effective_template(policy_for(cluster))
    if template is None:
        return None, []
    return template, [o.as_problem() for o in eligible_offerings(template, cluster.region, include_fallback=True)]


#: The job keeps this many substitutes for its launches (the runner picks among them if a pool lacks capacity).
SUBSTITUTES = 30


@dataclass(frozen=True)
class Replacement:
    """One node to replace: the instance, its Kubernetes node, why, and whether the job drains and terminates it
    once the replacement is Ready (rebalance, scheduled change) or AWS takes it anyway (spot warning)."""

    instance: Instance
    node_name: str
    reason: str
    drain_after_ready: bool


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
    """Start the replacement of one instance (see :func:`interruption_jobs_start`). Returns (job, note)."""
    return interruption_jobs_start(
        cluster=cluster,
        replacements=[Replacement(instance, node_name, reason, drain_after_ready)],
        now=now,
        offerings=offerings,
    )[0]


def interruption_jobs_start(
    *,
    cluster: Cluster,
    replacements: list[Replacement],
    now: datetime | None = None,
    offerings: tuple[Any, list[dict]] | None = None,
) -> list[tuple[OptimizationJob | None, str]]:
    """Start the replacement of the nodes of a burst of notices on one cluster (locked by the caller's transaction
    through its cluster row): ONE job (per CPU architecture) for all of them, whose launches are grouped by pool, so
    that a burst of 50 warnings is a handful of EC2 Fleet calls, not 50 jobs.

    Returns (job, note) per replacement, in order: the job that replaces it (an already running replacement of the
    same instance is kept: one replacement however many notices), or no job when the cluster cannot launch (no
    launch configuration, no account, no template) or no offering can take the node's place; the note says why.
    ``offerings`` is :func:`template_offerings` of the cluster when the caller already has it."""
    now = now or timezone.now()
    out: list[tuple[OptimizationJob | None, str]] = [(None, "")] * len(replacements)
    existing = active_replacements(cluster_id=cluster.pk, instance_ids={r.instance.instance_id for r in replacements})
    todo: list[int] = []
    for n, r in enumerate(replacements):
        job = existing.get(r.instance.instance_id)
        if job is not None:
            out[n] = (job, f"replacement job {job.pk} already running")
        else:
            todo.append(n)
    if not todo:
        return out
    refusal = ""
    if cluster.cloud_account_id is None:
        refusal = "no replacement: the cluster has no linked AWS account"
    elif not (cluster.launch_config or {}).get("launch_template_id"):
        refusal = "no replacement: the cluster has no launch configuration"
    template, offerings_list = (None, [])
    if not refusal:
        template, offerings_list = offerings if offerings is not None else template_offerings(cluster)
        if template is None:
            refusal = "no replacement: the cluster has no node template"
    if refusal:
        for n in todo:
            out[n] = (None, refusal)
        return out
    unavailable = {_key(o) for o in ice.unavailable_for(cluster, now=now)}
    chosen: dict[str, list[tuple[int, dict, bool]]] = {}  # architecture → (index, offering, is_fallback)
    first: dict[str, int] = {}
    for n in todo:
        r = replacements[n]
        if first.setdefault(r.instance.instance_id, n) != n:  # the same instance twice in one burst: one replacement
            continue
        choice = replacement_offering(
            cluster=cluster,
            offerings=offerings_list,
            instance=r.instance,
            fallback_allowed=bool(template.spot_fallback),
            now=now,
            unavailable=unavailable,
        )
        if choice is None:
            out[n] = (
                None,
                "no replacement: no other pool of the template can take the node's place"
                + ("" if template.spot_fallback else " (fallback to on-demand is off)"),
            )
            continue
        offering, is_fallback = choice
        chosen.setdefault(str(offering.get("arch") or ""), []).append((n, offering, is_fallback))
    for picks in chosen.values():
        job = _create_job(cluster, template, offerings_list, [(replacements[n], o, f) for n, o, f in picks], now)
        for n, offering, is_fallback in picks:
            out[n] = (
                job,
                f"replacement job {job.pk}: {offering['instance_type']} {offering['zone']} {offering['capacity_type']}"
                + (" (fallback)" if is_fallback else ""),
            )
    for n in todo:  # a repeated instance of the burst shares its first notice's answer
        out[n] = out[first[replacements[n].instance.instance_id]]
    return out


def _create_job(
    cluster: Cluster, template: Any, offerings: list[dict], picks: list[tuple[Replacement, dict, bool]], now: datetime
) -> OptimizationJob:
    """One interruption job replacing ``picks`` (replacement, offering, is_fallback): a launch step per pool."""
    likes = [next((o for o in offerings if o["instance_type"] == r.instance.instance_type), o) for r, o, _ in picks]
    need = {
        k: max(like.get(k, 0) for like in likes) for k in ("allocatable_cpu_m", "allocatable_memory_mib", "max_pods")
    }
    arch = likes[0].get("arch")
    substitutes = sorted(
        (
            o
            for o in offerings
            if o.get("arch") == arch
            and o.get("allocatable_cpu_m", 0) >= need["allocatable_cpu_m"]
            and o.get("allocatable_memory_mib", 0) >= need["allocatable_memory_mib"]
        ),
        key=lambda o: (o["capacity_type"] != "spot", Decimal(str(o["price"]))),
    )[:SUBSTITUTES]
    for _, offering, _ in picks:
        if offering not in substitutes:
            substitutes = [offering, *substitutes]
    remove: list[str] = []
    current: dict[str, dict] = {}
    for r, _, _ in picks:
        if not r.drain_after_ready:
            continue
        node_id = r.node_name or r.instance.instance_id
        remove.append(node_id)
        current[node_id] = {
            "instance_id": r.instance.instance_id,
            "node_name": r.node_name,
            "asg_name": r.instance.asg_name,
            "instance_type": r.instance.instance_type,
            "zone": r.instance.zone,
            "capacity_type": r.instance.lifecycle,
            "price": str(r.instance.hourly_price or 0),
            "protected": False,
        }
    is_fallback = any(f for _, _, f in picks)
    restore_minutes = int(template.fallback_restore_minutes or 30)
    reasons = [r.reason for r, _, _ in picks]
    notes = reasons[:20] + ([f"… and {len(reasons) - 20} more"] if len(reasons) > 20 else [])
    fallback_types = sorted({r.instance.instance_type for r, _, f in picks if f})
    if fallback_types:
        notes.append(f"Fallback: no spot pool left for {', '.join(fallback_types)}; launching on-demand instead.")
    replaced = [r.instance.instance_id for r, _, _ in picks]
    with transaction.atomic():
        job = OptimizationJob.objects.create(
            cluster=cluster,
            trigger=Trigger.INTERRUPTION,
            state=State.LAUNCHING,
            plan={
                "nodes": [{**o, "new": True} for _, o, _ in picks],
                "remove": remove,
                "offerings": substitutes,
                "fallback_allowed": bool(template.spot_fallback),
                "fallback_restore_minutes": restore_minutes,
                "node_setup": {"labels": dict(template.labels or {}), "taints": list(template.taints or [])},
                "interrupted_instance_ids": replaced,
                "notes": reasons,
            },
            current_nodes=current,
            current_hourly_cost=sum((r.instance.hourly_price or Decimal(0) for r, _, _ in picks), Decimal(0)),
            planned_hourly_cost=sum((Decimal(str(o["price"])) for _, o, _ in picks), Decimal(0)),
            fallback=is_fallback,
            restore_after=now + timedelta(minutes=restore_minutes) if is_fallback else None,
            started_by_label="system:interruption",
            approved_at=now,
            created_at=now,
            started_at=now,
            state_changed_at=now,
            next_check_at=now,
            notes=notes,
        )
        job.cluster = cluster
        pools: dict[tuple[str, str, str], tuple[dict, int]] = {}
        for _, offering, _ in picks:
            held = pools.get(_key(offering))
            pools[_key(offering)] = (offering, (held[1] if held else 0) + 1)
        for key in sorted(pools):
            offering, count = pools[key]
            step_create(
                job=job,
                kind=JobStep.Kind.LAUNCH,
                target=f"{count} × {offering['instance_type']} {offering['zone']} {offering['capacity_type']}",
                params={"offering": offering, "count": count},
                now=now,
            )
        record(
            action=actions.JOB_CREATED,
            organization_id=cluster.organization_id,
            resource=job,
            after=job_summary(job)
            | {
                "replaces": replaced,
                "offerings": [o for _, o, _ in picks],
                "reasons": reasons,
                "remove": remove,
            },
            actor="system:interruption",
        )
    return job


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
