"""The fuzz run's data: one organization with a linked account, a cluster with an agent key, a template, a policy,
queued agent actions, a snapshot and audit entries, all made through the services. Prints the credentials the
fuzzer uses as one JSON line on stdout."""

from __future__ import annotations

import json
import os
import sys

import django


def seed() -> dict[str, str]:
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts import services as account_services
    from agentapi import services as agent_services
    from clusters import policy_services
    from clusters import services as cluster_services
    from pricing.services import catalog_load_snapshot
    from templates_app import services as template_services

    catalog_load_snapshot(regions={"us-east-1"})
    user = account_services.user_signup(
        email="fuzz@example.com", password="Fuzz-Runner-Pass-7!", organization_name="Fuzz Org", full_name="Fuzz"
    )
    org = user.organization
    account_services.cloud_account_create(
        organization=org,
        name="fuzz-account",
        regions=["us-east-1"],
        role_arn="arn:aws:iam::123456789012:role/SpotOptimizer",
        actor=user,
    )
    cluster = cluster_services.cluster_register(organization=org, name="fuzz-cluster", region="us-east-1", actor=user)
    template = template_services.template_create(
        organization=org,
        data={"name": "general", "architectures": ["x86_64"], "capacity_types": ["spot", "on-demand"]},
        actor=user,
    )
    policy_services.policy_update(cluster=cluster, data={"node_template": template.pk}, actor=user)
    key, raw_key = agent_services.api_key_create(cluster=cluster, name="fuzz", actor=user)
    agent_services.snapshot_ingest(
        api_key=key,
        data={
            "agent_version": "0.1.0",
            "nodes": [
                {
                    "name": "node-a",
                    "provider_id": "aws:///us-east-1a/i-0123456789abcdef0",
                    "instance_type": "m5.large",
                    "zone": "us-east-1a",
                    "capacity_type": "spot",
                    "ready": True,
                    "allocatable": {"cpu_m": 1930, "memory_mib": 7000, "pods": 29},
                }
            ],
            "pods": [
                {
                    "namespace": "default",
                    "name": "web-1",
                    "node": "node-a",
                    "phase": "Running",
                    "requests": {"cpu_m": 250, "memory_mib": 256},
                    "owner_kind": "ReplicaSet",
                    "owner_name": "web",
                }
            ],
        },
    )
    for node in ("node-a", "node-b", "node-c"):
        agent_services.enqueue_action(cluster=cluster, type="cordon", target=node, actor=user)
    return {"token": str(RefreshToken.for_user(user).access_token), "api_key": raw_key}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    django.setup()
    sys.stdout.write(json.dumps(seed()) + "\n")
