"""The job runner: each tick advances every active job as far as it can without waiting.

A job is advanced in small transactions, each under the job's row lock taken with
``select_for_update(skip_locked=True)``: two workers never advance one job at once, and a worker that dies loses at
most the transaction it was in. Every step looks before it acts: launches are tagged with the job and step id (and
sent with a client token), so a repeated launch finds the instances of the first try; agent actions carry the step as
their ``origin``; terminations check the instance's state first.

Order (as Karpenter's replacements): plan → wait the validation delay and plan again → launch the new nodes → wait
until they are Ready in the agent's snapshot → cordon and drain the removed nodes in batches the disruption budget
allows (inside maintenance windows) → detach from their Auto Scaling group and terminate them. A launch that lacks
capacity puts the pool in the ICE cache and the optimizer plans the missing nodes again without it (``replan``):
another spot pool, or on-demand — a fallback — only when no spot pool is left and the template allows it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from accounts.aws import session_for
from agentapi.models import AgentAction, AgentStatus, KubeNode, KubePod
from agentapi.services import enqueue_action
from audit.services import record
from cloud import AccountSession, autoscaling, ec2
from cloud import errors as cloud_errors
from cloud.types import CLUSTER_TAG_PREFIX, LaunchOverride
from clusters import disruption
from clusters.inventory import sync_cluster_instances
from clusters.models import Cluster, ClusterPolicy
from clusters.policy_services import disruption_allowance, policy_for
from optimizer.problem import ProblemError
from pricing import selectors as pricing
from spotopt.errors import ApplicationError, Conflict

from .. import actions, ice
from ..models import JobStep, OptimizationJob, Recommendation
from ..planning import SIX_PLACES, PlanResult, build_problem, plan_cluster
from . import evaluation, followup, interruption_jobs, replan
from .jobs import job_create, job_transition, step_create, step_finish
from .ledger import job_ledger_entry
from .recommendations import plan_or_reuse, recommendation_save

logger = logging.getLogger(__name__)

State = OptimizationJob.State
Kind = JobStep.Kind
StepState = JobStep.State

TAG_MANAGED = "spotopt.io/managed-by"
TAG_JOB = "spotopt.io/job"
TAG_STEP = "spotopt.io/step"
LIVE_STATES = ("pending", "running")
# States a tick advances (a job awaiting approval waits for an operator).
RUNNABLE = tuple(s for s in OptimizationJob.ACTIVE_STATES if s != State.PENDING_APPROVAL)
#: A job's next move in these states plans the cluster again (validation): queued on the planning queue.
PLANNING_STATES = (State.PLANNED, State.VALIDATING)
MAX_LAUNCH_ATTEMPTS = 5
# While a job waits on something that moves by itself, it is looked at again this often (a Celery follow-up; the
# beat's tick every minute is the safety net).
POLL_SECONDS = {
    State.VALIDATING: 1,
    State.LAUNCHING: 10,
    State.WAITING_READY: 5,
    State.DRAINING: 5,
    State.TERMINATING: 5,
}
DRAIN_GRACE_SECONDS = 30
DRAIN_PARAMS = {"grace_period_seconds": 30}


class JobAbort(Exception):
    """Stop the job: roll back what it launched and end it in ``state`` with ``reason``."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


# --- AWS plumbing ----------------------------------------------------------------------------------------------------


def _session(cluster: Cluster) -> AccountSession:
    if cluster.cloud_account is None:
        raise JobAbort(State.FAILED, "The cluster has no linked AWS account: the platform cannot launch or terminate.")
    return session_for(cluster.cloud_account, region=cluster.region)


def _sync_inventory(cluster: Cluster, session: AccountSession) -> None:
    """Bring the cluster's inventory up to date now (new instances in, terminated ones closed)."""
    try:
        observed = [
            i
            for i in ec2.describe_cluster_instances(session, cluster_name=cluster.name, include_terminated=True)
            if cluster.name in i.cluster_names
        ]
    except cloud_errors.CloudError as exc:
        logger.warning("inventory refresh of cluster %s failed: %s", cluster.pk, exc)
        return
    types = {i.instance_type for i in observed}
    sync_cluster_instances(
        cluster=cluster, observed=observed, prices=pricing.price_book((cluster.region, t) for t in types)
    )


def _instances_tagged(session: AccountSession, key: str, value: str) -> list:
    return ec2.describe_instances(session, filters={f"tag:{key}": [value], "instance-state-name": list(LIVE_STATES)})


# --- steps -----------------------------------------------------------------------------------------------------------


def _steps(job: OptimizationJob) -> list[JobStep]:
    steps = list(job.steps.all().order_by("id"))
    for step in steps:
        step.job = job
    return steps


def _launched_ids(steps: list[JobStep]) -> list[str]:
    ids: list[str] = []
    for step in steps:
        if step.kind == Kind.LAUNCH:
            ids.extend(step.result.get("instance_ids", []))
    return ids


def _offering_key(o: dict) -> tuple[str, str, str]:
    return (o["instance_type"], o["zone"], o["capacity_type"])


def _launch_groups(plan: dict, offerings: list[dict]) -> list[dict]:
    """The plan's new nodes grouped by offering: one launch step each."""
    by_key = {_offering_key(o): o for o in offerings}
    pods: dict[tuple, list[dict]] = defaultdict(list)
    for node in plan.get("nodes", []):
        if node.get("new"):
            pods[_offering_key(node)].append(dict(node.get("pods") or {}))
    groups = []
    for key, nodes in sorted(pods.items()):
        offering = by_key.get(key, {"instance_type": key[0], "zone": key[1], "capacity_type": key[2]})
        groups.append({"offering": offering, "count": len(nodes), "pods": nodes})
    return groups


def _approved_saving_pct(
    fresh: PlanResult, kept: set[str], adds: list[dict], offerings: dict[tuple, dict]
) -> Decimal | None:
    """The approved plan's saving at today's prices (its kept nodes as they run now, its new nodes at their
    offering's current price), in percent of what the cluster costs now; None when it costs nothing now."""
    current = fresh.built.current_hourly_cost
    if not current:
        return None
    price = {n.id: n.price for n in fresh.built.current_nodes}
    cost = sum((price[k] for k in kept if k in price), Decimal(0))
    cost += sum((Decimal(str(offerings[_offering_key(n)]["price"])) for n in adds), Decimal(0))
    return ((current - cost) / current * 100).quantize(Decimal("0.01"))


