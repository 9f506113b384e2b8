"""The optimizer's problem for a cluster, built from the database (DESIGN.md §6, format version 2), and its plan.

Sources: the agent's last snapshot (``agentapi.KubePod`` / ``KubeNode``), the inventory's running instances, the
cluster's policy and the template it names (or the organization's default) through the one matching service, the
pricing catalog, and the ICE cache. The same builder serves ``manage.py optimize``, the recommendation and the jobs.

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
- A *current node* is a running EC2 instance of the cluster (its id is the instance id) with the pods the snapshot
  places on it. It is ``protected`` (always kept) when it runs a do-not-disrupt pod, when the snapshot has no node
  for an instance older than the ready timeout would allow to join, when the agent knows the node but the inventory
  has no instance for it (nothing the platform could terminate), and, under ``consolidation_policy: when-empty``,
  when it runs any workload pod. A node of an EKS managed node group is removed through the group's Auto Scaling
  group (detached with a decrement of its desired capacity, then terminated, so that neither the group nor EKS puts
  it back): it is protected only when that group is unknown, and the group's ``min_size`` nodes (those with the most
  pods) are protected so that the group never goes below its minimum.
- A spot-only template whose types have no spot price in the region is an error, not a plan: its on-demand
  offerings are there for the fallback (capacity short), and a plan of them alone would leave the cluster on-demand.
- Offerings are those of the template in the zones where the cluster's launch configuration has a subnet (all
  zones when it has none yet): a new node cannot go anywhere else.
- ``disruption.max_nodes_replaced`` is what the disruption budgets allow at planning time (maintenance windows are
  honoured later, when nodes are drained); ``min_saving_pct`` is the policy's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone

import optimizer
from agentapi.models import AgentStatus, KubeNode, KubePod
from clusters import disruption
from clusters.models import Cluster, ClusterPolicy, Instance
from clusters.policy_services import effective_template, optimizer_constraints, policy_for
from optimizer import plan as run_planner
from optimizer.problem import parse_problem
from pricing import selectors as pricing
from spotopt.errors import ValidationFailed
from templates_app.services.matching import eligible_offerings

from . import hooks, ice

ACTIVE_PHASES = ("Running", "Pending", "")
STRATEGIES = {
    "lowest-price": "lowest-price",
    "price-capacity-optimized": "price-capacity-optimized",
    "capacity-optimized": "price-capacity-optimized",
}
SIX_PLACES = Decimal("0.000001")
HOURS_PER_MONTH = Decimal(730)


@dataclass
class CurrentNode:
    """A node of the cluster as the plan sees it, with what the job runner needs to act on it."""

    id: str
    instance_id: str
    node_name: str
    instance_type: str
    zone: str
    capacity_type: str
    price: Decimal
    pods: dict[str, int]
    protected: bool
    asg_name: str = ""
    why_protected: str = ""

    def as_problem(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance_type": self.instance_type,
            "zone": self.zone,
            "capacity_type": self.capacity_type,
            "price": str(self.price),
            "pods": dict(self.pods),
            "protected": self.protected,
        }

    def facts(self) -> dict[str, Any]:
        """What a job keeps about the node to act on it later."""
        return {
            "instance_id": self.instance_id,
            "node_name": self.node_name,
            "asg_name": self.asg_name,
            "instance_type": self.instance_type,
            "zone": self.zone,
            "capacity_type": self.capacity_type,
            "price": str(self.price),
            "protected": self.protected,
            "why_protected": self.why_protected,
            "workload_pods": sum(self.pods.values()),
        }


@dataclass
class ClusterProblem:
    """A cluster's optimizer problem with what the report around it needs."""

    cluster: Cluster
    policy: ClusterPolicy
    problem: dict[str, Any]
    current_hourly_cost: Decimal
    current_nodes: list[CurrentNode]
    template_name: str | None
    budget: Decimal | None
    fallback_allowed: bool
    fallback_restore_minutes: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _inflate(value: int, headroom_pct: int) -> int:
    return math.ceil(value * (100 + headroom_pct) / 100)


