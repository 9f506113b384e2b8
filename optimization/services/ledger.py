"""A finished job's entry in the savings ledger (the one store of realized savings): what the nodes it removed cost
against what the nodes it launched cost, by the one cost rule at the moment it finished, split into the part that
moved capacity between on-demand and spot and the part that changed the on-demand baseline itself (see
:class:`savings.models.LedgerEntry`). Called by the runner in the transaction that makes the job succeed.

A job supersedes the earlier entries whose nodes it removed: an open job entry credits the nodes its job launched,
so when a later job (a consolidation, an interruption replacement, a restore) terminates some of them, the earlier
entry closes at that moment; the part of it that went with the removed nodes (by their on-demand price) is carried
into the new entry, which is thus measured from the earlier baseline, and the part still in force continues in a
carry-forward entry. The sum over time is unchanged, and no node-hour is credited to two entries. A fallback does
not supersede: it is negative while it lasts, and its restore closes it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from clusters.models import Instance
from pricing import selectors as pricing
from savings.models import LedgerEntry
from savings.services import ledger_open

from ..models import JobStep, OptimizationJob
from .interruption_jobs import replaced_instances

ZERO = Decimal(0)
SIX = Decimal("0.000001")
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


def _launched_ids(steps: list[JobStep]) -> list[tuple[str, str]]:
    """(instance id, instance type) of every node the job launched."""
    return [
        (iid, (s.params.get("offering") or {}).get("instance_type", ""))
        for s in steps
        if s.kind == Kind.LAUNCH
        for iid in s.result.get("instance_ids", [])
    ]


def _credited_nodes(entries: list[LedgerEntry]) -> dict[int, dict[str, Decimal | str]]:
    """Per open entry: the nodes it credits, instance id -> on-demand USD/h. Entries written since supersession
    carry them in ``detail["launched_nodes"]``; for older ones the value is the instance type, read from their job's
    launch steps (one query), to be priced by the caller."""
    credited: dict[int, dict[str, Decimal | str]] = {}
    older: dict[str, LedgerEntry] = {}
    for entry in entries:
        nodes = entry.detail.get("launched_nodes")
        if isinstance(nodes, dict):
            credited[entry.pk] = {iid: Decimal(str(od)) for iid, od in nodes.items()}
        else:
            credited[entry.pk] = {}
            if entry.action_id.isdigit():
                older[entry.action_id] = entry
    if older:
        steps = JobStep.objects.filter(job_id__in=[int(k) for k in older], kind=Kind.LAUNCH).only(
            "job_id", "kind", "params", "result"
        )
        for step in steps:
            for iid, itype in _launched_ids([step]):
                credited[older[str(step.job_id)].pk][iid] = itype
    return credited


def _split(value: Decimal, share: Decimal) -> tuple[Decimal, Decimal]:
    """(moved, kept): ``value`` × ``share`` and the rest, so that the two add up exactly."""
    moved = (value * share).quantize(SIX)
    return moved, value - moved


def job_ledger_entry(*, job: OptimizationJob, steps: list[JobStep], now: datetime) -> LedgerEntry:
    """Write the job's ledger entry and return it; the job's realized saving per hour is the entry's."""
    removed, launched = job_nodes(job, steps)
    region = job.cluster.region
    launched_ids = _launched_ids(steps)
    removed_facts = {
        job.current_nodes.get(s.target, {}).get("instance_id") or s.target: job.current_nodes.get(s.target, {})
        for s in steps
        if s.kind == Kind.TERMINATE and s.state == StepState.SUCCEEDED
    }
    interrupted = [i for i in replaced_instances(job.plan) if i not in removed_facts]
    if job.trigger == OptimizationJob.Trigger.INTERRUPTION and interrupted:
        # A spot warning's node is taken back by AWS, not by the job: the replacement takes its place all the same.
        gone_rows = Instance.objects.filter(cluster=job.cluster, instance_id__in=interrupted).order_by("-id")
        for gone in {g.instance_id: g for g in gone_rows}.values():
            removed_facts[gone.instance_id] = {"instance_type": gone.instance_type, "zone": gone.zone}
            removed.append((gone.instance_type, gone.zone, gone.lifecycle))
    removed_ids = set(removed_facts)
    superseded_jobs = (
        [str(pk) for pk in OptimizationJob.objects.filter(restored_by=job).values_list("pk", flat=True)]
        if job.trigger == OptimizationJob.Trigger.FALLBACK_RESTORE
        else []
    )
    # Open entries of earlier jobs on this cluster that may credit the nodes this job removed.
    earlier = (
        list(
            LedgerEntry.objects.filter(cluster=job.cluster, action_type="optimization_job", ended_at__isnull=True)
            .exclude(action_id=str(job.pk))
            .exclude(action_id__in=superseded_jobs)
            .order_by("started_at", "id")
        )
        if removed_ids and not job.fallback
        else []
    )
    credited = _credited_nodes(earlier) if earlier else {}
    older_types = {v for nodes in credited.values() for v in nodes.values() if isinstance(v, str)}
    book = pricing.price_book(
        {(region, t) for t, _, _ in removed + launched} | {(region, t) for t in older_types}, at=now
    )
    for nodes in credited.values():
        for iid, v in nodes.items():
            if isinstance(v, str):
                nodes[iid] = book.on_demand_price(v, region) or ZERO

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
    # Earlier entries whose nodes this job removed: close them, carry the removed nodes' part into this entry.
    carried: list[tuple[LedgerEntry, dict[str, Decimal], Decimal]] = []
    for entry in earlier:
        nodes = credited.get(entry.pk) or {}
        gone = [iid for iid in nodes if iid in removed_ids]
        if not gone:
            continue
        total = sum(nodes.values(), ZERO)
        share = (
            sum((nodes[iid] for iid in gone), ZERO) / total if total > 0 else Decimal(len(gone)) / Decimal(len(nodes))
        )
        moved_spot, _ = _split(entry.spot_hourly, share)
        moved_cf, _ = _split(entry.counterfactual_hourly, share)
        moved_baseline, _ = _split(entry.baseline_hourly, share)
        # the removed nodes' on-demand value gives way to the earlier entry's baseline for them
        gone_od = sum(
            (book.on_demand_price(removed_facts.get(iid, {}).get("instance_type", ""), region) or ZERO for iid in gone),
            ZERO,
        )
        spot += moved_spot
        counterfactual += moved_cf
        baseline += moved_baseline - gone_od
        supersedes.append(entry)
        carried.append((entry, {iid: od for iid, od in nodes.items() if iid not in removed_ids}, share))
    new = ledger_open(
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
            "launched_nodes": {iid: str(book.on_demand_price(itype, region) or ZERO) for iid, itype in launched_ids},
            "supersedes": [e.pk for e in supersedes],
        },
        actor="system:optimization",
    )
    for entry, kept_nodes, share in carried:
        if share >= 1 or not kept_nodes:
            continue
        _, spot_kept = _split(entry.spot_hourly, share)
        _, cf_kept = _split(entry.counterfactual_hourly, share)
        _, baseline_kept = _split(entry.baseline_hourly, share)
        _, projected_kept = _split(entry.projected_hourly, share)
        root = entry.detail.get("carried_from_action") or entry.action_id
        ledger_open(
            cluster=job.cluster,
            source=entry.source,
            action_type=entry.action_type,
            action_id=f"{root}~{job.pk}",
            projected_hourly=projected_kept,
            spot_hourly=spot_kept,
            counterfactual_hourly=cf_kept,
            baseline_hourly=baseline_kept,
            at=now,
            price_source=entry.price_source,
            detail={
                "carried_from": entry.pk,
                "carried_from_action": root,
                "kept_share": str(1 - share),
                "launched_nodes": {iid: str(od) for iid, od in kept_nodes.items()},
            },
            actor="system:optimization",
        )
    return new
