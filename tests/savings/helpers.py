"""Building finished optimization jobs (rows as the runner leaves them) and moving the inventory to match."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from clusters.models import Cluster, Instance
from optimization.models import JobStep, OptimizationJob
from optimization.services.ledger import job_ledger_entry
from savings.models import LedgerEntry
from tests.factories import InstanceFactory

from .conftest import PRICES


def finish_job(
    cluster: Cluster,
    *,
    remove: list[Instance],
    launch: tuple[str, str, int],
    at: datetime,
    trigger: str = "manual",
    fallback: bool = False,
    projected: Decimal | None = None,
    restores: OptimizationJob | None = None,
    plan: dict | None = None,
) -> tuple[OptimizationJob, LedgerEntry]:
    """A job that terminated ``remove`` and launched ``launch`` = (type, capacity type, count), with its ledger
    entry written the way the runner writes it when the job succeeds; the inventory follows."""
    itype, capacity, count = launch
    current = {
        i.instance_id: {
            "instance_id": i.instance_id,
            "instance_type": i.instance_type,
            "zone": i.zone,
            "capacity_type": i.lifecycle,
            "price": str(i.hourly_price or 0),
        }
        for i in remove
    }
    job = OptimizationJob.objects.create(
        cluster=cluster,
        trigger=trigger,
        state="terminating",
        current_nodes=current,
        projected_hourly_saving=projected if projected is not None else Decimal("0.1"),
        fallback=fallback,
        plan=plan or {},
    )
    if restores is not None:
        OptimizationJob.objects.filter(pk=restores.pk).update(restored_by=job)
    launched = [
        InstanceFactory(cluster=cluster, instance_type=itype, zone="us-east-1a", lifecycle=capacity, launch_time=at)
        for _ in range(count)
    ]
    od, spot = PRICES[itype][2], PRICES[itype][3]
    JobStep.objects.create(
        job=job,
        kind="launch",
        state="succeeded",
        params={
            "offering": {
                "instance_type": itype,
                "zone": "us-east-1a",
                "capacity_type": capacity,
                "price": spot if capacity == "spot" else od,
            },
            "count": count,
        },
        result={"instance_ids": [i.instance_id for i in launched]},
    )
    for instance in remove:
        JobStep.objects.create(job=job, kind="terminate", state="succeeded", target=instance.instance_id)
        instance.terminated_at, instance.state = at, "terminated"
        instance.save()
    entry = job_ledger_entry(job=job, steps=list(job.steps.all()), now=at)
    OptimizationJob.objects.filter(pk=job.pk).update(
        state="succeeded", finished_at=at, realized_hourly_saving=entry.realized_hourly
    )
    job.refresh_from_db()
    return job, entry


def running(cluster: Cluster) -> list[Instance]:
    return list(cluster.instances.filter(terminated_at__isnull=True).order_by("id"))