def _approved_shortfall(fresh: PlanResult, approved: dict, offerings: dict[tuple, dict]) -> dict[str, int]:
    """Pods of the cluster as it is now that the approved plan's nodes (kept and new) would not hold: the approved
    assignment with today's pod counts and requests, what no longer fits moved out, then every pod over placed
    first-fit, biggest first, in the room left (arch and spot eligibility respected). A node whose offering the
    problem no longer has is counted as holding what the plan put on it. Pods the approved plan left unplaced are
    not counted. Empty: the approved nodes hold the cluster."""
    problem = fresh.built.problem
    workloads = {w["name"]: w for w in problem["workloads"]}
    ds = problem.get("daemonset") or {}
    placed = dict.fromkeys(workloads, 0)
    rooms: list[list] = []  # [cpu, memory, pods, offering]
    over: dict[str, int] = defaultdict(int)
    for node in approved.get("nodes", []):
        assigned = {w: n for w, n in (node.get("pods") or {}).items() if w in workloads}
        offering = offerings.get(_offering_key(node))
        if offering is None:
            for w, n in assigned.items():
                placed[w] += min(n, workloads[w]["count"] - placed[w])
            continue
        room = [
            offering["allocatable_cpu_m"] - ds.get("cpu_m", 0),
            offering["allocatable_memory_mib"] - ds.get("memory_mib", 0),
            offering["max_pods"] - ds.get("pods", 0),
            offering,
        ]
        for w in sorted(assigned, key=lambda name: -workloads[name]["cpu_m"]):
            size = workloads[w]
            for _ in range(min(assigned[w], size["count"] - placed[w])):
                if room[0] >= size["cpu_m"] and room[1] >= size["memory_mib"] and room[2] >= 1:
                    room[0] -= size["cpu_m"]
                    room[1] -= size["memory_mib"]
                    room[2] -= 1
                    placed[w] += 1
        rooms.append(room)
    for w, size in workloads.items():
        over[w] = size["count"] - placed[w]
    for w in sorted(over, key=lambda name: (-workloads[name]["cpu_m"], -workloads[name]["memory_mib"], name)):
        size = workloads[w]
        for room in rooms:
            if over[w] <= 0:
                break
            offering = room[3]
            if (size.get("arch") and offering.get("arch") not in size["arch"]) or (
                not size.get("spot_ok", True) and offering["capacity_type"] == "spot"
            ):
                continue
            fit = min(
                over[w],
                room[0] // max(size["cpu_m"], 1) if size["cpu_m"] else over[w],
                room[1] // max(size["memory_mib"], 1) if size["memory_mib"] else over[w],
                room[2],
            )
            if fit > 0:
                room[0] -= fit * size["cpu_m"]
                room[1] -= fit * size["memory_mib"]
                room[2] -= fit
                over[w] -= fit
    allowed = approved.get("unplaced") or {}
    return {w: n - int(allowed.get(w, 0)) for w, n in sorted(over.items()) if n - int(allowed.get(w, 0)) > 0}


def _start_validation(job: OptimizationJob, now: datetime) -> bool:
    policy = policy_for(job.cluster)
    job_transition(job=job, to=State.VALIDATING, now=now)
    job.next_check_at = now + timedelta(seconds=policy.validation_delay_seconds)
    job.save(update_fields=["next_check_at"])
    return policy.validation_delay_seconds == 0


def _validate(job: OptimizationJob, now: datetime) -> bool:
    """Plan again after the delay: go on only if the saving still holds and the new plan removes no node the
    approved plan kept; then lay out the steps."""
    if now < job.next_check_at:
        return False
    try:
        fresh = plan_cluster(job.cluster, now=now)
    except ApplicationError as exc:
        job_transition(job=job, to=State.CANCELLED, now=now, error=f"Planning again failed: {exc.message}")
        return False
    recommendation_save(cluster=job.cluster, result=fresh, now=now)
    approved = job.plan
    kept = {n["keep"] for n in approved.get("nodes", []) if n.get("keep")}
    removes = list(approved.get("remove") or [])
    adds = [n for n in approved.get("nodes", []) if n.get("new")]
    if not removes and not adds:
        job_transition(job=job, to=State.SUCCEEDED, now=now, note="The plan changes nothing: nothing to do.")
        return False
    overlap = sorted(set(fresh.removes) & kept)
    if overlap:
        job_transition(
            job=job,
            to=State.CANCELLED,
            now=now,
            error=f"Planning again removes node(s) the approved plan kept ({', '.join(overlap)}): the plan is stale; "
            "a new recommendation waits.",
        )
        return False
    min_pct = fresh.built.policy.min_saving_pct
    if not fresh.changes_anything or fresh.saving_pct < min_pct:
        job_transition(
            job=job,
            to=State.CANCELLED,
            now=now,
            error=f"The saving no longer holds: planning again saves {fresh.saving_pct}% (minimum {min_pct}%).",
        )
        return False
    offerings = {_offering_key(o): o for o in fresh.built.problem["offerings"]}
    outside = sorted({" ".join(_offering_key(n)) for n in adds if _offering_key(n) not in offerings})
    if outside:
        job_transition(
            job=job,
            to=State.CANCELLED,
            now=now,
            error=f"The approved plan launches {', '.join(outside)}, which the cluster's template or launch "
            "configuration no longer allows: the plan is stale; a new recommendation waits.",
        )
        return False
    shortfall = _approved_shortfall(fresh, approved, offerings)
    if shortfall:
        listed = ", ".join(f"{w} {n}" for w, n in list(shortfall.items())[:5])
        job_transition(
            job=job,
            to=State.CANCELLED,
            now=now,
            error=f"The cluster's pods changed since the plan: its nodes would not hold {sum(shortfall.values())} "
            f"pod(s) running now ({listed}); the plan is stale; a new recommendation waits.",
        )
        return False
    approved_pct = _approved_saving_pct(fresh, kept, adds, offerings)
    if approved_pct is not None and approved_pct < min_pct:
        job_transition(
            job=job,
            to=State.CANCELLED,
            now=now,
            error=f"At today's prices the approved plan saves {approved_pct}% (minimum {min_pct}%): the plan is "
            "stale; a new recommendation waits.",
        )
        return False
    running = {n.id for n in fresh.built.current_nodes}
    gone = [r for r in removes if r not in running]
    if gone:
        removes = [r for r in removes if r in running]
        job.plan = {**job.plan, "remove": removes}
        job.notes = [*job.notes, f"Already gone, not drained: {', '.join(gone)}."]
    groups = _launch_groups(approved, fresh.built.problem["offerings"])
    needs_launch = bool(groups)
    if not job.dry_run and needs_launch:
        config = job.cluster.launch_config or {}
        if not config.get("launch_template_id"):
            job_transition(
                job=job,
                to=State.FAILED,
                now=now,
                error="The cluster has no launch configuration (launch template and subnets): set it on the cluster "
                "or sync its account so that discovery finds its node group.",
            )
            return False
        if job.cluster.cloud_account_id is None:
            job_transition(job=job, to=State.FAILED, now=now, error="The cluster has no linked AWS account.")
            return False
    step_state = StepState.SKIPPED if job.dry_run else StepState.PENDING
    for group in groups:
        o = group["offering"]
        step_create(
            job=job,
            kind=Kind.LAUNCH,
            target=f"{group['count']} × {o['instance_type']} {o['zone']} {o['capacity_type']}",
            params=group,
            state=step_state,
            now=now,
        )
    meta = {"labels": fresh.built.labels, "taints": fresh.built.taints}
    job.plan = {
        **job.plan,
        "node_setup": meta,
        "fallback_allowed": fresh.built.fallback_allowed,
        "fallback_restore_minutes": fresh.built.fallback_restore_minutes,
        # What the optimizer needs to plan again the nodes a pool lacking capacity could not give.
        **{k: fresh.built.problem[k] for k in replan.PROBLEM_PARTS},
    }
    job.save(update_fields=["plan", "notes"])
    if job.dry_run:
        for node_id in removes:
            for kind in (Kind.CORDON, Kind.DRAIN, Kind.TERMINATE):
                step_create(job=job, kind=kind, target=node_id, state=StepState.SKIPPED, now=now)
        job_transition(
            job=job,
            to=State.SUCCEEDED,
            now=now,
            note=f"Dry run: {sum(g['count'] for g in groups)} node(s) would be launched and {len(removes)} "
            "drained and terminated; nothing was executed.",
        )
        return False
    job_transition(job=job, to=State.LAUNCHING if needs_launch else State.DRAINING, now=now)
    return True


