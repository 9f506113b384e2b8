"""Planning again after insufficient capacity: the optimizer places the pods of the nodes that could not be launched.

The problem (format version 2) is the job's plan as it now stands: the nodes it keeps and the new nodes already
launched or still to be launched by its other steps are *protected current nodes* carrying the pods the plan gave
them; the pods of the nodes that could not be launched are left to place; the ICE cache is ``unavailable``. The
optimizer then chooses the cheapest new nodes for them (or free room on the nodes that stay) under the template's
constraints, as it does for any plan: another spot pool first, on-demand only when no spot pool can take them and
the template's offerings include on-demand (its ``spot_fallback``). What it cannot place stays ``unplaced``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from optimizer.problem import ProblemError

from .. import ice
from ..models import JobStep, OptimizationJob
from ..planning import build_problem, run_plan

# What a job keeps of its problem to plan again without rebuilding it (the snapshot may have moved on since).
PROBLEM_PARTS = ("offerings", "workloads", "daemonset", "constraints", "strategy")


def offering_key(o: dict) -> tuple[str, str, str]:
    return (o["instance_type"], o["zone"], o["capacity_type"])


def step_nodes(job: OptimizationJob, step: JobStep) -> list[dict[str, int]]:
    """The pods of each node a launch step launches (one dict per node, in order)."""
    count = int(step.params.get("count") or 0)
    pods = step.params.get("pods")
    if pods is None:  # laid out before steps carried their pods: the plan's new nodes of the step's offering
        key = offering_key(step.params["offering"])
        pods = [n.get("pods") or {} for n in job.plan.get("nodes", []) if n.get("new") and offering_key(n) == key]
    return [dict(p) for p in list(pods)[:count]] + [{} for _ in range(count - len(pods))]


@dataclass
class Replan:
    """The optimizer's answer for the nodes that could not be launched."""

    groups: list[dict[str, Any]]  # {"offering", "count", "pods": [...]} per new offering
    unplaced: dict[str, int]
    short_nodes: int
    notes: list[str] = field(default_factory=list)

    @property
    def new_nodes(self) -> int:
        return sum(g["count"] for g in self.groups)

    def capacity_types(self) -> set[str]:
        return {g["offering"]["capacity_type"] for g in self.groups}


def _problem_parts(job: OptimizationJob, now: datetime) -> dict[str, Any]:
    if all(k in job.plan for k in PROBLEM_PARTS):
        return {k: job.plan[k] for k in PROBLEM_PARTS}
    built = build_problem(job.cluster, now=now)  # a job laid out before it kept its problem
    return {k: built.problem[k] for k in PROBLEM_PARTS}


def replan_shortfall(
    *, job: OptimizationJob, steps: list[JobStep], failed: JobStep, launched: int, now: datetime
) -> Replan:
    """Plan again the ``count - launched`` nodes of launch step ``failed`` that could not be launched. Raises
    ProblemError when the problem cannot be built (a workload the job no longer knows)."""
    parts = _problem_parts(job, now)
    current: list[dict[str, Any]] = []

    def add(node_id: str, o: dict, pods: dict[str, int]) -> None:
        current.append(
            {
                "id": node_id,
                "instance_type": o["instance_type"],
                "zone": o["zone"],
                "capacity_type": o["capacity_type"],
                "price": str(o.get("price") or "0"),
                "pods": {k: int(v) for k, v in pods.items() if int(v)},
                "protected": True,
            }
        )

    for node in job.plan.get("nodes", []):
        if node.get("keep"):
            add(str(node["keep"]), node, node.get("pods") or {})
    short: list[dict[str, int]] = []
    for step in steps:
        if step.kind != JobStep.Kind.LAUNCH:
            continue
        nodes = step_nodes(job, step)
        if step.pk == failed.pk:
            short = nodes[launched:]
            nodes = nodes[:launched]
        elif step.state not in (JobStep.State.PENDING, JobStep.State.RUNNING):
            nodes = nodes[: len(step.result.get("instance_ids", []))]
        for i, pods in enumerate(nodes):
            add(f"step-{step.pk}-{i}", step.params["offering"], pods)

    shapes = {w["name"]: w for w in parts["workloads"]}
    empty = sum(1 for pods in short if not pods)
    if empty:
        # A launch that did not say which pods its nodes were for (a replacement of a node): plan for nodes at
        # least as large as the one that could not be launched, on spot when it was spot.
        offering = failed.params["offering"]
        ds = parts.get("daemonset") or {}
        name = f"capacity-of-step-{failed.pk}"
        shapes[name] = {
            "name": name,
            "count": empty,
            "cpu_m": max(1, int(offering.get("allocatable_cpu_m") or 1) - int(ds.get("cpu_m") or 0)),
            "memory_mib": max(1, int(offering.get("allocatable_memory_mib") or 1) - int(ds.get("memory_mib") or 0)),
            "spot_ok": offering["capacity_type"] == "spot",
        }
        short = [pods or {name: 1} for pods in short]
    totals: dict[str, int] = defaultdict(int)
    for pods in [*(n["pods"] for n in current), *short]:
        for name, count in pods.items():
            totals[name] += int(count)
    unknown = sorted(set(totals) - set(shapes))
    if unknown:
        raise ProblemError(f"the plan's workloads are no longer known: {', '.join(unknown)}")
    problem = {
        "version": 2,
        "offerings": parts["offerings"],
        "workloads": [{**shapes[name], "count": n} for name, n in sorted(totals.items()) if n > 0],
        "daemonset": parts["daemonset"],
        "constraints": parts["constraints"],
        "strategy": parts["strategy"],
        "current_nodes": current,
        "unavailable": ice.unavailable_for(job.cluster, now=now),
        "disruption": {"min_saving_pct": 0.0},
    }
    plan = run_plan(problem)
    by_key = {offering_key(o): o for o in parts["offerings"]}
    grouped: dict[tuple, list[dict[str, int]]] = defaultdict(list)
    for node in plan["nodes"]:
        if node.get("new"):
            grouped[offering_key(node)].append(dict(node.get("pods") or {}))
    groups = [
        {
            "offering": by_key.get(key, {**dict(zip(("instance_type", "zone", "capacity_type"), key, strict=True))}),
            "count": len(pods),
            "pods": pods,
        }
        for key, pods in sorted(grouped.items())
    ]
    unplaced = {k: int(v) for k, v in (plan.get("unplaced") or {}).items() if int(v)}
    return Replan(groups=groups, unplaced=unplaced, short_nodes=len(short), notes=list(plan.get("notes") or []))


def plan_hourly_cost(nodes: list[dict]) -> Decimal:
    return sum((Decimal(str(n.get("price") or 0)) for n in nodes), Decimal(0))
