"""Interruptions benchmark (PostgreSQL): 1,000 spot interruption warnings for 20 organizations put on their queues at
once (one AWS account and queue each, in the simulated AWS), consumed by the queue consumer as ``poll_interruptions``
runs it. Measured per event, from the moment its message was sent:

- queue → the cordon action ready to lease (the ``agent_actions`` row committed; target ≤ 5 s p99);
- queue → the replacement launch requested (the interruption job's launch step sent to EC2; target ≤ 30 s p99).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spotopt_bench .venv/bin/python bench/interruptions.py --fresh

The database is created when missing (``--fresh``: dropped and created again) and migrated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _db import ensure_database  # bench/ is the script's own directory


def setup_django(*, fresh: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    ensure_database(os.environ.get("DATABASE_URL", ""), fresh=fresh)
    subprocess.run(
        [sys.executable, "manage.py", "load_pricing_snapshot", "--region", "us-east-1"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    import django

    django.setup()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def boto(endpoint: str, aws_id: str, service: str):
    import boto3

    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{aws_id}:role/SpotOptimizer", RoleSessionName="bench")["Credentials"]
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def seed(endpoint: str, orgs: int, per_org: int) -> list[dict]:
    """Per organization: an AWS account with its queue, VPC, subnets and launch template; a cluster the platform
    launches for (spot m5 template with fallback); ``per_org`` spot nodes it launched, known to the agent."""
    from django.utils import timezone

    from accounts.models import CloudAccount, Organization
    from agentapi.models import KubeNode
    from clusters.models import Cluster, ClusterPolicy, Instance
    from templates_app.models import NodeTemplate

    stamp = time.time_ns() % 10**6
    worlds = []
    for o in range(orgs):
        aws_id = f"{700000000000 + stamp * 100 + o}"[-12:]
        sqs = boto(endpoint, aws_id, "sqs")
        url = sqs.create_queue(QueueName="spotopt-interruptions")["QueueUrl"]
        ec2 = boto(endpoint, aws_id, "ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = {
            z: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
            for i, z in enumerate(("us-east-1a", "us-east-1b", "us-east-1c"))
        }
        lt = ec2.create_launch_template(
            LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        org = Organization.objects.create(name=f"bench-interruptions-{stamp}-{o}")
        account = CloudAccount.objects.create(
            organization=org,
            name="aws",
            role_arn=f"arn:aws:iam::{aws_id}:role/SpotOptimizer",
            external_id="ext",
            aws_account_id=aws_id,
            regions=["us-east-1"],
            status=CloudAccount.Status.ACTIVE,
        )
        cluster = Cluster.objects.create(
            organization=org,
            cloud_account=account,
            name="prod",
            region="us-east-1",
            launch_config={"launch_template_id": lt, "launch_template_version": "$Latest", "subnets": subnets},
        )
        NodeTemplate.objects.create(
            organization=org,
            name="spot m5",
            architectures=["x86_64"],
            instance_families={"include": ["m5*"], "exclude": []},
            capacity_types=["spot"],
            spot_fallback=True,
            is_default=True,
        )
        ClusterPolicy.objects.create(cluster=cluster)
        instances = Instance.objects.bulk_create(
            Instance(
                cluster=cluster,
                instance_id=f"i-{o:04x}{n:013x}",
                instance_type="m5.large",
                zone=("us-east-1a", "us-east-1b", "us-east-1c")[n % 3],
                lifecycle="spot",
                state="running",
                launch_time=timezone.now() - timedelta(hours=n + 1),
            )
            for n in range(per_org)
        )
        KubeNode.objects.bulk_create(
            KubeNode(
                cluster=cluster, name=f"node-{i.instance_id}", ec2_instance_id=i.instance_id, instance=i, ready=True
            )
            for i in instances
        )
        worlds.append({"aws_id": aws_id, "sqs": sqs, "url": url, "instances": [i.instance_id for i in instances]})
    return worlds


def run(
    orgs: int, per_org: int, threads: int, launch: bool = True, port: int = 5155, consumer_mode: str = "running"
) -> dict:
    from django.conf import settings

    from agentapi.models import AgentAction
    from interruptions.events import spot_warning
    from interruptions.models import Interruption
    from interruptions.poller import Consumer
    from optimization.models import JobStep, OptimizationJob

    # The simulated AWS in a process of its own: AWS's work is not the consumer's CPU.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; from spotopt.simulated_aws import SimulatedAws; s = SimulatedAws(port={port}); s.start(); "
            "time.sleep(10**6)",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            import requests

            requests.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.2)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("MOTO_ACCOUNT_ID", None)
    settings.AWS_ENDPOINT_URL = endpoint
    try:
        worlds = seed(endpoint, orgs, per_org)
        # Without launches: what the platform's intake alone takes (the simulated AWS's CPU is not its own).
        wait = 0 if consumer_mode == "once" else None  # the running consumer long-polls as deployed (20 s)
        consumer = Consumer(wait_seconds=wait) if launch else Consumer(wait_seconds=wait, advance=lambda job_id: None)
        consumer.prepare()  # a running consumer has its queues open already
        stop = threading.Event()
        polling = None
        if consumer_mode == "running":  # the consumer as deployed, in its long polls before the burst comes
            polling = threading.Thread(target=consumer.run, args=(stop,), name="consumer", daemon=True)
            polling.start()
            time.sleep(3)
        sent: dict[str, float] = {}
        start = time.time()
        for world in worlds:  # every message on the queues at once, as fast as the simulated AWS takes them
            bodies = []
            for iid in world["instances"]:
                event_id = str(uuid.uuid4())
                bodies.append(
                    (
                        event_id,
                        spot_warning(
                            instance_id=iid,
                            account=world["aws_id"],
                            region="us-east-1",
                            at=datetime.now(UTC),
                            event_id=event_id,
                        ),
                    )
                )
            for i in range(0, len(bodies), 10):
                chunk = bodies[i : i + 10]
                now = time.time()
                world["sqs"].send_message_batch(
                    QueueUrl=world["url"],
                    Entries=[{"Id": str(n), "MessageBody": json.dumps(b)} for n, (_, b) in enumerate(chunk)],
                )
                for event_id, _ in chunk:
                    sent[event_id] = now
        queued_in = time.time() - start
        t0 = time.time()
        if polling is None:
            report = consumer.drain_all(threads=threads)
            stored, duplicates = report.stored, report.duplicates
        else:
            # Until every event is handled and every replacement job's launches requested (or 10 minutes).
            while time.time() - t0 < 600:
                handled = Interruption.objects.filter(event_id__in=list(sent), handled_at__isnull=False)
                if handled.count() == len(sent) and (
                    not launch
                    or not JobStep.objects.filter(
                        job_id__in=handled.exclude(job=None).values("job_id"), kind="launch", started_at=None
                    ).exists()
                ):
                    break
                time.sleep(0.5)
            stop.set()
            polling.join()
            consumer.wait_launches()
            stored = Interruption.objects.filter(event_id__in=list(sent)).count()
            duplicates = 0
        wall = time.time() - t0
        rows = {
            r.event_id: r for r in Interruption.objects.filter(event_id__in=list(sent)).only("id", "event_id", "job_id")
        }
        cordons = {
            int(origin.split(":")[1]): created.timestamp()
            for origin, created in AgentAction.objects.filter(
                type="cordon", origin__in=[f"interruption:{r.pk}" for r in rows.values()]
            ).values_list("origin", "created_at")
        }
        jobs_created = dict(
            OptimizationJob.objects.filter(pk__in=[r.job_id for r in rows.values() if r.job_id]).values_list(
                "pk", "created_at"
            )
        )
        to_job = [jobs_created[r.job_id].timestamp() - sent[e] for e, r in rows.items() if r.job_id in jobs_created]
        # A job replaces a burst's nodes with one launch per pool: each event counts from its job's LAST launch request.
        launches: dict[int, datetime] = {}
        for job_id, started in (
            JobStep.objects.filter(job_id__in=[r.job_id for r in rows.values() if r.job_id], kind="launch")
            .exclude(started_at=None)
            .values_list("job_id", "started_at")
        ):
            launches[job_id] = max(started, launches.get(job_id, started))
        to_cordon = [cordons[r.pk] - sent[e] for e, r in rows.items() if r.pk in cordons]
        to_launch = [launches[r.job_id].timestamp() - sent[e] for e, r in rows.items() if r.job_id in launches]
        return {
            "events": len(sent),
            "replacement_jobs": len(jobs_created),
            "launch_steps": JobStep.objects.filter(job_id__in=list(jobs_created), kind="launch").count(),
            "organizations": orgs,
            "consumer_threads": threads,
            "consumer": consumer_mode,
            "stored": stored,
            "duplicates": duplicates,
            "queued_in_s": round(queued_in, 2),
            "drained_in_s": round(wall, 2),
            "cordon_ready_s": {
                "n": len(to_cordon),
                "p50": round(statistics.median(to_cordon), 2),
                "p99": round(percentile(to_cordon, 99), 2),
                "max": round(max(to_cordon), 2),
            },
            "replacement_job_created_s": {
                "n": len(to_job),
                "p50": round(statistics.median(to_job), 2) if to_job else None,
                "p99": round(percentile(to_job, 99), 2) if to_job else None,
            },
            "launch_requested_s": {
                "n": len(to_launch),
                "p50": round(statistics.median(to_launch), 2) if to_launch else None,
                "p99": round(percentile(to_launch, 99), 2) if to_launch else None,
                "max": round(max(to_launch), 2) if to_launch else None,
            },
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--per-org", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-launch", action="store_true", help="Create the replacement jobs but request no launch.")
    parser.add_argument("--port", type=int, default=5155, help="Port of the simulated AWS the benchmark starts.")
    parser.add_argument(
        "--fresh", action="store_true", help="Drop DATABASE_URL's database and create it again first (a clean run)."
    )
    parser.add_argument(
        "--consumer",
        choices=("running", "once"),
        default="running",
        help="running: the consumer as deployed (poll_interruptions), already in its long polls when the burst is "
        "sent; once: the burst is queued first, then drained as `poll_interruptions --once` does (a backlog).",
    )
    args = parser.parse_args()
    setup_django(fresh=args.fresh)
    print(
        json.dumps(
            run(
                args.orgs,
                args.per_org,
                args.threads,
                launch=not args.no_launch,
                port=args.port,
                consumer_mode=args.consumer,
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