# --- launching -------------------------------------------------------------------------------------------------------


def _replan_shortfall(
    job: OptimizationJob, step: JobStep, ids: list[str], reason: str, now: datetime
) -> tuple[list[JobStep], bool]:
    """The optimizer plans again the nodes ``step`` could not launch, the ICE cache as ``unavailable``: new launch
    steps, and whether they fall back to on-demand. Aborts (nothing disrupted yet) when no offering can take them."""
    offering = step.params["offering"]
    what = f"{offering['instance_type']} in {offering['zone']} ({offering['capacity_type']})"
    try:
        result = replan.replan_shortfall(job=job, steps=_steps(job), failed=step, launched=len(ids), now=now)
    except ProblemError as exc:
        result = None
        why = f"planning again failed: {exc}"
    else:
        why = f"{sum(result.unplaced.values())} pod(s) fit no offering left" if result.unplaced else ""
    if result is None or result.unplaced:
        step_finish(step=step, state=StepState.FAILED, message=f"Insufficient capacity: {reason}", now=now)
        raise JobAbort(
            State.FAILED,
            f"No capacity for {what} and planning again without it finds no offering of the template for its pods "
            f"({why}"
            + ("" if job.plan.get("fallback_allowed") else "; fallback to on-demand is off")
            + "). Nothing was disrupted.",
        )
    is_fallback = offering["capacity_type"] == "spot" and "on-demand" in result.capacity_types()
    new_steps = [
        step_create(
            job=job,
            kind=Kind.LAUNCH,
            target=f"{g['count']} × {g['offering']['instance_type']} {g['offering']['zone']} "
            f"{g['offering']['capacity_type']}",
            params={**g, "replaces_step": step.pk},
            now=now,
        )
        for g in result.groups
    ]
    summary = ", ".join(t.target for t in new_steps) or "room on the nodes that stay"
    step_finish(
        step=step,
        state=StepState.SUCCEEDED if ids else StepState.FAILED,
        message=f"Insufficient capacity ({reason}); {len(ids)} launched, {result.short_nodes} re-planned by the "
        f"optimizer without the pools lacking capacity: {summary}.",
        result={"instance_ids": ids},
        now=now,
    )
    # The plan as it now stands: the nodes that could not be launched give way to the re-planned ones.
    nodes = list(job.plan.get("nodes", []))
    for _ in range(result.short_nodes):
        index = max(
            (i for i, n in enumerate(nodes) if n.get("new") and _offering_key(n) == _offering_key(offering)),
            default=None,
        )
        if index is not None:
            nodes.pop(index)
    for g in result.groups:
        o = g["offering"]
        nodes += [
            {
                "instance_type": o["instance_type"],
                "zone": o["zone"],
                "capacity_type": o["capacity_type"],
                "price": str(o.get("price") or "0"),
                "pods": pods,
                "new": True,
            }
            for pods in g["pods"]
        ]
    planned = replan.plan_hourly_cost(nodes).quantize(SIX_PLACES)
    job.plan = {**job.plan, "nodes": nodes, "hourly_cost": format(planned, "f")}
    job.planned_hourly_cost = planned
    if job.current_hourly_cost is not None:
        job.projected_hourly_saving = (job.current_hourly_cost - planned).quantize(SIX_PLACES)
    job.notes = [*job.notes, f"Re-planned after insufficient capacity for {what}: {summary}."]
    fields = ["plan", "planned_hourly_cost", "projected_hourly_saving", "notes"]
    if is_fallback:
        minutes = int(job.plan.get("fallback_restore_minutes") or 30)
        job.fallback = True
        job.restore_after = now + timedelta(minutes=minutes)
        job.notes = [
            *job.notes,
            f"Fallback: no spot capacity left for these pods; launching on-demand ({summary}). A fallback-restore "
            f"job follows after {minutes} min.",
        ]
        fields += ["fallback", "restore_after"]
    job.save(update_fields=fields)
    if is_fallback:
        record(
            action=actions.JOB_FALLBACK,
            organization_id=job.cluster.organization_id,
            resource=job,
            after={
                "job_id": job.pk,
                "from": offering,
                "to": [g["offering"] for g in result.groups],
                "restore_after": job.restore_after,
            },
            actor="system:optimization",
        )
    return new_steps, is_fallback


