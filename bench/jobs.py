"""Optimization jobs benchmark (PostgreSQL).

1. A tick over 1,000 clusters with nothing to do (half with optimization off, half automatic but evaluated a moment
   ago): wall time and queries.
2. The same with 50 active jobs waiting for their new nodes to be Ready: wall time and queries.
3. A 100-node on-demand cluster converted to spot, end to end in simulated time: moto (in process), the simulated
   agent mirroring it (driven through the agent services, no HTTP), ticks; launches, drains, jobs, wall time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spotopt_jobs .venv/bin/python bench/jobs.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()


def measure_tick(repeat: int = 5) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from optimization.services.runner import tick

    times, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            tick()
            times.append((time.perf_counter() - start) * 1000)
        queries = len(ctx.captured_queries)
    return statistics.median(times), queries


def seed_idle(n: int) -> list:
    from django.utils import timezone

    from accounts.models import Organization
    from clusters.models import Cluster, ClusterPolicy
    from optimization.models import Recommendation

    org = Organization.objects.create(name=f"bench-{time.time_ns()}")
    clusters = Cluster.objects.bulk_create(
        Cluster(organization=org, name=f"idle-{i}", region="us-east-1") for i in range(n)
    )
    ClusterPolicy.objects.bulk_create(
        ClusterPolicy(cluster=c, optimization_enabled=i % 2 == 0, mode="automatic", consolidate_after="1h")
        for i, c in enumerate(clusters)
    )
    Recommendation.objects.bulk_create(
        Recommendation(
            cluster=c,
            plan={},
            current_hourly_cost=0,
            planned_hourly_cost=0,
            saving_hourly=0,
            saving_pct=0,
            computed_at=timezone.now(),
        )
        for c in clusters[::2]
    )
    return clusters


def seed_waiting_jobs(clusters: list) -> None:
    from optimization.models import JobStep, OptimizationJob

    for i, cluster in enumerate(clusters):
        job = OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="waiting_ready", plan={})
        JobStep.objects.create(job=job, kind="launch", state="succeeded", result={"instance_ids": [f"i-b{i:016x}"]})
        JobStep.objects.create(job=job, kind="wait_ready", state="running", params={"instance_ids": [f"i-b{i:016x}"]})


def convert_100(nodes: int, budget: str) -> dict:
    import boto3
    from django.db import connection
    from moto import mock_aws

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        MOTO_ACCOUNT_ID="111122223333",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from django.conf import settings

    settings.AWS_ENDPOINT_URL = ""
    from datetime import timedelta

    from celery import current_app
    from django.utils import timezone

    from accounts.models import CloudAccount, Organization
    from agent.executor import Executor
    from agent.runner import build_snapshot
    from agent.simulated_aws import Workload, mirrored_cluster
    from agentapi.models import AgentAction
    from agentapi.services import action_report_result, actions_lease, api_key_create, snapshot_ingest
    from clusters.models import Cluster, ClusterPolicy
    from clusters.services import account_sync
    from optimization.models import JobStep, OptimizationJob
    from optimization.services.runner import tick
    from pricing.models import InstanceType
    from pricing.services import catalog_load_snapshot
    from templates_app.models import NodeTemplate

    current_app.conf.task_always_eager = True  # no worker here: the loop's ticks drive the jobs (no follow-ups)
    if not InstanceType.objects.exists():
        catalog_load_snapshot(regions={"us-east-1"})
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/22", AvailabilityZone=z)["Subnet"]["SubnetId"]
            for i, z in ((0, "us-east-1a"), (4, "us-east-1b"), (8, "us-east-1c"))
        ]
        template = ec2.create_launch_template(
            LaunchTemplateName="big", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        boto3.client("autoscaling", region_name="us-east-1").create_auto_scaling_group(
            AutoScalingGroupName="big-general",
            LaunchTemplate={"LaunchTemplateId": template},
            MinSize=0,
            MaxSize=nodes,
            DesiredCapacity=nodes,
            VPCZoneIdentifier=",".join(subnets),
            Tags=[
                {
                    "Key": "kubernetes.io/cluster/big",
                    "Value": "owned",
                    "PropagateAtLaunch": True,
                    "ResourceId": "big-general",
                    "ResourceType": "auto-scaling-group",
                }
            ],
        )
        org = Organization.objects.create(name=f"bench-convert-{time.time_ns()}")
        account = CloudAccount.objects.create(
            organization=org,
            name="bench",
            role_arn="arn:aws:iam::111122223333:role/SpotOptimizer",
            external_id="bench-external-id",
            aws_account_id="111122223333",
            regions=["us-east-1"],
            status="active",
        )
        report = account_sync(account=account)
        cluster = Cluster.objects.filter(organization=org, name="big").first()
        if cluster is None:
            raise SystemExit(f"discovery did not find the cluster: {report.errors}")
        NodeTemplate.objects.create(
            organization=org,
            name="spot",
            architectures=["x86_64"],
            instance_families={"include": ["m5", "m6i", "m7i"], "exclude": []},
            # The bundled catalog (moto's DescribeInstanceTypes dump) marks m5 and m6i as previous generation, and its
            # spot price history (2022) predates m7i: with the default current-generation-only, the template would
            # have no spot offering at all (which planning now refuses instead of planning its on-demand fallback).
            current_generation_only=False,
            capacity_types=["spot"],
            spot_fallback=True,
            strategy="lowest-price",
            is_default=True,
        )
        ClusterPolicy.objects.create(
            cluster=cluster,
            optimization_enabled=True,
            mode="automatic",
            consolidate_after="1s",
            validation_delay_seconds=0,
            disruption_budgets=[{"nodes": budget}],
            max_pool_share=0.5,
            headroom_pct=0,
        )
        key, _ = api_key_create(cluster=cluster, name="bench")
        sim = mirrored_cluster(
            cluster_name="big",
            region="us-east-1",
            join_seconds=0,
            reschedule_seconds=0,
            workloads=tuple(
                Workload("bench", f"app-{i}", nodes // 2, 700, 2048, min_available=nodes // 3) for i in range(6)
            ),
        )
        executor = Executor(sim, eviction_retry_seconds=0.0, wait_poll_seconds=0.0)
        start = time.perf_counter()
        rounds = 0
        max_cordoned = 0
        for round_no in range(1, 400):
            rounds = round_no
            sim.sync()
            snapshot_ingest(api_key=key, data=build_snapshot(sim))
            for action in actions_lease(api_key=key, max_actions=100):
                result = executor.execute(action.as_message())
                action_report_result(api_key=key, action_id=action.pk, status=result.status, message=result.message)
            max_cordoned = max(max_cordoned, sum(1 for n in sim.list_nodes() if n.unschedulable))
            # Simulated time: each round is 30 s of the cluster's life (consolidate_after 1s is over at every tick).
            tick(now=timezone.now() + timedelta(seconds=30 * round_no))
            running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
            lifecycles = [
                i.get("InstanceLifecycle", "on-demand") for r in running["Reservations"] for i in r["Instances"]
            ]
            idle = not OptimizationJob.objects.filter(cluster=cluster, state__in=OptimizationJob.ACTIVE_STATES).exists()
            if idle and lifecycles and all(lc == "spot" for lc in lifecycles):
                break
        wall = time.perf_counter() - start
        sim.sync()  # the last terminations' pods are rescheduled
        sim.sync()
        jobs = OptimizationJob.objects.filter(cluster=cluster)
        final_nodes = sim.list_nodes()
        requested_cpu = sum(p.cpu_m for p in sim.list_pods() if not p.daemonset)
        connection.close()
        return {
            "nodes_before": nodes,
            "nodes_after": len(lifecycles),
            "spot_after": sum(1 for lc in lifecycles if lc == "spot"),
            "jobs": jobs.count(),
            "jobs_succeeded": jobs.filter(state="succeeded").count(),
            "launched_by_capacity": {
                capacity: sum(
                    len(s.result.get("instance_ids", []))
                    for s in JobStep.objects.filter(job__cluster=cluster, kind="launch")
                    if s.params.get("offering", {}).get("capacity_type") == capacity
                )
                for capacity in ("spot", "on-demand")
            },
            "fallbacks": jobs.filter(fallback=True).count(),
            "errors": sorted({e for e in jobs.values_list("error", flat=True) if e}),
            "launched": sum(
                len(s.result.get("instance_ids", []))
                for s in JobStep.objects.filter(job__cluster=cluster, kind="launch")
            ),
            "drains": AgentAction.objects.filter(cluster=cluster, type="drain").count(),
            "max_cordoned_at_once": max_cordoned,
            "pending_pods": len(sim.pending_pods()),
            "workload_cpu_requested_m": requested_cpu,
            "node_cpu_allocatable_m": sum(n.cpu_m for n in final_nodes),
            "final_node_types": dict(sorted(Counter(n.instance_type for n in final_nodes).items())),
            "rounds": rounds,
            "simulated_minutes_at_30s_per_round": rounds / 2,
            "wall_seconds": round(wall, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--active", type=int, default=50)
    parser.add_argument("--convert-nodes", type=int, default=100)
    parser.add_argument("--budget", default="25%")
    args = parser.parse_args()
    setup_django()
    from accounts.models import Organization
    from optimization.models import OptimizationJob

    # A clean slate: an earlier run's clusters (automatic mode, due at every tick) would be measured too.
    Organization.objects.filter(name__startswith="bench-").delete()
    OptimizationJob.objects.filter(state__in=OptimizationJob.ACTIVE_STATES).update(state="cancelled")
    clusters = seed_idle(args.idle)
    ms, queries = measure_tick()
    print(f"tick, {args.idle} clusters with nothing to do: {ms:.1f} ms, {queries} queries")
    seed_waiting_jobs(clusters[1 : 2 * args.active : 2])
    ms, queries = measure_tick()
    print(
        f"tick, {args.idle} clusters and {args.active} jobs waiting for Ready nodes: {ms:.1f} ms, {queries} queries "
        f"({queries / args.active:.1f} per job)"
    )
    OptimizationJob.objects.filter(state__in=OptimizationJob.ACTIVE_STATES).update(state="cancelled")
    if args.convert_nodes:
        report = convert_100(args.convert_nodes, args.budget)
        print("conversion of a", args.convert_nodes, "node cluster:", report)


if __name__ == "__main__":
    main()
