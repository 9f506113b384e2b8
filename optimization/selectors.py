"""Shared reads of the optimization app, scoped to the caller's organization."""

from __future__ import annotations

from django.db.models import QuerySet

from spotopt.tenancy import get_for_user

from .models import OptimizationJob


def jobs_for_user(user) -> QuerySet[OptimizationJob]:
    """The caller's jobs, newest first, with their cluster (one query per page)."""
    return OptimizationJob.objects.for_user(user).select_related("cluster").order_by("-created_at", "-id")


def get_job(user, pk) -> OptimizationJob:
    """One of the caller's jobs with its cluster, or 404 (another organization's job too)."""
    return get_for_user(OptimizationJob.objects.select_related("cluster", "cluster__organization"), user, pk=pk)


def job_steps(job: OptimizationJob):
    return list(job.steps.order_by("id"))
