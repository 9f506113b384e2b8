"""Hibernation tick benchmark: one tick over N enabled schedules (PostgreSQL), its query count and its time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spotopt_bench \\
        .venv/bin/python bench/hibernation.py --schedules 1000 10000

The database is migrated if needed; the benchmark's own organizations (named ``bench-hibernation-*``) are replaced on
each run. Schedules get weeknight and weekend windows in a mix of zones, holidays and pre-warms. Two ticks are
measured for each N: a quiet one (every cluster already where its timetable says: the tick only evaluates) and a busy
one (1% of the clusters must start sleeping: each of those takes its first step, which queues the agent's inventory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney", "UTC")
WINDOWS = [
    {"days": ["mon", "tue", "wed", "thu"], "sleep_at": "20:00", "wake_at": "07:00"},
    {"days": ["fri"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 3},
]
AT = datetime(2026, 6, 3, 15, 0, tzinfo=UTC)  # a Wednesday: some zones are in their night, others at work


def setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    django.setup()


def seed(n: int) -> None:
    from accounts.models import Organization
    from clusters.models import Cluster
    from hibernation.models import HibernationSchedule
    from hibernation.selectors import desired_state

    Organization.objects.filter(name__startswith="bench-hibernation-").delete()
    orgs = Organization.objects.bulk_create([Organization(name=f"bench-hibernation-{i}") for i in range((n + 9) // 10)])
    clusters = Cluster.objects.bulk_create(
        [
            Cluster(organization=orgs[i // 10], name=f"bench-{i}", region="us-east-1", time_zone=ZONES[i % len(ZONES)])
            for i in range(n)
        ]
    )
    schedules = [
        HibernationSchedule(
            cluster=c,
            name="nights and weekends",
            time_zone=c.time_zone,
            windows=WINDOWS,
            pre_warm_minutes=(i % 5) * 15,
            holidays=["2026-12-24", "2026-12-25", "2027-01-01"],
        )
        for i, c in enumerate(clusters)
    ]
    HibernationSchedule.objects.bulk_create(schedules, batch_size=2000)
    # Every cluster where its timetable says it is at AT: a quiet tick only evaluates.
    asleep = [s.cluster_id for s in schedules if desired_state(s, AT) == "asleep"]
    Cluster.objects.filter(pk__in=asleep).update(hibernation_state="asleep")


def measure(n: int, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clusters.models import Cluster
    from hibernation.services.engine import hibernation_tick

    seed(n)
    quiet = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            report = hibernation_tick(now=AT)
            quiet.append(time.perf_counter() - started)
        assert report.attended == 0, report
    quiet_queries = len(queries)
    # Busy: 1% of the awake clusters must sleep now (no AWS account: the first step records and queues the inventory).
    awake = list(
        Cluster.objects.filter(name__startswith="bench-", hibernation_state="asleep").values_list("pk", flat=True)[
            : max(1, n // 100)
        ]
    )
    Cluster.objects.filter(pk__in=awake).update(hibernation_state="awake")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        busy_report = hibernation_tick(now=AT)
        busy = time.perf_counter() - started
    return {
        "n": n,
        "quiet_ms": statistics.median(quiet) * 1000,
        "quiet_queries": quiet_queries,
        "busy_acting": busy_report.attended,
        "busy_ms": busy * 1000,
        "busy_queries": len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database (it is migrated if needed)")
    setup()
    print(f"{'schedules':>10} {'quiet tick ms':>14} {'queries':>8} {'acting':>7} {'busy tick ms':>13} {'queries':>8}")
    for n in args.schedules:
        r = measure(n, args.repeat)
        print(
            f"{r['n']:>10} {r['quiet_ms']:>14.0f} {r['quiet_queries']:>8} {r['busy_acting']:>7} "
            f"{r['busy_ms']:>13.0f} {r['busy_queries']:>8}"
        )
    from accounts.models import Organization

    Organization.objects.filter(name__startswith="bench-hibernation-").delete()


if __name__ == "__main__":
    main()
