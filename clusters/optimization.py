"""The optimizer's problem for a cluster, built from the database (DESIGN.md §6), and the plan it gives.

Sources: the agent's last snapshot (``agentapi.KubePod`` / ``KubeNode``), the cluster's policy and the template it
names (or the organization's default) through the one matching service, and the pricing catalog. The same builder
serves ``manage.py optimize`` and the optimization jobs.

Decisions (documented here because the snapshot does not say everything a scheduler knows):

- A *workload* is the pods of one owner (namespace, owner kind, owner name) with one request shape; an owner whose pods
  have several shapes becomes several workloads (``name#2`` …).
- ``spot_ok`` is false for pods marked do-not-disrupt and for bare pods (no owner to recreate them after an
  interruption); every other pod may run on spot.
- DaemonSet pods are not workloads: the daemonset share per node is the largest sum of DaemonSet requests seen on one
  node.
- ``headroom_pct`` inflates every pod's CPU and memory request by that percentage (rounded up), so the plan keeps
  that much spare capacity.
- Succeeded and failed pods are ignored; pending pods count (they need room too).
- The template's ``capacity-optimized`` strategy plans as ``price-capacity-optimized``: the planner has no capacity
  pool depth data, and interruption rates are its proxy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentapi.models import KubeNode, KubePod
from clusters.models import Cluster, Instance
from clusters.policy_services import effective_template, optimizer_constraints, policy_for
from optimizer import plan as run_planner
from pricing import selectors as pricing
from spotopt.errors import ValidationFailed
from templates_app.services.matching import eligible_offerings

ACTIVE_PHASES = ("Running", "Pending", "")
STRATEGIES = {
    "lowest-price": "lowest-price",
    "price-capacity-optimized": "price-capacity-optimized",
    "capacity-optimized": "price-capacity-optimized",
}
SIX_PLACES = Decimal("0.000001")


@dataclass
class ClusterProblem:
    """A cluster's optimizer problem with what the report around it needs."""

    cluster: Cluster
    problem: dict[str, Any]
    current_hourly_cost: Decimal
    current_nodes: int
    template_name: str | None
    budget: Decimal | None
    notes: list[str] = field(default_factory=list)


def _inflate(value: int, headroom_pct: int) -> int:
    return math.ceil(value * (100 + headroom_pct) / 100)


