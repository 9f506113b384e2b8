"""Celery adapters of the optimization app."""

from __future__ import annotations

from celery import shared_task

from .services import evaluation, followup, notifications, recommendations, runner


@shared_task(soft_time_limit=50, time_limit=58)
def tick() -> dict:
    """Beat, every minute: start due automatic and restore jobs, advance every active job as far as it can go."""
    return runner.tick().as_dict()


@shared_task(soft_time_limit=evaluation.SOFT_TIME_LIMIT, time_limit=evaluation.TIME_LIMIT)
def advance_job(job_id: int) -> str | None:
    """Advance one job: queued with a short countdown while it waits on something that moves by itself (new nodes
    joining, drains), so that it does not wait a whole beat period; it queues its own follow-up. The tick queues it
    too for jobs to validate: validation plans again, which can take minutes (the long limit)."""
    followup.follow_up_done(job_id)
    return runner.advance_job(job_id=job_id)


@shared_task(soft_time_limit=evaluation.SOFT_TIME_LIMIT, time_limit=evaluation.TIME_LIMIT)
def evaluate_cluster(cluster_id: int) -> int | None:
    """Plan a cluster the tick found due (a plan of a big cluster takes minutes); maybe start a job."""
    try:
        return runner.evaluate_cluster(cluster_id=cluster_id)
    finally:
        evaluation.done(evaluation.EVALUATE_TASK, cluster_id)


@shared_task(soft_time_limit=evaluation.SOFT_TIME_LIMIT, time_limit=evaluation.TIME_LIMIT)
def restore_fallback(job_id: int) -> int | None:
    """Plan the way back to spot of a job that fell back to on-demand; maybe start the restore job."""
    try:
        return runner.restore_fallback(job_id=job_id)
    finally:
        evaluation.done(evaluation.RESTORE_TASK, job_id)


@shared_task(soft_time_limit=evaluation.SOFT_TIME_LIMIT, time_limit=evaluation.TIME_LIMIT)
def plan_after_wake(cluster_id: int) -> int | None:
    """Plan anew a cluster that woke without the capacity jobs had launched (queued by the hibernation tick)."""
    try:
        return runner.plan_after_wake(cluster_id=cluster_id, actor="system:hibernation")
    finally:
        evaluation.done(evaluation.WAKE_TASK, cluster_id)


@shared_task(soft_time_limit=evaluation.SOFT_TIME_LIMIT, time_limit=evaluation.TIME_LIMIT)
def refresh_recommendation(cluster_id: int) -> None:
    """Plan again a cluster whose stale recommendation was read (the API answered the stale one meanwhile)."""
    try:
        recommendations.recommendation_refresh(cluster_id=cluster_id)
    finally:
        evaluation.done(evaluation.REFRESH_TASK, cluster_id)


@shared_task(
    autoretry_for=(notifications.WebhookFailed,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=20,
    time_limit=30,
)
def deliver_webhook(organization_id: int, payload: dict) -> bool:
    """POST a job notification to the organization's webhook; retried with backoff, never blocks a job."""
    return notifications.webhook_deliver(organization_id=organization_id, payload=payload)