def _launch_step(job: OptimizationJob, step: JobStep, session: AccountSession, now: datetime) -> None:
    """Launch what the step still lacks; look first (tag ``spotopt.io/step``)."""
    offering = step.params["offering"]
    count = int(step.params["count"])
    existing = [i.instance_id for i in _instances_tagged(session, TAG_STEP, str(step.pk))]
    if len(existing) >= count:
        step_finish(step=step, state=StepState.SUCCEEDED, result={"instance_ids": existing[:count]}, now=now)
        return
    config = job.cluster.launch_config or {}
    subnet = ((config.get("subnets") or {}).get(offering["zone"])) or ""
    tags = {
        f"{CLUSTER_TAG_PREFIX}{job.cluster.name}": "owned",
        TAG_MANAGED: "spot-optimizer",
        TAG_JOB: str(job.pk),
        TAG_STEP: str(step.pk),
        "Name": f"{job.cluster.name}-spotopt",
    }
    step.attempts += 1
    step.started_at = step.started_at or now
    step.state = StepState.RUNNING
    short_reason = ""
    launched: tuple[str, ...] = ()
    capacity_short = False
    if not subnet:
        capacity_short = True
        short_reason = f"no subnet of the cluster in {offering['zone']}"
    else:
        try:
            result = ec2.create_fleet(
                session,
                launch_template_id=config["launch_template_id"],
                launch_template_version=str(config.get("launch_template_version") or "$Latest"),
                overrides=[LaunchOverride(instance_type=offering["instance_type"], subnet_id=subnet)],
                target_capacity=count - len(existing),
                capacity_type="spot" if offering["capacity_type"] == "spot" else "on-demand",
                tags=tags,
                client_token=f"spotopt-{job.pk}-{step.pk}-{step.attempts}",
            )
            launched = result.instance_ids
            capacity = [e for e in result.errors if ec2.is_capacity_error(e.code)]
            if capacity:
                capacity_short = True
                short_reason = "; ".join(sorted({f"{e.code}: {e.message}" for e in capacity}))
            elif result.errors and len(existing) + len(launched) < count:
                step.message = "; ".join(sorted({f"{e.code}: {e.message}" for e in result.errors}))[:4000]
        except cloud_errors.InsufficientCapacity as exc:
            capacity_short = True
            short_reason = f"{exc.code}: {exc}"
        except (cloud_errors.Throttled, cloud_errors.Unavailable) as exc:
            step.message = f"AWS unavailable, retried at the next tick: {exc}"[:4000]
        except cloud_errors.CloudError as exc:
            raise JobAbort(State.FAILED, f"Launching {offering['instance_type']} failed: {exc}") from exc
    ids = [*existing, *launched]
    step.result = {**step.result, "instance_ids": ids}
    if len(ids) >= count:
        step_finish(step=step, state=StepState.SUCCEEDED, result={"instance_ids": ids[:count]}, now=now)
        return
    if capacity_short:
        ice.mark_unavailable(cluster=job.cluster, offerings=[_offering_key(offering)], reason=short_reason, now=now)
        if job.trigger == OptimizationJob.Trigger.INTERRUPTION:  # one node's place, not the cluster's plan
            if interruption_jobs.interruption_shortfall(job=job, step=step, launched=ids, reason=short_reason, now=now):
                return
            step_finish(step=step, state=StepState.FAILED, message=f"Insufficient capacity: {short_reason}", now=now)
            raise JobAbort(State.FAILED, f"No capacity for the replacement and no other pool left ({short_reason}).")
        _replan_shortfall(job, step, ids, short_reason, now)
        return
    if step.attempts >= MAX_LAUNCH_ATTEMPTS:
        step_finish(step=step, state=StepState.FAILED, message=step.message or "Launch incomplete.", now=now)
        raise JobAbort(State.FAILED, f"Launching {offering['instance_type']} failed {step.attempts} times.")
    step.save()


def _launch(job: OptimizationJob, now: datetime) -> bool:
    steps = _steps(job)
    pending = [s for s in steps if s.kind == Kind.LAUNCH and s.state in (StepState.PENDING, StepState.RUNNING)]
    if pending:
        _launch_step(job, pending[0], _session(job.cluster), now)
        return pending[0].state != StepState.RUNNING or len(pending) > 1
    # Every launch is requested: the new instances join the inventory now, in a move of their own (the launch
    # request itself waits for nothing but EC2).
    if any(s.kind == Kind.LAUNCH and s.state == StepState.SUCCEEDED for s in steps):
        _sync_inventory(job.cluster, _session(job.cluster))
    step_create(
        job=job,
        kind=Kind.WAIT_READY,
        target=f"{len(_launched_ids(steps))} node(s)",
        params={"instance_ids": _launched_ids(steps)},
        state=StepState.RUNNING,
        now=now,
    ).started_at = now
    job_transition(job=job, to=State.WAITING_READY, now=now)
    return True


# --- waiting until Ready ---------------------------------------------------------------------------------------------


def _wait_ready(job: OptimizationJob, now: datetime) -> bool:
    steps = _steps(job)
    wait = next(s for s in steps if s.kind == Kind.WAIT_READY)
    ids = list(wait.params.get("instance_ids") or [])
    ready = dict(
        KubeNode.objects.filter(cluster=job.cluster, ec2_instance_id__in=ids, ready=True).values_list(
            "ec2_instance_id", "name"
        )
    )
    if len(ready) == len(set(ids)):
        step_finish(step=wait, state=StepState.SUCCEEDED, result={"nodes": ready}, now=now)
        setup = job.plan.get("node_setup") or {}
        for name in sorted(ready.values()):
            if setup.get("labels"):
                enqueue_action(
                    cluster=job.cluster,
                    type="label",
                    target=name,
                    params={"labels": setup["labels"]},
                    origin=wait.origin,
                    reason=f"optimization job {job.pk}: template labels",
                    actor="system:optimization",
                )
            for taint in setup.get("taints") or []:
                enqueue_action(
                    cluster=job.cluster,
                    type="taint",
                    target=name,
                    params=taint,
                    origin=wait.origin,
                    reason=f"optimization job {job.pk}: template taints",
                    actor="system:optimization",
                )
        job_transition(job=job, to=State.DRAINING, now=now)
        return True
    timeout = timedelta(minutes=policy_for(job.cluster).ready_timeout_minutes)
    if now - wait.created_at >= timeout:
        missing = sorted(set(ids) - set(ready))
        step_finish(step=wait, state=StepState.FAILED, message=f"Not Ready in time: {', '.join(missing)}", now=now)
        raise JobAbort(
            State.ROLLED_BACK,
            f"{len(missing)} launched node(s) not Ready after {timeout.seconds // 60} min ({', '.join(missing)}): "
            "terminated what was launched.",
        )
    return False


# --- draining and terminating ----------------------------------------------------------------------------------------


@dataclass
class _NodeSteps:
    cordon: JobStep | None = None
    drain: JobStep | None = None
    terminate: JobStep | None = None
    uncordon: JobStep | None = None


def _by_node(steps: list[JobStep]) -> dict[str, _NodeSteps]:
    nodes: dict[str, _NodeSteps] = defaultdict(_NodeSteps)
    for step in steps:
        if step.kind in (Kind.CORDON, Kind.DRAIN, Kind.TERMINATE, Kind.UNCORDON):
            setattr(nodes[step.target], step.kind, step)
    return nodes


def _enqueue_drain(job: OptimizationJob, step: JobStep, node_name: str, policy: ClusterPolicy, now: datetime) -> int:
    # One drain attempt is short; a blocked one (PDB) fails and is queued again until the policy's drain timeout.
    timeout = min(policy.drain_timeout_minutes * 60, settings.OPTIMIZATION_DRAIN_ATTEMPT_SECONDS)
    action = enqueue_action(
        cluster=job.cluster,
        type="drain",
        target=node_name,
        params={**DRAIN_PARAMS, "timeout_seconds": timeout},
        deadline=now + timedelta(seconds=timeout + DRAIN_GRACE_SECONDS + 300),
        origin=step.origin,
        reason=f"optimization job {job.pk}",
        actor="system:optimization",
        dedupe=False,
    )
    return action.pk


def _detach_from_group(name: str, instance_id: str, session: AccountSession) -> None:
    """Detach the instance from its Auto Scaling group (an EKS managed node group's too) with a decrement of the
    desired capacity, so that the group does not launch a replacement; look first (a repeated step finds it
    detached). A group at its minimum size would refuse: the job stops there rather than have the node replaced."""
    found = autoscaling.describe_auto_scaling_groups(session, names=[name])
    group = found[0] if found else None
    if group is None or instance_id not in group.instance_ids:
        return
    if group.desired_capacity - 1 < group.min_size:
        raise JobAbort(
            State.FAILED,
            f"{instance_id} belongs to Auto Scaling group {name}, at its minimum size ({group.min_size}): removing it "
            "would have the group launch a replacement. Node uncordoned.",
        )
    autoscaling.detach_instances(session, name=name, instance_ids=[instance_id], decrement_desired_capacity=True)


