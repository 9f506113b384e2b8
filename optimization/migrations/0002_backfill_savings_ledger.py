"""Backfill the savings ledger with the jobs that finished before it existed: one entry per succeeded job that has a
realized saving, in force from when it finished, split into its spot and counterfactual parts by the on-demand
prices of the nodes it removed and launched; a fallback restored by a later job closes where the restore begins."""

from decimal import Decimal

from django.db import migrations

ZERO = Decimal(0)


def _nodes(job, steps):
    removed, launched = [], []
    for s in steps:
        if s.kind == "terminate" and s.state == "succeeded":
            node = (job.current_nodes or {}).get(s.target, {})
            removed.append((node.get("instance_type", ""), node.get("capacity_type", ""), node.get("price")))
        elif s.kind == "launch":
            o = s.params.get("offering") or {}
            for _ in (s.result or {}).get("instance_ids", []):
                launched.append((o.get("instance_type", ""), o.get("capacity_type", ""), o.get("price")))
    return removed, launched


def backfill(apps, schema_editor):
    Job = apps.get_model("optimization", "OptimizationJob")
    Step = apps.get_model("optimization", "JobStep")
    OnDemandPrice = apps.get_model("pricing", "OnDemandPrice")
    Entry = apps.get_model("savings", "LedgerEntry")
    jobs = list(
        Job.objects.filter(state="succeeded", realized_hourly_saving__isnull=False, finished_at__isnull=False)
        .select_related("cluster")
        .order_by("finished_at", "id")
    )
    if not jobs:
        return
    steps = {}
    for step in Step.objects.filter(job_id__in=[j.pk for j in jobs]):
        steps.setdefault(step.job_id, []).append(step)
    od = {(p.region, p.instance_type): p.price for p in OnDemandPrice.objects.all()}
    entries = {}
    for job in jobs:
        if Entry.objects.filter(action_type="optimization_job", action_id=str(job.pk)).exists():
            continue
        region = job.cluster.region
        removed, launched = _nodes(job, steps.get(job.pk, []))

        def od_total(nodes, region=region):
            return sum((od.get((region, t)) or Decimal(str(p or 0)) for t, _, p in nodes), ZERO)

        counterfactual = od_total(removed) - od_total(launched)
        realized = job.realized_hourly_saving
        source = "job"
        if job.trigger == "fallback-restore":
            source = "restore"
        elif job.fallback:
            source = "fallback"
        elif job.trigger == "interruption":
            source = "interruption"
        entries[job.pk] = Entry.objects.create(
            organization_id=job.cluster.organization_id,
            cluster_id=job.cluster_id,
            source=source,
            action_type="optimization_job",
            action_id=str(job.pk),
            projected_hourly=job.projected_hourly_saving or ZERO,
            spot_hourly=realized - counterfactual,
            counterfactual_hourly=counterfactual,
            baseline_hourly=od_total(removed),
            started_at=job.finished_at,
            price_source="backfilled from the job's realized saving",
            detail={"backfilled": True},
        )
    for job in jobs:
        restore = entries.get(job.restored_by_id) if job.restored_by_id else None
        fallback = entries.get(job.pk)
        if restore is None or fallback is None:
            continue
        fallback.ended_at = max(restore.started_at, fallback.started_at)
        fallback.superseded_by = restore
        fallback.save(update_fields=["ended_at", "superseded_by"])
        restore.spot_hourly += fallback.spot_hourly
        restore.counterfactual_hourly += fallback.counterfactual_hourly
        restore.baseline_hourly = fallback.baseline_hourly
        restore.save(update_fields=["spot_hourly", "counterfactual_hourly", "baseline_hourly"])


class Migration(migrations.Migration):
    dependencies = [
        ("optimization", "0001_initial"),
        ("savings", "0001_initial"),
        ("pricing", "0002_instance_type_offerings"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