def _workloads(
    cluster: Cluster, headroom_pct: int
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, dict[str, int]], set[str]]:
    """Workloads, the daemonset share, each node's workload pods and the nodes running do-not-disrupt pods, from the
    last snapshot (one query)."""
    groups: dict[tuple, int] = defaultdict(int)
    placement: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    daemonset_per_node: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    do_not_disrupt_nodes: set[str] = set()
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
        if do_not_disrupt and node_name:
            do_not_disrupt_nodes.add(node_name)
        bare = not owner_kind or owner_kind == "Node"
        owner = f"{namespace}/{owner_kind or 'Pod'}/{owner_name}" if not bare else f"{namespace}/bare-pods"
        spot_ok = not (do_not_disrupt or bare)
        key = (owner, _inflate(cpu_m, headroom_pct), _inflate(memory_mib, headroom_pct), spot_ok)
        groups[key] += 1
        if node_name:
            placement[key][node_name] += 1

    workloads: list[dict[str, Any]] = []
    per_node: dict[str, dict[str, int]] = defaultdict(dict)
    seen: dict[str, int] = defaultdict(int)
    for key, count in sorted(groups.items()):
        owner, cpu_m, memory_mib, spot_ok = key
        seen[owner] += 1
        name = owner if seen[owner] == 1 else f"{owner}#{seen[owner]}"
        workloads.append({"name": name, "count": count, "cpu_m": cpu_m, "memory_mib": memory_mib, "spot_ok": spot_ok})
        for node_name, n in placement[key].items():
            per_node[node_name][name] = n
    if daemonset_per_node:
        cpu, mem, count = max(daemonset_per_node.values(), key=lambda s: (s[0], s[1], s[2]))
        daemonset = {"cpu_m": cpu, "memory_mib": mem, "pods": count}
    else:
        daemonset = {"cpu_m": 0, "memory_mib": 0, "pods": 0}
    return workloads, daemonset, per_node, do_not_disrupt_nodes


def _current_nodes(
    cluster: Cluster,
    *,
    per_node: dict[str, dict[str, int]],
    do_not_disrupt: set[str],
    when_empty: bool,
) -> list[CurrentNode]:
    """The cluster's nodes: running instances joined with the snapshot's nodes by instance id, plus nodes only the
    agent knows (protected). Priced by the catalog when the inventory has no price. Four queries."""
    instances = list(
        Instance.objects.running()
        .filter(cluster=cluster)
        .values_list("instance_id", "instance_type", "zone", "lifecycle", "hourly_price", "asg_name", "node_group")
    )
    kube = list(
        KubeNode.objects.filter(cluster=cluster).values_list(
            "name", "ec2_instance_id", "provider_id", "instance_type", "zone", "capacity_type"
        )
    )
    node_of = {}
    for name, ec2_id, provider_id, *_ in kube:
        instance_id = ec2_id or provider_id.rsplit("/", 1)[-1]
        if instance_id:
            node_of[instance_id] = name
    types = {row[1] for row in instances} | {row[3] for row in kube if row[3]}
    book = pricing.price_book((cluster.region, t) for t in types)

    def price(itype: str, zone: str, capacity: str, recorded: Decimal | None) -> Decimal:
        # The one cost rule (pricing.PriceBook.price), as every other figure of the product.
        found = book.price(itype, zone, capacity, cluster.region, recorded=recorded)
        return found if found is not None else Decimal(0)

    groups = {g.get("name"): g for g in cluster.node_groups or [] if isinstance(g, dict)}
    at_minimum = _node_group_minimums(instances, groups, node_of, per_node)
    nodes: list[CurrentNode] = []
    known = set()
    for instance_id, itype, zone, lifecycle, hourly, asg_name, node_group in instances:
        known.add(instance_id)
        name = node_of.get(instance_id, "")
        pods = dict(per_node.get(name, {})) if name else {}
        if node_group and not asg_name:
            asg_name = next(iter((groups.get(node_group) or {}).get("autoscaling_groups") or []), "")
        why = ""
        if name in do_not_disrupt:
            why = "runs a do-not-disrupt pod"
        elif node_group and not asg_name:
            # Terminated outside its Auto Scaling group, EKS would launch it again.
            why = f"EKS managed node group {node_group}: its Auto Scaling group is unknown"
        elif instance_id in at_minimum:
            why = f"EKS managed node group {node_group} at its minimum size"
        elif when_empty and pods:
            why = "consolidation policy when-empty: runs workload pods"
        nodes.append(
            CurrentNode(
                id=instance_id,
                instance_id=instance_id,
                node_name=name,
                instance_type=itype,
                zone=zone,
                capacity_type="spot" if lifecycle == "spot" else "on-demand",
                price=price(itype, zone, lifecycle, hourly).quantize(SIX_PLACES),
                pods=pods,
                protected=bool(why),
                asg_name=asg_name,
                why_protected=why,
            )
        )
    for name, ec2_id, provider_id, itype, zone, capacity in kube:
        instance_id = ec2_id or provider_id.rsplit("/", 1)[-1]
        if instance_id in known or not itype:
            continue
        capacity = "spot" if capacity == "spot" else "on-demand"
        nodes.append(
            CurrentNode(
                id=f"node:{name}",
                instance_id="",
                node_name=name,
                instance_type=itype,
                zone=zone,
                capacity_type=capacity,
                price=price(itype, zone, capacity, None).quantize(SIX_PLACES),
                pods=dict(per_node.get(name, {})),
                protected=True,
                why_protected="no EC2 instance of this cluster in the inventory",
            )
        )
    return nodes