def _terminate_node(job: OptimizationJob, node_id: str, step: JobStep, session: AccountSession, now: datetime) -> bool:
    """Detach from the Auto Scaling group (decrementing it) and terminate; look at the instance first."""
    facts = job.current_nodes.get(node_id, {})
    instance_id = facts.get("instance_id") or ""
    step.attempts += 1
    step.started_at = step.started_at or now
    if not instance_id:
        step_finish(step=step, state=StepState.SKIPPED, message="No EC2 instance to terminate.", now=now)
        return True
    try:
        found = ec2.describe_instances(session, instance_ids=[instance_id])
        state = found[0].state if found else "terminated"
        if state not in ("shutting-down", "terminated"):
            if facts.get("asg_name"):
                try:
                    _detach_from_group(facts["asg_name"], instance_id, session)
                except JobAbort as exc:
                    step_finish(step=step, state=StepState.FAILED, message=exc.reason, now=now)
                    raise
            ec2.terminate_instances(session, instance_ids=[instance_id])
    except cloud_errors.NotFound:
        pass
    except cloud_errors.CloudError as exc:
        step.message = f"Terminate failed, retried: {exc}"[:4000]
        step.state = StepState.RUNNING
        step.save()
        return False
    step_finish(step=step, state=StepState.SUCCEEDED, result={"instance_id": instance_id}, now=now)
    return True


def _pods_on(job: OptimizationJob, node_names: list[str]) -> dict[str, tuple[int, bool]]:
    """Workload pods and whether a do-not-disrupt pod runs, per node (one query)."""
    out: dict[str, list] = defaultdict(lambda: [0, False])
    rows = KubePod.objects.filter(
        cluster=job.cluster, node_name__in=node_names, daemonset=False, phase__in=("Running", "Pending", "")
    ).values_list("node_name", "do_not_disrupt", "owner_kind")
    for node, dnd, owner_kind in rows:
        if owner_kind == "Node":
            continue  # mirror pods go with the node
        out[node][0] += 1
        out[node][1] = out[node][1] or dnd
    return {k: (v[0], v[1]) for k, v in out.items()}


def _owners_on(job: OptimizationJob, node_names: list[str]) -> dict[str, list[list[str]]]:
    """The controllers (namespace, kind, name) of the workload pods on each node (one query): a drain's evicted pods
    come back as pods of the same controllers."""
    out: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    rows = (
        KubePod.objects.filter(cluster=job.cluster, node_name__in=node_names, daemonset=False)
        .exclude(owner_kind__in=("", "Node"))
        .values_list("node_name", "namespace", "owner_kind", "owner_name")
    )
    for node, namespace, kind, name in rows:
        out[node].add((namespace, kind, name))
    return {node: [list(o) for o in sorted(owners)] for node, owners in out.items()}


def _evicted_pods_waiting(
    job: OptimizationJob, drains: list[JobStep], finished: list[JobStep], actions_by_id: dict[int, AgentAction]
) -> str | None:
    """What the job still waits for before it goes on, or None: a snapshot taken after the ``finished`` drains, and
    no Pending pod of a controller whose pods the ``drains`` evicted (any Pending pod, for a drain that did not record
    its controllers). Two queries."""
    done = [
        a.finished_at
        for a in (actions_by_id.get(d.result.get("action_id")) for d in finished)
        if a is not None and a.finished_at is not None
    ]
    if done:
        last = AgentStatus.objects.filter(cluster=job.cluster).values_list("last_snapshot_at", flat=True).first()
        if last is None or last <= max(done):
            return "No snapshot from the agent"
    owners = {tuple(o) for d in drains for o in d.params.get("owners", [])}
    any_pending = any("owners" not in d.params for d in drains)
    if not owners and not any_pending:
        return None
    pending = [
        f"{namespace}/{name}"
        for namespace, name, kind, owner in KubePod.objects.filter(
            cluster=job.cluster, phase="Pending", daemonset=False
        ).values_list("namespace", "name", "owner_kind", "owner_name")
        if any_pending or (namespace, kind, owner) in owners
    ]
    if not pending:
        return None
    shown = ", ".join(sorted(pending)[:5]) + (" …" if len(pending) > 5 else "")
    return f"{len(pending)} evicted pod(s) still Pending ({shown})"


