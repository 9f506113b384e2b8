"""Run the reference agent on a simulated cluster against this platform: the embedded default's agent."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from accounts.models import CloudAccount, User
from agent.executor import Executor
from agent.platform import PlatformClient
from agent.runner import Agent
from agent.simulated import demo_cluster
from agent.simulated_aws import mirrored_cluster
from agentapi.models import ApiKey
from agentapi.services import api_key_create, api_key_revoke
from clusters.models import Cluster, Instance
from clusters.services import cluster_register

KEY_NAME = "demo agent (simulated)"


class Command(BaseCommand):
    help = (
        "Give a cluster a fresh API key and run the reference agent for it on a simulated cluster (--simulate), "
        "so that snapshots, actions and results flow without Kubernetes. For development and demos only."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the platform, as the agent reaches it")
        parser.add_argument("--cluster-id", type=int, help="default: the demo organization's first cluster")
        parser.add_argument("--email", default="demo@spotoptimizer.com", help="whose organization (default: demo)")
        parser.add_argument("--nodes", type=int, default=4, help="simulated nodes when the cluster has no instances")
        parser.add_argument("--pods-per-node", type=int, default=6)
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            help="seconds to wait for a discovered cluster with instances (the embedded default discovers them while "
            "this starts)",
        )

    def _cluster(self, options) -> Cluster:
        if options["cluster_id"]:
            try:
                return Cluster.objects.select_related("organization").get(pk=options["cluster_id"])
            except Cluster.DoesNotExist:
                raise CommandError(f"no cluster {options['cluster_id']}")
        user = User.objects.filter(email__iexact=options["email"]).select_related("organization").first()
        if user is None or user.organization is None:
            raise CommandError(f"no organization for {options['email']}: run manage.py seed_demo first")
        deadline = time.monotonic() + options["wait"]
        while True:
            # The cluster with the most running instances: the demo's EKS cluster once discovery has run.
            cluster = (
                Cluster.objects.filter(organization=user.organization)
                .annotate(running=Count("instances", filter=Q(instances__terminated_at__isnull=True)))
                .order_by("-running", "id")
                .first()
            )
            syncing = CloudAccount.objects.filter(
                organization=user.organization, status=CloudAccount.Status.ACTIVE, last_synced_at__isnull=True
            ).exists()
            if (cluster is not None and cluster.running > 0 and not syncing) or time.monotonic() >= deadline:
                break
            time.sleep(2)
        if cluster is None:
            cluster = cluster_register(
                organization=user.organization,
                name="demo-simulated",
                region="us-east-1",
                kind=Cluster.Kind.SELF_MANAGED,
                actor="system:demo_agent",
            )
        return cluster

    def handle(self, *args, **options) -> None:
        cluster = self._cluster(options)
        for old in ApiKey.objects.active().filter(cluster=cluster, name=KEY_NAME).select_related("cluster"):
            api_key_revoke(api_key=old, actor="system:demo_agent")
        _, raw = api_key_create(cluster=cluster, name=KEY_NAME, actor="system:demo_agent")
        instances = list(
            Instance.objects.filter(cluster=cluster)
            .running()
            .values("instance_id", "zone", "instance_type", "lifecycle", "private_dns")[:50]
        )
        if cluster.cloud_account_id is not None and settings.AWS_ENDPOINT_URL:
            # The simulated AWS: the agent's nodes are the cluster's EC2 instances as they come and go. On a restart
            # the database is ready at once but the simulated AWS may still be starting: wait for it to listen.
            _wait_for_endpoint(settings.AWS_ENDPOINT_URL, seconds=options["wait"])
            backend = mirrored_cluster(
                cluster_name=cluster.name, region=cluster.region, endpoint_url=settings.AWS_ENDPOINT_URL
            )
        else:
            backend = demo_cluster(
                nodes=options["nodes"], pods_per_node=options["pods_per_node"], instances=instances or None
            )
        self.stdout.write(f"Simulated agent for cluster {cluster.name} (#{cluster.pk}) reporting to {options['url']}")
        logging.getLogger("agent").setLevel(logging.INFO)
        agent = Agent(PlatformClient(options["url"], raw), backend, Executor(backend))
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        agent.run(stop, iterations=1 if options["once"] else None)
        self.stdout.write(f"stopped: {agent.stats}")


def _wait_for_endpoint(url: str, *, seconds: float) -> None:
    """Until ``url``'s host accepts a TCP connection, or ``seconds`` have passed (then the first call reports why)."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(address, timeout=2).close()
            return
        except OSError:
            time.sleep(1)
