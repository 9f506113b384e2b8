"""Savings benchmark (PostgreSQL): the dashboard, a cluster page, the Reports page and the overview partial at N
clusters × D days of hourly cost history, and the hourly task over the N clusters: queries and server time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spotopt_bench \\
        .venv/bin/python bench/savings.py --clusters 1000 --days 90

The database is migrated if needed; the benchmark's organization (``bench-savings``) is replaced on each run. The
history is generated in SQL (hourly rows, then the daily and monthly roll-ups as the task writes them); each cluster
has five running instances (three spot) and three ledger entries (a job, a fallback closed by a restore, a night).
Each page is requested through Django's test client, signed in: the time is the median of five requests after one
warm-up, the queries are counted on the last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
TYPES = {"m5.large": (2, 8192, "0.096", "0.040"), "m5.xlarge": (4, 16384, "0.192", "0.080")}


def setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    os.environ.setdefault("DEBUG", "false")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    django.setup()


def seed(n: int, days: int):
    from django.db import connection

    from accounts.models import Organization, User
    from clusters.models import Cluster, Instance
    from pricing.models import InstanceType, OnDemandPrice, SpotPricePoint
    from savings.models import LedgerEntry

    User.objects.filter(email="bench-savings@example.com").delete()
    Organization.objects.filter(name="bench-savings").delete()
    org = Organization.objects.create(name="bench-savings")
    user = User.objects.create_user(email="bench-savings@example.com", password="x" * 16, organization=org)
    for name, (vcpu, mem, od, spot) in TYPES.items():
        InstanceType.objects.get_or_create(
            name=name, defaults={"family": "m5", "vcpu": vcpu, "memory_mib": mem, "arch": "x86_64"}
        )
        OnDemandPrice.objects.get_or_create(region="us-east-1", instance_type=name, defaults={"price": Decimal(od)})
        SpotPricePoint.objects.get_or_create(
            region="us-east-1",
            zone="us-east-1a",
            instance_type=name,
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            defaults={"price": Decimal(spot)},
        )
    clusters = Cluster.objects.bulk_create(
        [Cluster(organization=org, name=f"bench-{i:04d}", region="us-east-1") for i in range(n)]
    )
    Instance.objects.bulk_create(
        [
            Instance(
                cluster=c,
                instance_id=f"i-{c.pk:08x}{k:09x}",
                instance_type="m5.large" if k < 3 else "m5.xlarge",
                zone="us-east-1a",
                lifecycle="spot" if k < 3 else "on-demand",
                state="running",
                launch_time=NOW - timedelta(days=days),
            )
            for c in clusters
            for k in range(5)
        ],
        batch_size=5000,
    )
    start = (NOW - timedelta(days=days)).replace(minute=0)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO savings_cost_records (organization_id, cluster_id, step, t, hours, cost, on_demand_equivalent,
                spot_node_hours, on_demand_node_hours, spot_vcpu_hours, on_demand_vcpu_hours, spot_memory_mib_hours,
                on_demand_memory_mib_hours, hibernated_hours, unpriced_node_hours, recorded_at)
            SELECT %s, c.id, 'hour', h, 1, 0.504 + (c.id %% 7) * 0.01, 0.672 + (c.id %% 7) * 0.01, 3, 2, 6, 8,
                   24576, 32768, 0, 0, h
            FROM clusters c CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz, interval '1 hour') AS h
            WHERE c.organization_id = %s
            """,
            [org.pk, start, NOW.replace(minute=0) - timedelta(hours=1), org.pk],
        )
        for step, unit, source in (("day", "day", "hour"), ("month", "month", "day")):
            cur.execute(
                f"""
                INSERT INTO savings_cost_records (organization_id, cluster_id, step, t, hours, cost,
                    on_demand_equivalent, spot_node_hours, on_demand_node_hours, spot_vcpu_hours,
                    on_demand_vcpu_hours, spot_memory_mib_hours, on_demand_memory_mib_hours, hibernated_hours,
                    unpriced_node_hours, recorded_at)
                SELECT organization_id, cluster_id, '{step}', date_trunc('{unit}', t AT TIME ZONE 'UTC') AT TIME ZONE
                    'UTC', SUM(hours), SUM(cost), SUM(on_demand_equivalent), SUM(spot_node_hours),
                    SUM(on_demand_node_hours), SUM(spot_vcpu_hours), SUM(on_demand_vcpu_hours),
                    SUM(spot_memory_mib_hours), SUM(on_demand_memory_mib_hours), SUM(hibernated_hours),
                    SUM(unpriced_node_hours), now()
                FROM savings_cost_records WHERE organization_id = %s AND step = '{source}'
                GROUP BY 1, 2, 4
                """,
                [org.pk],
            )
        cur.execute("ANALYZE savings_cost_records")
    seeded = time.perf_counter() - t0
    entries = []
    for c in clusters:
        started = NOW - timedelta(days=days - 1)
        base = {"organization_id": org.pk, "cluster_id": c.pk, "baseline_hourly": Decimal("0.48")}
        entries += [
            LedgerEntry(
                source="job",
                action_type="optimization_job",
                action_id=f"b{c.pk}j",
                projected_hourly=Decimal("0.2"),
                spot_hourly=Decimal("0.168"),
                counterfactual_hourly=Decimal("0.02"),
                started_at=started,
                pauses=[[(NOW - timedelta(days=3, hours=4)).isoformat(), (NOW - timedelta(days=3)).isoformat()]],
                **base,
            ),
            LedgerEntry(
                source="fallback",
                action_type="optimization_job",
                action_id=f"b{c.pk}f",
                projected_hourly=Decimal("0.1"),
                spot_hourly=Decimal("-0.112"),
                started_at=NOW - timedelta(days=20),
                ended_at=NOW - timedelta(days=19),
                **base,
            ),
            LedgerEntry(
                source="hibernation",
                action_type="hibernation_period",
                action_id=f"b{c.pk}h",
                projected_hourly=Decimal("0.5"),
                counterfactual_hourly=Decimal("0.5"),
                started_at=NOW - timedelta(days=3, hours=4),
                ended_at=NOW - timedelta(days=3),
                **base,
            ),
        ]
    LedgerEntry.objects.bulk_create(entries, batch_size=5000)
    return user, clusters[0], seeded


