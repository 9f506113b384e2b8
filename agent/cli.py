"""``spotopt-agent``: run the agent in a cluster, or against a simulated one with ``--simulate``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from . import __version__
from .executor import Executor
from .platform import PlatformClient
from .runner import Agent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spotopt-agent", description=__doc__)
    parser.add_argument(
        "--url", default=os.environ.get("SPOTOPT_URL", "http://127.0.0.1:8000"), help="platform URL (env SPOTOPT_URL)"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("SPOTOPT_API_KEY", ""), help="the cluster's API key (env SPOTOPT_API_KEY)"
    )
    parser.add_argument("--simulate", action="store_true", help="run against an in-memory cluster")
    parser.add_argument("--sim-nodes", type=int, default=3, help="simulated nodes")
    parser.add_argument("--sim-pods-per-node", type=int, default=5, help="simulated pods per node")
    parser.add_argument(
        "--aws-cluster",
        default=os.environ.get("SPOTOPT_AWS_CLUSTER", ""),
        help="with --simulate: mirror the EC2 instances tagged for this cluster (AWS from the usual environment, "
        "AWS_ENDPOINT_URL included)",
    )
    parser.add_argument("--aws-region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--sim-join-seconds", type=float, default=10.0, help="a launched node is Ready after this")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig outside the cluster (default: in-cluster)")
    parser.add_argument("--max-actions", type=int, default=5, help="actions leased per poll")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.add_argument("--version", action="version", version=f"spotopt-agent {__version__}")
    return parser.parse_args(argv)


def make_backend(args: argparse.Namespace):
    if args.simulate and args.aws_cluster:
        from .simulated_aws import mirrored_cluster

        return mirrored_cluster(
            cluster_name=args.aws_cluster,
            region=args.aws_region,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            join_seconds=args.sim_join_seconds,
        )
    if args.simulate:
        from .simulated import demo_cluster

        return demo_cluster(nodes=args.sim_nodes, pods_per_node=args.sim_pods_per_node)
    from kubernetes import client, config

    from .kube import KubernetesBackend

    if args.kubeconfig:
        config.load_kube_config(config_file=args.kubeconfig)
        return KubernetesBackend(client.ApiClient())
    return KubernetesBackend()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.api_key:
        print("spotopt-agent: an API key is required (--api-key or SPOTOPT_API_KEY)", file=sys.stderr)
        return 2
    backend = make_backend(args)
    agent = Agent(PlatformClient(args.url, args.api_key), backend, Executor(backend), max_actions=args.max_actions)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("agent").info(
        "spotopt-agent %s reporting to %s (%s)", __version__, args.url, "simulated cluster" if args.simulate else "k8s"
    )
    agent.run(stop, iterations=1 if args.once else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
