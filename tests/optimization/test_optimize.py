"""``manage.py optimize``: the problem built from the database, the plan and the saving report."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from agentapi.services import api_key_create, snapshot_ingest
from clusters.models import ClusterPolicy
from optimization.planning import build_problem, optimize
from optimizer import validate
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory, InstanceFactory
from tests.templates_app.conftest import catalog  # noqa: F401 - the small exact-price catalog fixture

pytestmark = pytest.mark.django_db


def _node(name: str, instance_id: str, zone: str = "us-east-1a") -> dict:
    return {
        "name": name,
        "provider_id": f"aws:///{zone}/{instance_id}",
        "instance_type": "m5.xlarge",
        "zone": zone,
        "capacity_type": "on-demand",
        "labels": {},
        "taints": [],
        "unschedulable": False,
        "ready": True,
        "allocatable": {"cpu_m": 3920, "memory_mib": 14800, "pods": 58},
    }


def _pod(name: str, node: str, cpu: int, mem: int, owner=("ReplicaSet", "web-7d9"), **extra) -> dict:
    pod = {
        "namespace": "shop",
        "name": name,
        "node": node,
        "phase": "Running",
        "requests": {"cpu_m": cpu, "memory_mib": mem},
        "owner_kind": owner[0],
        "owner_name": owner[1],
        "daemonset": False,
        "do_not_disrupt": False,
        "priority": 0,
    }
    pod.update(extra)
    return pod


@pytest.fixture
def cluster(catalog, org):  # noqa: F811 - the fixture imported above
    NodeTemplate.objects.create(
        organization=org,
        name="general",
        architectures=["x86_64"],
        instance_families={"include": ["m5*"], "exclude": []},
        capacity_types=["spot", "on-demand"],
        strategy="lowest-price",
        is_default=True,
        max_hourly_budget=Decimal("0.10"),
    )
    cluster = ClusterFactory(organization=org, region="us-east-1")
    ClusterPolicy.objects.create(cluster=cluster, on_demand_base=0.0, max_pool_share=1.0, headroom_pct=10)
    for i in range(3):
        InstanceFactory(
            cluster=cluster, instance_id=f"i-{i:017d}", instance_type="m5.xlarge", hourly_price=Decimal("0.192000")
        )
    key, _ = api_key_create(cluster=cluster, name="agent")
    nodes = [_node(f"node-{i}", f"i-{i:017d}") for i in range(3)]
    pods = [_pod(f"web-{i}", f"node-{i % 3}", 500, 1000) for i in range(6)]
    pods += [_pod(f"ds-{i}", f"node-{i}", 100, 200, owner=("DaemonSet", "cni"), daemonset=True) for i in range(3)]
    pods.append(_pod("debug", "node-0", 200, 256, owner=("", "")))
    pods.append(_pod("db-0", "node-1", 1000, 4000, owner=("StatefulSet", "db"), do_not_disrupt=True))
    pods.append(_pod("done", "node-2", 4000, 4000, owner=("Job", "batch"), phase="Succeeded"))
    snapshot_ingest(
        api_key=key, data={"agent_version": "1.0", "kubernetes_version": "1.31", "nodes": nodes, "pods": pods}
    )
    return cluster


def test_problem_is_built_from_snapshot_policy_and_template(cluster):
    built = build_problem(cluster)
    workloads = {w["name"]: w for w in built.problem["workloads"]}
    # 10% headroom on every request; the bare pod and the do-not-disrupt pod must stay on on-demand
    assert workloads["shop/ReplicaSet/web-7d9"] == {
        "name": "shop/ReplicaSet/web-7d9",
        "count": 6,
        "cpu_m": 550,
        "memory_mib": 1100,
        "spot_ok": True,
    }
    assert workloads["shop/bare-pods"]["spot_ok"] is False
    assert workloads["shop/StatefulSet/db"]["spot_ok"] is False
    assert not any("batch" in name for name in workloads)  # finished pods take no room
    assert built.problem["daemonset"] == {"cpu_m": 100, "memory_mib": 200, "pods": 1}
    assert built.problem["constraints"] == {"on_demand_base": 0.0, "max_pool_share": 1.0}
    types = {o["instance_type"] for o in built.problem["offerings"]}
    assert types == {"m5.large", "m5.xlarge"}
    assert {o["capacity_type"] for o in built.problem["offerings"]} == {"spot", "on-demand"}
    assert built.current_hourly_cost == Decimal("0.576000")
    assert [n.id for n in built.current_nodes] == [f"i-{i:017d}" for i in range(3)]
    # the snapshot's pod placement; node-1 runs the do-not-disrupt pod and is protected
    assert built.current_nodes[0].pods == {"shop/ReplicaSet/web-7d9": 2, "shop/bare-pods": 1}
    assert [n.protected for n in built.current_nodes] == [False, True, False]
    assert built.problem["version"] == 2
    assert built.problem["disruption"] == {"min_saving_pct": 5.0, "max_nodes_replaced": 1}
    assert built.problem["unavailable"] == []


def test_optimize_report_plan_is_valid_and_saving_is_current_minus_plan(cluster):
    built = build_problem(cluster)
    report = optimize(cluster)
    assert validate(built.problem, report["plan"]) == []
    assert report["plan"]["unplaced"] == {}
    planned = Decimal(report["plan"]["hourly_cost"])
    assert planned < Decimal("0.576")
    assert Decimal(report["saving"]["hourly"]) == Decimal("0.576000") - planned
    on_demand_pods = sum(
        n["pods"].get("shop/bare-pods", 0) + n["pods"].get("shop/StatefulSet/db", 0)
        for n in report["plan"]["nodes"]
        if n["capacity_type"] == "on-demand"
    )
    assert on_demand_pods == 2
    assert any("budget" in note for note in report["notes"]) == (planned > Decimal("0.10"))


def test_optimize_command_prints_plan_cost_current_cost_and_saving(cluster):
    out = io.StringIO()
    call_command("optimize", cluster=cluster.pk, stdout=out)
    text = out.getvalue()
    report = optimize(cluster)
    assert f"Plan:    {len(report['plan']['nodes'])} nodes, {report['plan']['hourly_cost']} USD/h" in text
    assert "Current: 3 nodes, 0.576000 USD/h" in text
    assert f"Saving:  {report['saving']['hourly']} USD/h" in text
    assert f"Keep ({len(report['keep'])}):" in text
    assert f"Add ({len(report['add'])}):" in text
    assert f"Remove ({len(report['remove'])}):" in text
    for removed in report["remove"]:
        assert removed["node"] in text


def test_optimize_command_json(cluster):
    out = io.StringIO()
    call_command("optimize", cluster=cluster.pk, json=True, stdout=out)
    report = json.loads(out.getvalue())
    assert report["cluster"]["id"] == cluster.pk
    assert report["current"]["hourly_cost"] == "0.576000"
    plan = report["plan"]
    assert {"nodes", "remove", "hourly_cost", "current_hourly_cost", "saving", "notes"} <= set(plan)
    # every current node is either kept or removed, never both; the protected one (do-not-disrupt pod) is kept
    kept = {n["keep"] for n in plan["nodes"] if n.get("keep")}
    assert kept | set(plan["remove"]) == {f"i-{i:017d}" for i in range(3)}
    assert not kept & set(plan["remove"])
    assert "i-00000000000000001" in kept
    assert len(plan["remove"]) <= report["disruption"]["max_nodes_replaced"]
    assert [r["id"] for r in report["remove"]] == plan["remove"]
    assert len(report["add"]) == sum(1 for n in plan["nodes"] if n.get("new"))


def test_optimize_on_a_cluster_without_a_snapshot_says_so(catalog, org):  # noqa: F811
    NodeTemplate.objects.create(
        organization=org,
        name="any",
        capacity_types=["spot", "on-demand"],
        is_default=True,
        instance_families={"include": ["m5*"], "exclude": []},
    )
    cluster = ClusterFactory(organization=org, region="us-east-1")
    InstanceFactory(cluster=cluster, instance_id="i-00000000000000001", instance_type="m5.xlarge")
    with pytest.raises(CommandError, match="has not sent a snapshot yet"):
        call_command("optimize", cluster=cluster.pk, stdout=io.StringIO())


def test_optimize_without_any_template_is_a_clear_error(cluster):
    ClusterPolicy.objects.filter(cluster=cluster).update(node_template=None)
    NodeTemplate.objects.filter(organization=cluster.organization).delete()
    with pytest.raises(CommandError, match="no node template"):
        call_command("optimize", cluster=cluster.pk, stdout=io.StringIO())


def test_optimize_unknown_cluster(db):
    with pytest.raises(CommandError, match="no cluster with id 999999"):
        call_command("optimize", cluster=999999, stdout=io.StringIO())


def test_a_spot_only_template_without_any_spot_price_is_a_clear_error_not_an_on_demand_plan(cluster):
    from optimization.planning import build_problem
    from pricing.models import SpotPricePoint
    from spotopt.errors import ValidationFailed

    template = NodeTemplate.objects.get(organization=cluster.organization, is_default=True)
    NodeTemplate.objects.filter(pk=template.pk).update(capacity_types=["spot"], spot_fallback=True)
    SpotPricePoint.objects.all().delete()  # the catalog knows no spot price for the template's types
    with pytest.raises(ValidationFailed) as raised:
        build_problem(cluster)
    assert raised.value.code == "no_spot_offering" and "not a plan" in raised.value.message