def measure(client, url: str) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert client.get(url).status_code == 200, url  # warm-up
    times = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, url
    return statistics.median(times) * 1000, len(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from savings.models import CostRecord
    from savings.services import record_costs

    if connection.vendor != "postgresql":
        sys.exit("The benchmark needs PostgreSQL (DATABASE_URL).")
    user, cluster, seeded = seed(args.clusters, args.days)
    rows = CostRecord.objects.filter(organization=user.organization).count()
    print(f"{args.clusters} clusters × {args.days} days: {rows} cost rows (generated in {seeded:.1f} s)")
    client = Client()
    client.force_login(user)
    for name, url in (
        ("dashboard", "/"),
        ("cluster page", f"/clusters/{cluster.pk}/"),
        ("reports", "/reports/"),
        ("overview partial (htmx)", "/reports/overview"),
        (
            "API savings by day, 90 days",
            "/api/v1/savings?group_by=day&since=" + (NOW - timedelta(days=90)).strftime("%Y-%m-%d"),
        ),
        ("API cost history by day", "/api/v1/costs/history?step=day"),
    ):
        ms, queries = measure(client, url)
        print(f"{name:32s} {ms:8.1f} ms  {queries:3d} queries")
    for label in ("hourly task (first run this hour)", "hourly task (again, same hour)"):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            report = record_costs()
            took = time.perf_counter() - started
        print(f"{label:32s} {took * 1000:8.1f} ms  {len(ctx):3d} queries  ({report.clusters} clusters in the db)")


if __name__ == "__main__":
    main()
