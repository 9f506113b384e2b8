"""A finished job's entry in the savings ledger (the one store of realized savings): what the nodes it removed cost
against what the nodes it launched cost, by the one cost rule at the moment it finished, split into the part that
moved capacity between on-demand and spot and the part that changed the on-demand baseline itself (see
:class:`savings.models.LedgerEntry`). Called by the runner in the transaction that makes the job succeed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pricing import selectors as pricing
from savings.models import LedgerEntry
from savings.services import ledger_open

from ..models import JobStep, OptimizationJob

ZERO = Decimal(0)
Kind = JobStep.Kind
StepState = JobStep.State
Source = LedgerEntry.Source


def _source(job: OptimizationJob) -> str:
    if job.trigger == OptimizationJob.Trigger.FALLBACK_RESTORE:
        return Source.RESTORE
    if job.fallback:
        return Source.FALLBACK
    if job.trigger == OptimizationJob.Trigger.INTERRUPTION:
        return Source.INTERRUPTION
    return Source.JOB


def job_nodes(
    job: OptimizationJob, steps: list[JobStep]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(instance type, zone, capacity type) of the nodes the job removed and of those it launched."""
    removed = []
    for s in steps:
        if s.kind == Kind.TERMINATE and s.state == StepState.SUCCEEDED:
            node = job.current_nodes.get(s.target, {})
            removed.append((node.get("instance_type", ""), node.get("zone", ""), node.get("capacity_type", "")))
    launched = []
    for s in steps:
        if s.kind == Kind.LAUNCH:
            o = s.params.get("offering") or {}
            launched += [(o.get("instance_type", ""), o.get("zone", ""), o.get("capacity_type", ""))] * len(
                s.result.get("instance_ids", [])
            )
    return removed, launched


def job_ledger_entry(*, job: OptimizationJob, steps: list[JobStep], now: datetime) -> LedgerEntry:
    """Write the job's ledger entry and return it; the job's realized saving per hour is the entry's."""
    removed, launched = job_nodes(job, steps)
    region = job.cluster.region
    book = pricing.price_book({(region, t) for t, _, _ in removed + launched}, at=now)

    def totals(nodes: list[tuple[str, str, str]]) -> tuple[Decimal, Decimal]:
        cost = od = ZERO
        for itype, zone, capacity in nodes:
            price = book.price(itype, zone, capacity, region) or ZERO
            cost += price
            od += book.on_demand_price(itype, region) or price
        return cost, od

    cost_before, od_before = totals(removed)
    cost_after, od_after = totals(launched)
    spot = (od_after - cost_after) - (od_before - cost_before)
    counterfactual = od_before - od_after
    supersedes = []
    baseline = od_before
    projected = job.projected_hourly_saving or ZERO
    if job.trigger == OptimizationJob.Trigger.FALLBACK_RESTORE:
        # The restore undoes the fallback: the fallback's entry closes and this one is measured from the
        # fallback's baseline, so that the cluster's saving is counted once.
        restored = LedgerEntry.objects.filter(
            action_type="optimization_job",
            action_id__in=[
                str(pk) for pk in OptimizationJob.objects.filter(restored_by=job).values_list("pk", flat=True)
            ],
            ended_at__isnull=True,
        )
        for entry in restored:
            spot += entry.spot_hourly
            counterfactual += entry.counterfactual_hourly
            baseline = entry.baseline_hourly
            supersedes.append(entry)
    return ledger_open(
        cluster=job.cluster,
        source=_source(job),
        action_type="optimization_job",
        action_id=job.pk,
        projected_hourly=projected,
        spot_hourly=spot,
        counterfactual_hourly=counterfactual,
        baseline_hourly=baseline,
        at=now,
        supersedes=supersedes,
        price_source=f"catalog at {now:%Y-%m-%d %H:%M}Z",
        detail={
            "removed": len(removed),
            "launched": len(launched),
            "cost_before": str(cost_before),
            "cost_after": str(cost_after),
        },
        actor="system:optimization",
    )
