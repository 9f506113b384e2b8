"""Follow-ups: a job that can move on soon is advanced again after a short countdown (a Celery task), not at the
next beat minute. The beat's tick stays the safety net: it advances every due job whatever was scheduled.

At most one follow-up per job is queued at a time (a cache key held for the countdown), so that the tick and a
running chain of follow-ups do not multiply. The follow-up only calls ``advance_job``, which takes the job's row lock
with SKIP LOCKED: a follow-up that meets another worker on the job leaves it to that worker."""

from __future__ import annotations

import logging
import math

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from spotopt.cache import CacheUnavailable

logger = logging.getLogger(__name__)

ADVANCE_TASK = "optimization.tasks.advance_job"
#: Beyond this the beat's next tick comes first anyway.
MAX_COUNTDOWN_SECONDS = 60


def _key(job_id: int) -> str:
    return f"optimization:follow-up:{job_id}"


def _route(plans: bool) -> dict:
    """A move that plans (a job's validation) goes to the planning queue (``CELERY_PLANNING_QUEUE``)."""
    return {"queue": settings.CELERY_PLANNING_QUEUE} if plans else {}


def schedule_advance(job_id: int, *, countdown: float, plans: bool = False) -> bool:
    """Queue ``advance_job(job_id)`` in ``countdown`` seconds, after the current transaction commits; False when one
    is already queued, when the tick comes first, or when tasks run eagerly (no broker to hold a countdown)."""
    if countdown > MAX_COUNTDOWN_SECONDS or current_app.conf.task_always_eager:
        return False
    countdown = max(0, math.ceil(countdown))
    try:
        if not cache.add(_key(job_id), 1, timeout=max(1, countdown)):
            return False
    except CacheUnavailable:  # a cache outage must not fail the job's own transaction: the tick advances it
        logger.warning("cache unavailable: no follow-up queued for optimization job %s", job_id)
        return False

    def send() -> None:
        try:
            current_app.send_task(ADVANCE_TASK, args=[job_id], countdown=countdown, **_route(plans))
        except Exception:  # a broker outage must not break the runner: the tick advances the job
            cache.delete(_key(job_id))
            logger.exception("could not queue the follow-up of optimization job %s", job_id)

    transaction.on_commit(send)
    return True


def queue_advance(job_id: int, *, plans: bool = False) -> bool:
    """Queue ``advance_job(job_id)`` now, from outside any transaction (the tick, for a job whose next move plans):
    True when it is queued (now or already), False when it could not be (broker or cache down), so that the caller
    advances the job itself."""
    try:
        if not cache.add(_key(job_id), 1, timeout=1):
            return True
    except CacheUnavailable:
        return False
    try:
        current_app.send_task(ADVANCE_TASK, args=[job_id], countdown=0, **_route(plans))
    except Exception:
        cache.delete(_key(job_id))
        logger.exception("could not queue optimization job %s", job_id)
        return False
    return True


def follow_up_done(job_id: int) -> None:
    """The queued follow-up ran: the next one may be queued."""
    cache.delete(_key(job_id))
