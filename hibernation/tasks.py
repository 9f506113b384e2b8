"""Celery adapter of the hibernation tick (beat, every minute)."""

from __future__ import annotations

from celery import shared_task

from .services.engine import hibernation_tick


@shared_task(acks_late=True)
def tick() -> dict:
    """One tick over every schedule; the same service as ``manage.py hibernation_tick``."""
    report = hibernation_tick()
    return {"evaluated": report.evaluated, "attended": report.attended, "steps": report.steps, "errors": report.errors}