def _drain(job: OptimizationJob, now: datetime) -> bool:
    steps = _steps(job)
    policy = policy_for(job.cluster)
    removes: list[str] = list(job.plan.get("remove") or [])
    nodes = _by_node(steps)
    actions_by_id = {
        a.pk: a
        for a in AgentAction.objects.filter(
            pk__in=[s.result.get("action_id") for n in nodes.values() for s in (n.drain,) if s and s.result]
        )
    }
    session: AccountSession | None = None
    moved = False
    timeout = timedelta(minutes=policy.drain_timeout_minutes)
    in_flight: list[str] = []
    drained: list[str] = []  # drained, not yet terminated
    for node_id in removes:
        n = nodes.get(node_id)
        if n is None or n.drain is None or n.drain.state in (StepState.SKIPPED,):
            continue
        if n.terminate is not None and n.terminate.state in (StepState.SUCCEEDED, StepState.SKIPPED):
            continue
        if n.drain.state == StepState.RUNNING:
            action = actions_by_id.get(n.drain.result.get("action_id"))
            if action is not None and action.state == AgentAction.State.SUCCEEDED:
                step_finish(step=n.drain, state=StepState.SUCCEEDED, message=action.result_message, now=now)
                moved = True
            elif action is None or action.state in (AgentAction.State.FAILED, AgentAction.State.EXPIRED):
                if now - n.drain.started_at >= timeout:
                    message = action.result_message if action is not None else "no drain action"
                    step_finish(step=n.drain, state=StepState.FAILED, message=message, now=now)
                    raise JobAbort(
                        State.FAILED,
                        f"Draining {job.current_nodes.get(node_id, {}).get('node_name') or node_id} was blocked for "
                        f"{policy.drain_timeout_minutes} min ({message}): node uncordoned, empty launched nodes "
                        "terminated.",
                    )
                name = job.current_nodes.get(node_id, {}).get("node_name", "")
                n.drain.attempts += 1
                n.drain.result = {
                    **n.drain.result,
                    "action_id": _enqueue_drain(job, n.drain, name, policy, now),
                    "previous_action_ids": [
                        *n.drain.result.get("previous_action_ids", []),
                        n.drain.result.get("action_id"),
                    ],
                }
                n.drain.message = f"Drain retried: {action.result_message if action else ''}"[:4000]
                n.drain.save()
                moved = True
            elif now - n.drain.started_at >= timeout + timedelta(seconds=DRAIN_GRACE_SECONDS + 300):
                raise JobAbort(State.FAILED, f"The agent did not drain {node_id} in time (is it running?).")
        if n.drain.state == StepState.SUCCEEDED and n.terminate is None:
            drained.append(node_id)
            continue
        if n.drain.state == StepState.SUCCEEDED:
            session = session or _session(job.cluster)
            n.terminate.job = job
            if _terminate_node(job, node_id, n.terminate, session, now):
                moved = True
                continue
        in_flight.append(node_id)

    # The pods the drains evicted must be running again before a drained node goes (it is uncordoned if they never
    # are) and before the next batch is cordoned: the scheduler packs them its own way, not as the plan did.
    draining = [nodes[nid].drain for nid in removes if nid in nodes and nodes[nid].drain is not None]
    waiting = (
        _evicted_pods_waiting(
            job,
            [d for d in draining if d.state in (StepState.RUNNING, StepState.SUCCEEDED)],
            [nodes[nid].drain for nid in drained],
            actions_by_id,
        )
        if (drained or in_flight) and job.trigger != OptimizationJob.Trigger.INTERRUPTION
        else None  # an interrupted node goes whatever its pods do: AWS is taking it back
    )
    if drained and waiting is not None:
        since = min(nodes[nid].drain.finished_at or now for nid in drained)
        if now - since >= timeout:
            raise JobAbort(
                State.FAILED,
                f"{waiting} {policy.drain_timeout_minutes} min after draining "
                f"{', '.join(job.current_nodes.get(nid, {}).get('node_name') or nid for nid in drained)}: drained "
                "nodes uncordoned, empty launched nodes terminated.",
            )
        for nid in drained:
            step = nodes[nid].drain
            if step.message != f"Waiting: {waiting}.":
                step.message = f"Waiting: {waiting}."
                step.save(update_fields=["message"])
        in_flight.extend(drained)
    else:
        for node_id in drained:
            session = session or _session(job.cluster)
            term = step_create(job=job, kind=Kind.TERMINATE, target=node_id, now=now)
            term.job = job
            nodes[node_id].terminate = term
            if _terminate_node(job, node_id, term, session, now):
                moved = True
            else:
                in_flight.append(node_id)

    started = {nid for nid, n in nodes.items() if n.drain is not None or n.terminate is not None}
    remaining = [nid for nid in removes if nid not in started]
    if remaining and not job.cancel_requested and waiting is None:
        launched = len(_launched_ids(steps))
        decision = disruption_allowance(
            policy,
            node_count=len(job.current_nodes) + launched,
            at=now,
            reason="Empty" if policy.consolidation_policy == "when-empty" else "Underutilized",
            disrupting=len(in_flight),
        )
        allowed = len(remaining) if decision.allowed == disruption.UNBOUNDED else int(decision.allowed)
        if job.trigger == OptimizationJob.Trigger.INTERRUPTION:
            allowed = len(remaining)  # AWS is taking the node back: no budget holds it
        batch = remaining[: max(0, allowed)]
        names = [job.current_nodes.get(nid, {}).get("node_name", "") for nid in batch]
        pods = _pods_on(job, [name for name in names if name])
        owners = _owners_on(job, [name for name in names if name]) if batch else {}
        for node_id, name in zip(batch, names, strict=True):
            if name and pods.get(name, (0, False))[1] and job.trigger != OptimizationJob.Trigger.INTERRUPTION:
                step_create(job=job, kind=Kind.DRAIN, target=node_id, state=StepState.SKIPPED, now=now)
                job.notes = [*job.notes, f"Kept {name}: it now runs a do-not-disrupt pod."]
                job.save(update_fields=["notes"])
                moved = True
                continue
            if not name:
                # Never joined the cluster: nothing to drain.
                session = session or _session(job.cluster)
                step_create(job=job, kind=Kind.DRAIN, target=node_id, state=StepState.SKIPPED, now=now)
                term = step_create(job=job, kind=Kind.TERMINATE, target=node_id, now=now)
                term.job = job
                _terminate_node(job, node_id, term, session, now)
                moved = True
                continue
            cordon = step_create(job=job, kind=Kind.CORDON, target=node_id, state=StepState.RUNNING, now=now)
            cordon.job = job
            cordon_action = enqueue_action(
                cluster=job.cluster,
                type="cordon",
                target=name,
                origin=cordon.origin,
                reason=f"optimization job {job.pk}",
                actor="system:optimization",
            )
            step_finish(step=cordon, state=StepState.SUCCEEDED, result={"action_id": cordon_action.pk}, now=now)
            drain = step_create(
                job=job,
                kind=Kind.DRAIN,
                target=node_id,
                params={"owners": owners.get(name, [])},
                state=StepState.RUNNING,
                now=now,
            )
            drain.job = job
            drain.started_at = now
            drain.result = {"action_id": _enqueue_drain(job, drain, name, policy, now), "node": name}
            drain.save()
            in_flight.append(node_id)
            moved = True
        if not batch and not in_flight and decision.allowed == 0:
            job.next_check_at = now + timedelta(seconds=30)
            job.save(update_fields=["next_check_at"])
    if not in_flight and not [nid for nid in removes if nid not in _started(job)]:
        job_transition(job=job, to=State.TERMINATING, now=now)
        return True
    if job.cancel_requested and not in_flight:
        job_transition(job=job, to=State.CANCELLED, now=now, note="Cancelled between batches.")
        return False
    return moved


def _started(job: OptimizationJob) -> set[str]:
    return set(JobStep.objects.filter(job=job, kind__in=(Kind.DRAIN, Kind.TERMINATE)).values_list("target", flat=True))


def _terminate(job: OptimizationJob, now: datetime) -> bool:
    steps = _steps(job)
    open_steps = [s for s in steps if s.kind == Kind.TERMINATE and s.state in (StepState.PENDING, StepState.RUNNING)]
    session = _session(job.cluster) if (open_steps or steps) else None
    for step in open_steps:
        if not _terminate_node(job, step.target, step, session, now):
            return False
    if session is not None:
        _sync_inventory(job.cluster, session)
    with transaction.atomic():
        entry = job_ledger_entry(job=job, steps=_steps(job), now=now)
        job.realized_hourly_saving = entry.realized_hourly
        job.save(update_fields=["realized_hourly_saving"])
        job_transition(job=job, to=State.SUCCEEDED, now=now)
    return False


# --- rollback and cancellation ---------------------------------------------------------------------------------------


def _rollback_launched(job: OptimizationJob, now: datetime, *, only_empty: bool = False) -> list[str]:
    """Terminate what this job launched (found by its tag too, so nothing escapes); ``only_empty`` keeps the ones
    that carry workload pods."""
    try:
        session = _session(job.cluster)
    except JobAbort:
        return []
    try:
        ids = {i.instance_id for i in _instances_tagged(session, TAG_JOB, str(job.pk))}
    except cloud_errors.CloudError:
        ids = set()
    ids |= set(_launched_ids(_steps(job)))
    if only_empty and ids:
        names = dict(
            KubeNode.objects.filter(cluster=job.cluster, ec2_instance_id__in=ids).values_list("ec2_instance_id", "name")
        )
        busy = _pods_on(job, list(names.values()))
        ids = {i for i in ids if busy.get(names.get(i, ""), (0, False))[0] == 0}
    ids_list = sorted(ids)
    step = step_create(job=job, kind=Kind.ROLLBACK, target=f"{len(ids_list)} node(s)", state=StepState.RUNNING, now=now)
    step.job = job
    if ids_list:
        try:
            ec2.terminate_instances(session, instance_ids=ids_list)
        except cloud_errors.CloudError as exc:
            step_finish(step=step, state=StepState.FAILED, message=str(exc), result={"instance_ids": ids_list}, now=now)
            return ids_list
        _sync_inventory(job.cluster, session)
    step_finish(step=step, state=StepState.SUCCEEDED, result={"instance_ids": ids_list}, now=now)
    return ids_list