def _node_group_minimums(
    instances: list[tuple], groups: dict[str, dict], node_of: dict[str, str], per_node: dict[str, dict[str, int]]
) -> set[str]:
    """The instances that keep each managed node group at its ``min_size``: the ones with the most pods."""
    members: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for instance_id, *_, node_group in instances:
        if node_group:
            pods = sum(per_node.get(node_of.get(instance_id, ""), {}).values())
            members[node_group].append((pods, instance_id))
    keep: set[str] = set()
    for node_group, nodes in members.items():
        minimum = int((groups.get(node_group) or {}).get("min_size") or 0)
        keep |= {i for _, i in sorted(nodes, key=lambda n: (-n[0], n[1]))[:minimum]}
    return keep


def current_cost(cluster: Cluster) -> tuple[Decimal, int]:
    """What the cluster's nodes cost now (USD/h, by the one cost rule) and how many there are: its running
    instances and the snapshot's nodes that have no instance row."""
    nodes = _current_nodes(cluster, per_node={}, do_not_disrupt=set(), when_empty=False)
    return sum((n.price for n in nodes), Decimal(0)).quantize(SIX_PLACES), len(nodes)


def has_snapshot(cluster: Cluster) -> bool:
    return AgentStatus.objects.filter(cluster=cluster, last_snapshot_at__isnull=False).exists()


def max_nodes_replaced(policy: ClusterPolicy, *, node_count: int, at: datetime, reason: str) -> int | None:
    """The disruption budgets' allowance at planning time (None: no budget limits it)."""
    decision = disruption.allowed_disruptions(policy.disruption_budgets, node_count=node_count, at=at, reason=reason)
    return None if not decision.limited else int(decision.allowed)


