"""Celery adapters of the interruptions app."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(soft_time_limit=50, time_limit=58)
def rebalance_uncordon() -> int:
    """Beat, every minute: uncordon the nodes a rebalance recommendation cordoned when no interruption followed."""
    return services.rebalance_uncordon_due()


@shared_task(soft_time_limit=50, time_limit=58)
def scheduled_replacements() -> list[int]:
    """Beat, every minute: start the replacements of scheduled retirements whose lead time has come (the job runner's
    tick requests their launches)."""
    return services.scheduled_replacements_due()


@shared_task(soft_time_limit=50, time_limit=58)
def complete(interruption_ids: list[int]) -> list[int]:
    """Finish handling stored events (the agent's notices: ICE, the replacement job) and request the launches."""
    return services.interruptions_complete_and_launch(interruption_ids=interruption_ids)