def _workloads(cluster: Cluster, headroom_pct: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Workloads and the daemonset share from the last snapshot (two queries)."""
    groups: dict[tuple, int] = defaultdict(int)
    daemonset_per_node: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    pods = KubePod.objects.filter(cluster=cluster, phase__in=ACTIVE_PHASES).values_list(
        "namespace", "owner_kind", "owner_name", "cpu_m", "memory_mib", "daemonset", "do_not_disrupt", "node_name"
    )
    for namespace, owner_kind, owner_name, cpu_m, memory_mib, daemonset, do_not_disrupt, node_name in pods:
        if daemonset:
            share = daemonset_per_node[node_name]
            share[0] += cpu_m
            share[1] += memory_mib
            share[2] += 1
            continue
        bare = not owner_kind or owner_kind == "Node"
        owner = f"{namespace}/{owner_kind or 'Pod'}/{owner_name}" if not bare else f"{namespace}/bare-pods"
        spot_ok = not (do_not_disrupt or bare)
        groups[(owner, _inflate(cpu_m, headroom_pct), _inflate(memory_mib, headroom_pct), spot_ok)] += 1

    workloads: list[dict[str, Any]] = []
    seen: dict[str, int] = defaultdict(int)
    for (owner, cpu_m, memory_mib, spot_ok), count in sorted(groups.items()):
        seen[owner] += 1
        name = owner if seen[owner] == 1 else f"{owner}#{seen[owner]}"
        workloads.append(
            {"name": name, "count": count, "cpu_m": cpu_m, "memory_mib": memory_mib, "spot_ok": spot_ok}
        )
    if daemonset_per_node:
        cpu, mem, count = max(daemonset_per_node.values(), key=lambda s: (s[0], s[1], s[2]))
        daemonset = {"cpu_m": cpu, "memory_mib": mem, "pods": count}
    else:
        daemonset = {"cpu_m": 0, "memory_mib": 0, "pods": 0}
    return workloads, daemonset


def current_cost(cluster: Cluster) -> tuple[Decimal, int]:
    """What the cluster's nodes cost now (USD/h) and how many there are: running instances and snapshot nodes with
    no instance row, each priced by the one cost rule (``pricing.selectors.PriceBook.price``)."""
    instances = list(Instance.objects.running().filter(cluster=cluster).values_list(
        "instance_id", "instance_type", "zone", "lifecycle", "hourly_price"))
    known = {row[0] for row in instances}
    agent_only = [
        (n.instance_type, n.zone, n.capacity_type)
        for n in KubeNode.objects.filter(cluster=cluster, instance__isnull=True).only(
            "instance_type", "zone", "capacity_type", "provider_id")
        if n.instance_type and not any(n.provider_id.endswith(i) for i in known)
    ]
    types = {row[1] for row in instances} | {t for t, _, _ in agent_only}
    book = pricing.price_book((cluster.region, t) for t in types)

    total = Decimal(0)
    for _, itype, zone, lifecycle, recorded in instances:
        total += book.price(itype, zone, lifecycle, cluster.region, recorded=recorded) or Decimal(0)
    for itype, zone, capacity in agent_only:
        capacity = "spot" if capacity == "spot" else "on-demand"
        total += book.price(itype, zone, capacity, cluster.region) or Decimal(0)
    return total.quantize(SIX_PLACES), len(instances) + len(agent_only)


def build_problem(cluster: Cluster) -> ClusterProblem:
    """The optimizer problem (format version 1) for ``cluster``; raises ValidationFailed when it cannot be built."""
    policy = policy_for(cluster)
    template = effective_template(policy)
    if template is None:
        raise ValidationFailed(
            "The cluster has no node template: choose one in its policy or mark one as the default.",
            fields={"node_template": ["No template and no default template."]},
        )
    offerings = eligible_offerings(template, cluster.region, include_fallback=True)
    if not offerings:
        raise ValidationFailed(
            f"Template {template.name!r} matches no priced instance type in {cluster.region}.",
            fields={"node_template": ["Matches nothing in the catalog for this region."]},
        )
    workloads, daemonset = _workloads(cluster, policy.headroom_pct)
    notes = []
    if not workloads:
        notes.append("No workload pods in the agent's last snapshot: the plan is empty.")
    problem = {
        "offerings": [o.as_problem() for o in offerings],
        "workloads": workloads,
        "daemonset": daemonset,
        "constraints": optimizer_constraints(policy),
        "strategy": STRATEGIES.get(template.strategy, "lowest-price"),
    }
    cost, nodes = current_cost(cluster)
    return ClusterProblem(
        cluster=cluster,
        problem=problem,
        current_hourly_cost=cost,
        current_nodes=nodes,
        template_name=template.name,
        budget=template.max_hourly_budget,
        notes=notes,
    )


def optimize(cluster: Cluster) -> dict[str, Any]:
    """Plan the cluster and report the plan with its cost, the current cost and the saving (money as strings)."""
    built = build_problem(cluster)
    result = run_planner(built.problem)
    planned = Decimal(result["hourly_cost"])
    saving = (built.current_hourly_cost - planned).quantize(SIX_PLACES)
    notes = list(built.notes)
    if built.budget is not None and planned > built.budget:
        notes.append(f"The plan costs {planned} USD/h, over the template's budget of {built.budget} USD/h.")
    if result["unplaced"]:
        notes.append(f"{sum(result['unplaced'].values())} pod(s) fit no allowed offering and stay unplaced.")
    pct = (saving / built.current_hourly_cost * 100).quantize(Decimal("0.1")) if built.current_hourly_cost else None
    return {
        "cluster": {"id": cluster.pk, "name": cluster.name, "region": cluster.region},
        "template": built.template_name,
        "strategy": built.problem["strategy"],
        "constraints": built.problem["constraints"],
        "workloads": len(built.problem["workloads"]),
        "pods": sum(w["count"] for w in built.problem["workloads"]),
        "offerings": len(built.problem["offerings"]),
        "current": {"nodes": built.current_nodes, "hourly_cost": str(built.current_hourly_cost)},
        "plan": result,
        "saving": {"hourly": str(saving), "monthly": str((saving * 730).quantize(Decimal("0.01"))),
                   "percent": str(pct) if pct is not None else None},
        "notes": notes,
    }