def build_problem(cluster: Cluster, *, now: datetime | None = None) -> ClusterProblem:
    """The optimizer problem (format version 2) for ``cluster``; raises ValidationFailed when it cannot be built
    (no snapshot yet, no template, a template that matches nothing)."""
    now = now or timezone.now()
    if not has_snapshot(cluster):
        raise ValidationFailed(
            "The cluster's agent has not sent a snapshot yet: there are no pods to plan for. Install the agent "
            "(Agents page) and wait for its first snapshot.",
            code="no_snapshot",
        )
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
    if set(template.capacity_types or []) == {"spot"} and not any(o.capacity_type == "spot" for o in offerings):
        # On-demand is a spot-only template's fallback for a pool that lacks capacity, recorded and restored; a plan
        # made of it alone would move the cluster to on-demand for good, silently.
        raise ValidationFailed(
            f"Template {template.name!r} is spot-only but the catalog has no spot price in {cluster.region} for any "
            "of its instance types (refresh spot prices, or widen the template: families, current generation only)."
            " On-demand is its fallback when spot capacity is short, not a plan.",
            fields={"node_template": ["No spot offering in this region."]},
            code="no_spot_offering",
        )
    subnets = (cluster.launch_config or {}).get("subnets") or {}
    if subnets:
        # New nodes go only where the cluster's launch configuration has a subnet.
        offerings = [o for o in offerings if o.zone in subnets]
        if not offerings:
            raise ValidationFailed(
                f"Template {template.name!r} offers nothing in the zones of the cluster's subnets "
                f"({', '.join(sorted(subnets))}).",
                fields={"node_template": ["Matches nothing in the cluster's zones."]},
            )
    problem_offerings = [o.as_problem() for o in offerings]
    for source in hooks.rate_sources():
        source(cluster, problem_offerings)
    workloads, daemonset, per_node, do_not_disrupt = _workloads(cluster, policy.headroom_pct)
    when_empty = policy.consolidation_policy == ClusterPolicy.ConsolidationPolicy.WHEN_EMPTY
    current = _current_nodes(cluster, per_node=per_node, do_not_disrupt=do_not_disrupt, when_empty=when_empty)
    notes = []
    if not workloads:
        notes.append("No workload pods in the agent's last snapshot.")
    reason = "Empty" if when_empty else "Underutilized"
    cap = max_nodes_replaced(policy, node_count=len(current), at=now, reason=reason)
    problem = {
        "version": 2,
        "offerings": problem_offerings,
        "workloads": workloads,
        "daemonset": daemonset,
        "constraints": optimizer_constraints(policy),
        "strategy": STRATEGIES.get(template.strategy, "lowest-price"),
        "current_nodes": [n.as_problem() for n in current],
        "unavailable": ice.unavailable_for(cluster, now=now),
        "disruption": {"min_saving_pct": float(policy.min_saving_pct)}
        | ({"max_nodes_replaced": cap} if cap is not None else {}),
    }
    try:
        # what the planner would refuse, refused here with a 400: a pod that no instance type of the template holds
        # (the agent reports whatever the cluster's pods request), numbers past the planner's limits
        parse_problem(problem)
    except optimizer.ProblemError as exc:
        raise ValidationFailed(
            f"The cluster cannot be planned with template {template.name!r}: {exc}. Widen the template to bigger "
            "instance types, or correct the pod's requests.",
            code="unplannable",
        ) from None
    cost = sum((n.price for n in current), Decimal(0)).quantize(SIX_PLACES)
    return ClusterProblem(
        cluster=cluster,
        policy=policy,
        problem=problem,
        current_hourly_cost=cost,
        current_nodes=current,
        template_name=template.name,
        budget=template.max_hourly_budget,
        fallback_allowed=bool(template.spot_fallback),
        fallback_restore_minutes=template.fallback_restore_minutes,
        labels=dict(template.labels or {}),
        taints=list(template.taints or []),
        notes=notes,
    )


# --- Planning ------------------------------------------------------------------------------------------------------


def run_plan(problem: dict[str, Any]) -> dict[str, Any]:
    """Plan a version-2 problem (the optimizer keeps or removes current nodes, DESIGN.md §6)."""
    return run_planner(problem)


@dataclass
class PlanResult:
    """A plan with its problem and the money around it."""

    built: ClusterProblem
    plan: dict[str, Any]
    planned_hourly_cost: Decimal
    saving_hourly: Decimal
    saving_pct: Decimal
    notes: list[str]

    @property
    def adds(self) -> list[dict[str, Any]]:
        return [n for n in self.plan["nodes"] if n.get("new")]

    @property
    def removes(self) -> list[str]:
        return list(self.plan.get("remove") or [])

    @property
    def changes_anything(self) -> bool:
        return bool(self.adds or self.removes)