def _uncordon_in_flight(job: OptimizationJob, now: datetime) -> None:
    nodes = _by_node(_steps(job))
    for node_id, n in nodes.items():
        if n.cordon is None or (n.terminate is not None and n.terminate.state == StepState.SUCCEEDED):
            continue
        if n.uncordon is not None:
            continue
        name = job.current_nodes.get(node_id, {}).get("node_name", "")
        step = step_create(job=job, kind=Kind.UNCORDON, target=node_id, state=StepState.RUNNING, now=now)
        step.job = job
        action = enqueue_action(
            cluster=job.cluster,
            type="uncordon",
            target=name,
            origin=step.origin,
            reason=f"optimization job {job.pk} stopped",
            actor="system:optimization",
        )
        step_finish(step=step, state=StepState.SUCCEEDED, result={"action_id": action.pk}, now=now)


def _abort(job: OptimizationJob, exc: JobAbort, now: datetime) -> None:
    if job.state in (State.DRAINING, State.TERMINATING):
        _uncordon_in_flight(job, now)
        _rollback_launched(job, now, only_empty=True)
    else:
        _rollback_launched(job, now)
    job_transition(job=job, to=exc.state, now=now, error=exc.reason)


def _cancel_running(job: OptimizationJob, now: datetime) -> bool:
    if job.state in (State.LAUNCHING, State.WAITING_READY):
        _rollback_launched(job, now)
        job_transition(job=job, to=State.CANCELLED, now=now, note="Cancelled: what was launched is terminated.")
        return False
    if job.state == State.DRAINING:
        _uncordon_in_flight(job, now)
        job_transition(
            job=job, to=State.CANCELLED, now=now, note="Cancelled: nodes being drained uncordoned; new nodes kept."
        )
        return False
    return False


# --- advancing -------------------------------------------------------------------------------------------------------

HANDLERS = {
    State.PLANNED: _start_validation,
    State.VALIDATING: _validate,
    State.LAUNCHING: _launch,
    State.WAITING_READY: _wait_ready,
    State.DRAINING: _drain,
    State.TERMINATING: _terminate,
}


def _advance_once(job: OptimizationJob, now: datetime) -> bool:
    if job.cancel_requested and job.state in (State.LAUNCHING, State.WAITING_READY, State.DRAINING):
        return _cancel_running(job, now)
    handler = HANDLERS.get(job.state)
    if handler is None:
        return False
    if job.state in (State.PLANNED, State.VALIDATING) and not _awake(job.cluster):
        return False  # a job touches nothing while the cluster sleeps or wakes; it goes on once it is awake
    try:
        return handler(job, now)
    except JobAbort as exc:
        _abort(job, exc, now)
        return False


def _next_look_in(job: OptimizationJob, now: datetime) -> float | None:
    """Seconds until the job is worth another look, when it waits on something that moves by itself (the
    validation delay, new nodes joining, the agent's drains, AWS): a follow-up is queued for then."""
    if job.is_final or job.state not in POLL_SECONDS:
        return None
    return max((job.next_check_at - now).total_seconds(), POLL_SECONDS[job.state])


def advance_job(*, job_id: int, max_moves: int = 30, follow_up: bool = True) -> str | None:
    """Advance one job as far as it goes without waiting; each move is its own transaction under the job's row lock
    (skip_locked: a job another worker holds is left to it). When the job then waits on something that moves by
    itself, a follow-up ``advance_job`` is queued after a short countdown. Returns the job's state, or None if it was
    not ours."""
    state = None
    job = None
    for _ in range(max_moves):
        with transaction.atomic():
            locked = (
                OptimizationJob.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("cluster", "cluster__cloud_account", "cluster__organization")
                .filter(pk=job_id, state__in=RUNNABLE)
                .first()
            )
            if locked is None:
                break
            job = locked
            moved = _advance_once(job, timezone.now())
            state = job.state
        if not moved or job.is_final:
            break
    if follow_up and job is not None:
        wait = _next_look_in(job, timezone.now())
        if wait is not None:
            followup.schedule_advance(job.pk, countdown=wait, plans=job.state in PLANNING_STATES)
    return state


# --- the tick --------------------------------------------------------------------------------------------------------


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)
    restores: list[int] = field(default_factory=list)
    advanced: dict[int, str | None] = field(default_factory=dict)
    queued_clusters: list[int] = field(default_factory=list)
    queued_restores: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "restores": self.restores,
            "queued_clusters": self.queued_clusters,
            "queued_restores": self.queued_restores,
            "advanced": self.advanced,
        }


def _awake(cluster: Cluster) -> bool:
    """No job starts while the cluster is not awake (hibernation)."""
    return cluster.hibernation_state == Cluster.HibernationState.AWAKE


def _due_policies(now: datetime):
    """Policies of clusters with optimization enabled and no active exclusive job (one query)."""
    busy = OptimizationJob.objects.filter(
        cluster=OuterRef("cluster"),
        state__in=OptimizationJob.ACTIVE_STATES,
        trigger__in=OptimizationJob.EXCLUSIVE_TRIGGERS,
    )
    last = Recommendation.objects.filter(cluster=OuterRef("cluster")).values("computed_at")[:1]
    return (
        ClusterPolicy.objects.filter(optimization_enabled=True, cluster__missing_since__isnull=True)
        .exclude(consolidate_after="Never")
        .annotate(busy=Exists(busy), last_evaluated=Subquery(last))
        .filter(busy=False)
        .select_related("cluster", "cluster__organization", "cluster__cloud_account")
    )


def _is_due(policy: ClusterPolicy, now: datetime) -> bool:
    """Last evaluated at least ``consolidate_after`` ago (or never), and awake."""
    after = disruption.parse_duration(policy.consolidate_after)
    if after is None or (policy.last_evaluated is not None and now - policy.last_evaluated < after):
        return False
    return _awake(policy.cluster)


def due_clusters(*, now: datetime) -> list[int]:
    """Clusters with optimization enabled, no active job, not hibernating, last evaluated at least
    ``consolidate_after`` ago. One query."""
    return [policy.cluster_id for policy in _due_policies(now) if _is_due(policy, now)]


