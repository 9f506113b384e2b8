"""Optimization jobs: creation from a plan, approval, cancellation and the one audited transition function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record
from clusters.models import Cluster
from spotopt.errors import Conflict, ValidationFailed

from .. import actions
from ..models import JobStep, OptimizationJob
from ..planning import PlanResult, build_problem, plan_cluster
from . import evaluation, followup, notifications
from .recommendations import fresh_result

State = OptimizationJob.State
Trigger = OptimizationJob.Trigger

# Transitions a job may make; anything else is a bug and is refused.
ALLOWED: dict[str, set[str]] = {
    State.PENDING_APPROVAL: {State.PLANNED, State.CANCELLED},
    State.PLANNED: {State.VALIDATING, State.CANCELLED, State.SUCCEEDED},
    State.VALIDATING: {State.LAUNCHING, State.SUCCEEDED, State.CANCELLED, State.DRAINING, State.FAILED},
    State.LAUNCHING: {State.WAITING_READY, State.FAILED, State.CANCELLED, State.ROLLED_BACK, State.DRAINING},
    State.WAITING_READY: {State.DRAINING, State.ROLLED_BACK, State.CANCELLED, State.FAILED},
    State.DRAINING: {State.TERMINATING, State.FAILED, State.CANCELLED},
    State.TERMINATING: {State.SUCCEEDED, State.FAILED},
}
NOTIFY_ON = {State.PENDING_APPROVAL, State.FAILED, State.ROLLED_BACK}


def _actor_label(actor: Any) -> str:
    if getattr(actor, "is_authenticated", False):
        return f"user:{actor.email}"
    return str(actor or "system:optimization")


def job_summary(job: OptimizationJob) -> dict[str, Any]:
    """What an audit entry says about a job."""
    return {
        "job_id": job.pk,
        "cluster_id": job.cluster_id,
        "trigger": job.trigger,
        "state": job.state,
        "dry_run": job.dry_run,
        "projected_hourly_saving": job.projected_hourly_saving,
        "realized_hourly_saving": job.realized_hourly_saving,
        "fallback": job.fallback,
        "error": job.error,
    }


def job_transition(
    *, job: OptimizationJob, to: str, now: datetime | None = None, error: str = "", note: str = ""
) -> OptimizationJob:
    """Move ``job`` (locked by the caller) to state ``to``; audited with the system actor and the job id."""
    now = now or timezone.now()
    if to not in ALLOWED.get(job.state, set()):
        raise Conflict(f"A job cannot go from {job.state} to {to}.", code="invalid_transition")
    before = job_summary(job)
    job.state = to
    job.state_changed_at = now
    job.next_check_at = now
    if error:
        job.error = error[:4000]
    if note:
        job.notes = [*job.notes, note]
    if to == State.VALIDATING and job.started_at is None:
        job.started_at = now
    if to in OptimizationJob.FINAL_STATES:
        job.finished_at = now
    job.save()
    record(
        action=actions.JOB_TRANSITION,
        organization_id=job.cluster.organization_id,
        resource=job,
        before=before,
        after=job_summary(job) | ({"note": note} if note else {}),
        actor="system:optimization",
    )
    if to in NOTIFY_ON:
        notifications.notify_job(job=job)
    return job


def _from_plan(result: PlanResult) -> dict[str, Any]:
    built = result.built
    return {
        "plan": {**result.plan, "notes": result.notes},
        "current_nodes": {n.id: n.facts() for n in built.current_nodes},
        "current_hourly_cost": built.current_hourly_cost,
        "planned_hourly_cost": result.planned_hourly_cost,
        "projected_hourly_saving": result.saving_hourly,
    }


def job_create(
    *,
    cluster: Cluster,
    trigger: str,
    actor: Any = None,
    dry_run: bool = False,
    approval_required: bool | None = None,
    result: PlanResult | None = None,
    now: datetime | None = None,
    plan_in_background: bool = False,
) -> OptimizationJob:
    """Plan the cluster and create a job that carries the plan out.

    An operator's manual job starts ``planned`` (asking for it is the approval); a scheduled job of a cluster in
    ``recommend`` mode waits in ``pending_approval``. One active schedule/manual/fallback-restore job per cluster: a
    second one is a 409 (the database constraint decides races).

    With ``plan_in_background`` (an operator's request: the API, the console) and tasks going through a broker, a
    cluster whose recommendation is not fresh is not planned in the request (minutes for a big cluster, past the
    web server's timeout): its refresh is queued and the request is a 409 ``plan_pending``; the operator applies
    the new recommendation once it is there."""
    now = now or timezone.now()
    if trigger not in Trigger.values:
        raise ValidationFailed("Unknown trigger.", fields={"trigger": [f"One of {', '.join(Trigger.values)}."]})
    if not isinstance(dry_run, bool):
        raise ValidationFailed("dry_run must be true or false.", fields={"dry_run": ["Must be a boolean."]})
    if trigger in OptimizationJob.EXCLUSIVE_TRIGGERS and (
        OptimizationJob.objects.active()
        .filter(cluster=cluster, trigger__in=OptimizationJob.EXCLUSIVE_TRIGGERS)
        .exists()
    ):
        raise Conflict("The cluster already has an active optimization job.", code="job_active")
    if trigger == Trigger.MANUAL and cluster.hibernation_state != Cluster.HibernationState.AWAKE:
        raise Conflict(
            f"The cluster is {cluster.get_hibernation_state_display().lower()}: no job starts until it is awake.",
            code="cluster_not_awake",
        )
    # An operator's job carries out the recommendation they just read, when it is still fresh; else a plan made now.
    result = result or fresh_result(cluster=cluster, now=now)
    if result is None and plan_in_background and evaluation.queues():
        build_problem(cluster, now=now)  # a cluster that cannot be planned (no snapshot, no template) is a 400 now
        task = evaluation.REFRESH_TASK
        if evaluation.schedule(task, cluster.pk) or evaluation.pending(task, cluster.pk):
            raise Conflict(
                "The cluster has changed since its recommendation was computed; a new plan is being computed in the "
                "background. Apply it once the recommendation shows it (reload the page in a moment).",
                code="plan_pending",
            )
        # Nothing could be queued (cache or broker down): planned here.
    result = result or plan_cluster(cluster, now=now)
    if approval_required is None:
        approval_required = trigger == Trigger.SCHEDULE and result.built.policy.mode == "recommend"
    user = actor if getattr(actor, "is_authenticated", False) else None
    state = State.PENDING_APPROVAL if approval_required else State.PLANNED
    try:
        with transaction.atomic():
            job = OptimizationJob.objects.create(
                cluster=cluster,
                trigger=trigger,
                state=state,
                dry_run=dry_run,
                started_by=user,
                started_by_label=_actor_label(actor),
                approved_by=user if state == State.PLANNED else None,
                approved_at=now if state == State.PLANNED else None,
                created_at=now,
                state_changed_at=now,
                next_check_at=now,
                notes=list(result.notes),
                **_from_plan(result),
            )
            job.cluster = cluster
            record(
                action=actions.JOB_CREATED,
                organization_id=cluster.organization_id,
                resource=job,
                after=job_summary(job)
                | {
                    "current_hourly_cost": job.current_hourly_cost,
                    "planned_hourly_cost": job.planned_hourly_cost,
                    "add": len(result.adds),
                    "remove": result.removes,
                },
                actor=actor or "system:optimization",
            )
            if state == State.PENDING_APPROVAL:
                notifications.notify_job(job=job)
            else:
                followup.schedule_advance(job.pk, countdown=0, plans=True)  # next: validation
    except IntegrityError as exc:
        raise Conflict("The cluster already has an active optimization job.", code="job_active") from exc
    return job


def job_approve(*, job: OptimizationJob, actor: Any, now: datetime | None = None) -> OptimizationJob:
    """An operator approves a job that waits for approval; it starts at once (a follow-up; the tick otherwise)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = OptimizationJob.objects.select_for_update().select_related("cluster").get(pk=job.pk)
        if locked.state != State.PENDING_APPROVAL:
            raise Conflict(
                f"Only a job awaiting approval can be approved (this one is {locked.state}).",
                code="not_pending_approval",
            )
        locked.approved_by = actor if getattr(actor, "is_authenticated", False) else None
        locked.approved_at = now
        locked.save(update_fields=["approved_by", "approved_at"])
        record(
            action=actions.JOB_APPROVED,
            organization_id=locked.cluster.organization_id,
            resource=locked,
            after={"job_id": locked.pk, "approved_at": now},
            actor=actor,
        )
        job_transition(job=locked, to=State.PLANNED, now=now)
        followup.schedule_advance(locked.pk, countdown=0, plans=True)  # next: validation
    return locked


def job_cancel(*, job: OptimizationJob, actor: Any, now: datetime | None = None) -> OptimizationJob:
    """Cancel a job. Before it touches anything it ends ``cancelled`` at once; once it has launched, the runner stops
    it between steps, terminates what it launched and has not yet taken into service, uncordons what it cordoned
    and did not drain, and ends ``cancelled``. A job already terminating the old nodes finishes."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = OptimizationJob.objects.select_for_update().select_related("cluster").get(pk=job.pk)
        if locked.is_final:
            raise Conflict(f"The job has already ended ({locked.state}).", code="job_finished")
        if locked.state == State.TERMINATING:
            raise Conflict("The job is terminating the old nodes and can no longer be cancelled.", code="too_late")
        record(
            action=actions.JOB_CANCEL_REQUESTED,
            organization_id=locked.cluster.organization_id,
            resource=locked,
            after={"job_id": locked.pk, "state": locked.state},
            actor=actor,
        )
        if locked.state in (State.PENDING_APPROVAL, State.PLANNED, State.VALIDATING):
            job_transition(job=locked, to=State.CANCELLED, now=now, note=f"Cancelled by {_actor_label(actor)}.")
        else:
            locked.cancel_requested = True
            locked.next_check_at = now
            locked.save(update_fields=["cancel_requested", "next_check_at"])
    return locked


def step_create(
    *,
    job: OptimizationJob,
    kind: str,
    target: str = "",
    params: dict | None = None,
    state: str = JobStep.State.PENDING,
    now: datetime | None = None,
) -> JobStep:
    now = now or timezone.now()
    return JobStep.objects.create(
        job=job, kind=kind, target=target[:255], params=params or {}, state=state, created_at=now
    )


def step_finish(
    *, step: JobStep, state: str, message: str = "", result: dict | None = None, now: datetime | None = None
) -> JobStep:
    """End a step; audited (system actor) with the job id, what it produced and why."""
    now = now or timezone.now()
    step.state = state
    step.finished_at = now
    step.started_at = step.started_at or now
    if message:
        step.message = message[:4000]
    if result is not None:
        step.result = {**step.result, **result}
    step.save()
    record(
        action=actions.JOB_STEP,
        organization_id=step.job.cluster.organization_id,
        resource_type="optimizationjob",
        resource_id=step.job_id,
        after={
            "job_id": step.job_id,
            "step_id": step.pk,
            "kind": step.kind,
            "target": step.target,
            "state": state,
            "message": step.message,
            "result": step.result,
        },
        actor="system:optimization",
    )
    return step
