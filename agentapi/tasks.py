"""Celery adapters of the agent channel."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(soft_time_limit=50, time_limit=55)
def expire_dead_actions() -> int:
    """Beat, every minute: close actions past their deadline or out of attempts, even if their agent never polls."""
    return services.actions_expire()