def evaluate_cluster(*, cluster_id: int, now: datetime | None = None) -> int | None:
    """Plan one due cluster (looked at again: it may have been planned, hibernated or given a job since it was
    queued); a plan saving at least ``min_saving_pct`` becomes a job (waiting for approval in recommend mode).
    Returns the job's id."""
    now = now or timezone.now()
    policy = _due_policies(now).filter(cluster_id=cluster_id).first()
    if policy is None or not _is_due(policy, now):
        return None
    cluster = policy.cluster
    try:
        # a cluster whose problem has not changed since its last plan is not planned again (the same problem has
        # the same plan): at the scale where a plan takes minutes, most ticks find nothing changed
        result, _ = plan_or_reuse(cluster=cluster, now=now)
    except ApplicationError as exc:
        recommendation_save(cluster=cluster, result=None, error=exc.message, now=now)
        return None
    except Exception:
        # Recorded as the cluster's evaluation, so that it waits ``consolidate_after`` like any other instead of
        # planning again at every tick; the worker's log has the traceback.
        logger.exception("planning cluster %s failed", cluster.pk)
        recommendation_save(cluster=cluster, result=None, error="Planning failed unexpectedly.", now=now)
        return None
    recommendation_save(cluster=cluster, result=result, now=now)
    if not result.changes_anything or result.saving_pct < policy.min_saving_pct:
        return None
    try:
        job = job_create(
            cluster=cluster,
            trigger=OptimizationJob.Trigger.SCHEDULE,
            actor="system:schedule",
            result=result,
            now=now,
        )
    except Conflict:
        return None
    return job.pk


def start_due_jobs(*, now: datetime) -> list[int]:
    """Plan every due cluster in line (``evaluate_cluster``); the ids of the jobs started."""
    started = [evaluate_cluster(cluster_id=cluster_id, now=now) for cluster_id in due_clusters(now=now)]
    return [job_id for job_id in started if job_id is not None]


def plan_after_wake(*, cluster_id: int, actor: str, now: datetime | None = None) -> int | None:
    """A cluster woke from hibernation without the capacity optimization jobs had launched (its groups brought back
    their own nodes): plan it anew as a scheduled job (waiting for approval in recommend mode). Why it could not be
    planned is kept as the cluster's recommendation error. Returns the job's id."""
    now = now or timezone.now()
    cluster = Cluster.objects.filter(pk=cluster_id).select_related("organization", "cloud_account").first()
    if cluster is None or not _awake(cluster):
        return None
    try:
        job = job_create(cluster=cluster, trigger=OptimizationJob.Trigger.SCHEDULE, actor=actor, now=now)
    except Conflict:
        return None  # a job runs already: it plans from what runs now
    except ApplicationError as exc:
        recommendation_save(cluster=cluster, result=None, error=exc.message, now=now)
        logger.warning("cluster %s not planned anew after waking: %s", cluster_id, exc.message)
        return None
    return job.pk


def due_restores(*, now: datetime) -> list[int]:
    """Jobs that fell back to on-demand ``fallback_restore_minutes`` ago and have no restore yet. One query."""
    return list(
        OptimizationJob.objects.filter(
            fallback=True, restored_by__isnull=True, restore_after__lte=now, state=State.SUCCEEDED
        ).values_list("pk", flat=True)
    )


def restore_fallback(*, job_id: int, now: datetime | None = None) -> int | None:
    """After ``fallback_restore_minutes``, a job that fell back to on-demand gets a ``fallback-restore`` job that
    moves back to spot if the saving holds (else it is looked at again after the same delay). Returns the restore
    job's id."""
    now = now or timezone.now()
    job = (
        OptimizationJob.objects.filter(
            pk=job_id, fallback=True, restored_by__isnull=True, restore_after__lte=now, state=State.SUCCEEDED
        )
        .select_related("cluster", "cluster__organization", "cluster__cloud_account")
        .first()
    )
    if job is None:
        return None
    minutes = int(job.plan.get("fallback_restore_minutes") or 30)
    try:
        result = plan_cluster(job.cluster, now=now)
        if not result.changes_anything or result.saving_pct < result.built.policy.min_saving_pct:
            raise Conflict("no saving")
        restore = job_create(
            cluster=job.cluster,
            trigger=OptimizationJob.Trigger.FALLBACK_RESTORE,
            actor="system:fallback-restore",
            result=result,
            approval_required=False,
            now=now,
        )
    except ApplicationError:
        OptimizationJob.objects.filter(pk=job.pk).update(restore_after=now + timedelta(minutes=minutes))
        return None
    except Exception:  # looked at again after the same delay, not at every tick; the traceback in the worker's log
        logger.exception("planning the restore of optimization job %s failed", job.pk)
        OptimizationJob.objects.filter(pk=job.pk).update(restore_after=now + timedelta(minutes=minutes))
        return None
    OptimizationJob.objects.filter(pk=job.pk).update(restored_by=restore)
    return restore.pk


def start_fallback_restores(*, now: datetime) -> list[int]:
    """Restore every due fallback in line (``restore_fallback``); the ids of the restore jobs started."""
    started = [restore_fallback(job_id=job_id, now=now) for job_id in due_restores(now=now)]
    return [job_id for job_id in started if job_id is not None]


def tick(*, now: datetime | None = None, limit: int = 500, in_line: bool | None = None) -> TickReport:
    """One tick: start due jobs, then advance every runnable job that is due. Constant queries for clusters with
    nothing to do (one for the automatic candidates, one for restores, one for the due jobs).

    Nothing that plans runs here when tasks go through a broker (``evaluation``): due clusters and restores are
    queued as their own tasks, and so are jobs waiting to be validated (validation plans again); the tick only
    advances what moves in seconds. Run eagerly (or ``in_line``), the tick does all of it itself."""
    now = now or timezone.now()
    report = TickReport()
    queues = evaluation.queues() if in_line is None else not in_line
    # Restores first: moving fallback nodes back to spot goes before a new consolidation of the same cluster.
    if queues:
        report.queued_restores = [
            job_id for job_id in due_restores(now=now) if evaluation.schedule(evaluation.RESTORE_TASK, job_id)
        ]
        report.queued_clusters = [
            cluster_id
            for cluster_id in due_clusters(now=now)
            if evaluation.schedule(evaluation.EVALUATE_TASK, cluster_id)
        ]
    else:
        report.restores = start_fallback_restores(now=now)
        report.started = start_due_jobs(now=now)
    due = list(
        OptimizationJob.objects.filter(state__in=RUNNABLE, next_check_at__lte=now)
        .order_by("next_check_at", "id")
        .values_list("pk", "state")[:limit]
    )
    for job_id, state in due:
        # Validation plans again (up to minutes): the job's own task, not the tick (unless it cannot be queued).
        if queues and state in PLANNING_STATES and followup.queue_advance(job_id, plans=True):
            report.advanced[job_id] = "queued"
            continue
        try:
            report.advanced[job_id] = advance_job(job_id=job_id)
        except Exception:  # one job's bug must not stop the others; it is retried at the next tick
            logger.exception("advancing optimization job %s failed", job_id)
            report.advanced[job_id] = "error"
    return report


__all__ = [
    "JobAbort",
    "TickReport",
    "advance_job",
    "build_problem",
    "evaluate_cluster",
    "plan_after_wake",
    "restore_fallback",
    "start_due_jobs",
    "tick",
]
