"""Automatic planning off the tick. A plan of a cluster of a few thousand pods takes up to a minute or two of CPU
(``optimizer/README.md``, *Scaling*), and the beat's tick runs every minute under a 50-second limit: planned in the
tick, one big cluster would run it over its limit at every minute, and no job of any organization would move.

So the tick only finds what is due and queues one task per cluster to plan (``evaluate_cluster``: a plan, maybe a
job) and per fallen-back job to restore (``restore_fallback``), each under its own long limit. A cache key held for
that limit keeps at most one queued or running per cluster (as ``followup`` does for job advances); a task that dies
leaves the key to expire, and the next tick queues it again. Where tasks run eagerly (tests, ``make run`` without a
broker: ``CELERY_TASK_ALWAYS_EAGER``) there is no queue to wait in and the tick plans in line as before."""

from __future__ import annotations

import logging

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from spotopt.cache import CacheUnavailable

logger = logging.getLogger(__name__)

EVALUATE_TASK = "optimization.tasks.evaluate_cluster"
RESTORE_TASK = "optimization.tasks.restore_fallback"
REFRESH_TASK = "optimization.tasks.refresh_recommendation"
WAKE_TASK = "optimization.tasks.plan_after_wake"
#: The planning tasks' Celery limits (seconds): well above the slowest plan measured (about 3 minutes of CPU at
#: 1,000-3,000 pods with every search on; a 20,000-pod plan takes about a second).
SOFT_TIME_LIMIT = 900
TIME_LIMIT = 960


def queues() -> bool:
    """True when tasks go through a broker (a worker runs them later), False when they run eagerly in line."""
    return not current_app.conf.task_always_eager


def _key(task: str, pk: int) -> str:
    return f"optimization:planning:{task}:{pk}"


def schedule(task: str, pk: int) -> bool:
    """Queue ``task(pk)`` after the current transaction commits; False when one is already queued or running."""
    key = _key(task, pk)
    try:
        if not cache.add(key, 1, timeout=TIME_LIMIT + 60):
            return False
    except CacheUnavailable:  # without the key, every tick would queue the same plan again: wait for the cache
        logger.warning("cache unavailable: %s for %s not queued", task, pk)
        return False

    def send() -> None:
        try:
            current_app.send_task(task, args=[pk])
        except Exception:  # a broker outage must not break the tick: the next tick queues it again
            cache.delete(key)
            logger.exception("could not queue %s for %s", task, pk)

    transaction.on_commit(send)
    return True


def pending(task: str, pk: int) -> bool:
    """One is queued or running (as far as the cache knows: False when it is down)."""
    return cache.get(_key(task, pk)) is not None


def done(task: str, pk: int) -> None:
    """The task ran (or failed): the next one for this cluster or job may be queued."""
    cache.delete(_key(task, pk))  # fails open: a key left behind expires by itself
