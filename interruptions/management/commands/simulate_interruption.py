"""``manage.py simulate_interruption``: the simulated world's AWS takes a spot node back. Puts an EC2 event on the
account's default event bus in the simulated AWS (``make run``); the EventBridge rules deliver it to the
interruption queue, ``poll_interruptions`` handles it, and the cluster page shows the timeline and the replacement.
With ``--terminate-after`` the instance is terminated that many seconds later, as AWS does two minutes after the
warning. ``--kind scheduled`` puts an AWS Health scheduled retirement instead, starting ``--starts-in`` minutes from
now: the node is marked, and its replacement starts ``INTERRUPTION_SCHEDULED_LEAD_MINUTES`` before that time (at once
when the start is nearer)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.aws import session_for
from cloud import ec2, events, sqs
from cloud import errors as cloud_errors
from clusters.models import Cluster, Instance
from interruptions.events import HEALTH, REBALANCE, SPOT_WARNING

DETAIL_TYPES = {"spot": SPOT_WARNING, "rebalance": REBALANCE, "scheduled": HEALTH}


class Command(BaseCommand):
    help = "Interrupt a spot node of a cluster in the simulated AWS (EventBridge → the interruption queue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster", required=True, help="Cluster id or name.")
        parser.add_argument("--instance", default="", help="The instance (default: the cluster's newest spot node).")
        parser.add_argument("--kind", choices=sorted(DETAIL_TYPES), default="spot")
        parser.add_argument(
            "--terminate-after", type=int, default=0, help="Terminate the instance this many seconds later (0: never)."
        )
        parser.add_argument(
            "--starts-in",
            type=int,
            default=90,
            help="--kind scheduled: the retirement starts this many minutes from now (default 90).",
        )

    def handle(
        self, *args: Any, cluster: str, instance: str, kind: str, terminate_after: int, starts_in: int, **options: Any
    ):
        if starts_in < 0:
            raise CommandError("--starts-in must be >= 0 minutes.")
        if not settings.AWS_ENDPOINT_URL:
            raise CommandError("Only against the simulated AWS: set AWS_ENDPOINT_URL (make run does).")
        found = Cluster.objects.select_related("cloud_account").filter(
            **({"pk": int(cluster)} if cluster.isdigit() else {"name": cluster})
        )
        target = found.first()
        if target is None or target.cloud_account is None:
            raise CommandError(f"No cluster {cluster!r} with a linked account.")
        nodes = Instance.objects.running().filter(cluster=target, lifecycle=Instance.Lifecycle.SPOT)
        node = (nodes.filter(instance_id=instance) if instance else nodes.order_by("-launch_time", "-id")).first()
        if node is None:
            raise CommandError(f"{target.name} has no running spot instance {instance}".strip() + ".")
        session = session_for(target.cloud_account, region=target.region)
        url = sqs.create_queue(session, name=settings.INTERRUPTION_QUEUE_NAME)
        events.ensure_interruption_rules(session, queue_arn=sqs.queue_arn(session, url=url))
        arn = f"arn:aws:ec2:{target.region}:{target.cloud_account.aws_account_id}:instance/{node.instance_id}"
        if kind == "scheduled":
            start = datetime.now(UTC) + timedelta(minutes=starts_in)
            code = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
            detail: dict[str, Any] = {
                "eventArn": f"arn:aws:health:{target.region}::event/EC2/{code}/{code}_{node.instance_id}",
                "service": "EC2",
                "eventTypeCode": code,
                "eventTypeCategory": "scheduledChange",
                "startTime": format_datetime(start, usegmt=True),
                "endTime": format_datetime(start + timedelta(minutes=20), usegmt=True),
                "affectedEntities": [{"entityValue": node.instance_id}],
            }
            event_id = events.put_event(
                session, source="aws.health", detail_type=HEALTH, detail=detail, resources=[node.instance_id]
            )
            self.stdout.write(
                f"Scheduled retirement of {node.instance_id} of {target.name} at {start:%Y-%m-%d %H:%M} UTC "
                f"(event {event_id})."
            )
            return
        detail = {"instance-id": node.instance_id}
        if kind == "spot":
            detail["instance-action"] = "terminate"
        event_id = events.put_event(
            session, source="aws.ec2", detail_type=DETAIL_TYPES[kind], detail=detail, resources=[arn]
        )
        self.stdout.write(f"{DETAIL_TYPES[kind]} for {node.instance_id} of {target.name} (event {event_id}).")
        if terminate_after > 0:
            time.sleep(terminate_after)
            try:
                ec2.terminate_instances(session, instance_ids=[node.instance_id])
            except cloud_errors.CloudError as exc:
                raise CommandError(f"Terminating {node.instance_id} failed: {exc}") from exc
            events.put_event(
                session,
                source="aws.ec2",
                detail_type="EC2 Instance State-change Notification",
                detail={"instance-id": node.instance_id, "state": "terminated"},
                resources=[arn],
            )
            self.stdout.write(f"Terminated {node.instance_id}.")
