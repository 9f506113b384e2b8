"""Celery adapter for the hourly audit checkpoint (the beat entry ``audit-checkpoint`` in settings)."""

from __future__ import annotations

from celery import shared_task

from .services import CheckpointOutcome, checkpoint_create_all


@shared_task(acks_late=True)
def write_checkpoints() -> dict[str, int]:
    """Sign the head of every chain that moved since its last checkpoint; broken chains are logged, not signed."""
    outcomes = checkpoint_create_all()
    return {
        status: sum(1 for o in outcomes if o.status == status)
        for status in (CheckpointOutcome.WRITTEN, CheckpointOutcome.UNCHANGED, CheckpointOutcome.BROKEN)
    }