def plan_cluster(cluster: Cluster, *, now: datetime | None = None) -> PlanResult:
    """Build the cluster's problem and plan it."""
    return plan_built(build_problem(cluster, now=now))


@functools.cache
def _planner_fingerprint() -> str:
    """The SHA-256 of the planner's own source: a deployment that changes the planner changes every digest."""
    digest = hashlib.sha256()
    for path in sorted(Path(optimizer.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def problem_digest(problem: dict[str, Any]) -> str:
    """A fingerprint of an optimizer problem and of the planner: the planner is deterministic, so two problems with
    the same digest have the same plan (a cached plan of it can stand for planning it again)."""
    text = json.dumps(problem, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(_planner_fingerprint().encode() + text.encode()).hexdigest()


def result_of(built: ClusterProblem, plan: dict[str, Any]) -> PlanResult:
    """The money and the notes around ``plan``, a plan of ``built``."""
    planned = Decimal(plan["hourly_cost"])
    saving = (built.current_hourly_cost - planned).quantize(SIX_PLACES)
    pct = (
        (saving / built.current_hourly_cost * 100).quantize(Decimal("0.01"))
        if built.current_hourly_cost
        else Decimal(0)
    )
    notes = list(built.notes) + list(plan.get("notes") or [])
    if built.budget is not None and planned > built.budget:
        notes.append(f"The plan costs {planned} USD/h, over the template's budget of {built.budget} USD/h.")
    if plan.get("unplaced"):
        notes.append(f"{sum(plan['unplaced'].values())} pod(s) fit no allowed offering and stay unplaced.")
    return PlanResult(
        built=built, plan=plan, planned_hourly_cost=planned, saving_hourly=saving, saving_pct=pct, notes=notes
    )


def plan_built(built: ClusterProblem) -> PlanResult:
    """Plan a built problem."""
    return result_of(built, run_plan(built.problem))


def optimize(cluster: Cluster) -> dict[str, Any]:
    """Plan the cluster and report what would be kept, added and removed, with the costs and the saving."""
    result = plan_cluster(cluster)
    built = result.built
    by_id = {n.id: n for n in built.current_nodes}
    kept = [n for n in result.plan["nodes"] if n.get("keep")]
    return {
        "cluster": {"id": cluster.pk, "name": cluster.name, "region": cluster.region},
        "template": built.template_name,
        "strategy": built.problem["strategy"],
        "constraints": built.problem["constraints"],
        "disruption": built.problem["disruption"],
        "workloads": len(built.problem["workloads"]),
        "pods": sum(w["count"] for w in built.problem["workloads"]),
        "offerings": len(built.problem["offerings"]),
        "current": {"nodes": len(built.current_nodes), "hourly_cost": str(built.current_hourly_cost)},
        "keep": [
            {
                "id": n["keep"],
                "node": by_id[n["keep"]].node_name if n["keep"] in by_id else "",
                "instance_type": n["instance_type"],
                "zone": n["zone"],
                "capacity_type": n["capacity_type"],
                "price": n["price"],
            }
            for n in kept
        ],
        "add": [
            {
                "instance_type": n["instance_type"],
                "zone": n["zone"],
                "capacity_type": n["capacity_type"],
                "price": n["price"],
            }
            for n in result.adds
        ],
        "remove": [
            {
                "id": i,
                "node": by_id[i].node_name if i in by_id else "",
                "instance_type": by_id[i].instance_type if i in by_id else "",
                "zone": by_id[i].zone if i in by_id else "",
                "capacity_type": by_id[i].capacity_type if i in by_id else "",
                "price": str(by_id[i].price) if i in by_id else "",
            }
            for i in result.removes
        ],
        "plan": result.plan,
        "saving": {
            "hourly": str(result.saving_hourly),
            "monthly": str((result.saving_hourly * HOURS_PER_MONTH).quantize(Decimal("0.01"))),
            "percent": str(result.saving_pct) if built.current_hourly_cost else None,
        },
        "notes": result.notes,
    }
