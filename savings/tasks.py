"""Celery adapter of the hourly cost recording (beat, at minute 1 of every hour)."""

from __future__ import annotations

from celery import shared_task

from .services import record_costs as record_costs_service


@shared_task(acks_late=True)
def record_costs() -> dict:
    """The hour's cost rows and roll-ups; the same service as ``manage.py record_costs``."""
    report = record_costs_service()
    return {"hour": report.hour.isoformat(), "clusters": report.clusters, "pruned": report.pruned}
