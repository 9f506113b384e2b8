"""Spot Optimizer planner: the cheapest safe node set for a cluster's pods (DESIGN.md §6, format version 1).

Pure Python over numpy/scipy (HiGHS); imports no Django. Public API::

    from optimizer import plan, validate, lower_bound, ProblemError

``plan(problem) -> plan`` places every workload's replicas on nodes built from the problem's offerings;
``validate(problem, plan) -> list[str]`` re-checks a plan independently; ``lower_bound(problem) -> float`` is the
LP-relaxation bound (HiGHS) a plan's cost is measured against. Money leaves the planner as 6-place decimal strings,
summed exactly with `decimal.Decimal`.

Algorithm
---------
1. Pods are merged into *demand classes* (same CPU/memory request, arch list and on-demand requirement); each
   workload gives at most two (its ``ceil(on_demand_base * count)`` on-demand share, and the rest).
2. A compatibility matrix (class x offering) encodes arch, capacity type, the interruption limit and whether one pod
   fits next to the daemonset. Offerings with the same compatibility column form a *fit group*.
3. LP 1 (HiGHS, `optimizer.model`): node counts per offering against aggregated cpu/memory/pod-slot capacity per fit
   group, with the pool-share cap ``x_pool <= share * spot_nodes + 1``. The same LP, priced at list prices, is
   `lower_bound`. Dominated offerings simply get x = 0. Above 8,000 pods with many classes (more than 20,000
   class x group columns) it starts from each class's cheapest groups and prices the others in (the same optimum).
4. LP 2 over the offerings LP 1 chose (plus each class's cheapest per-pod offering): pods per (class, offering).
5. Rounding (largest remainder), then packing per offering: ``n = ceil(max_r need_r / cap_r)`` nodes each taking
   ``floor(count / n)`` pods of each class, the remainders spread to the emptiest nodes, biggest pods first.
6. Repair: leftovers first-fit into free room, then new nodes chosen by pod value absorbed per dollar.
   Small problems (and mid-sized ones without a pool cap) also get a plan from the per-node model over generated
   node patterns (`optimizer.patterns`, column generation and an integer program in HiGHS); the cheapest plan wins.
   At 201-3,000 pods the patterns run twice, the second time with broader pricing from the first one's plan.
   Plans of 201-3,000 pods without a pool cap on few nodes (tens, of small pods) also get the small problems'
   whole-pod integer program over every undominated offering, its node counts packed node by node.
7. Consolidation: empty under-filled nodes into others' free room; move each node to the cheapest offering that
   holds its pods; then spread spot nodes so no pool exceeds ``ceil(max_pool_share * spot_nodes)`` (cheapest other
   pool, else on-demand, else re-placed on on-demand, else reported unplaced).
8. Plans of 201-8,000 pods then re-plan their least-filled nodes (a few, a few dozen pods) by the exact path of
   small problems, and take that when the merged plan, pools spread, is cheaper (see optimizer/README.md).
9. Splitting: a few under-filled nodes (the most money idle first) are each replaced by two smaller nodes when two
   hold their pods for less (the first filled biggest pods first on every undominated offering, the rest on the
   cheapest offering that holds it), pools spread again; the plan is kept only if cheaper.

Strategies
----------
``lowest-price`` (default) minimises list prices. ``price-capacity-optimized`` minimises
``effective_price = price * (1 + 2.0 * interruption_rate)`` for spot offerings (on-demand: ``price``), so a pool
interrupted 20% of the time must be 40% cheaper to win. The plan still reports list prices. A missing
``interruption_rate`` counts as 0.

Scaling
-------
Work is O(D * J) for the compatibility matrix (D distinct pod shapes <= 2 x workloads, J offerings), one sparse LP
with J + D*G columns (G fit groups, usually a few dozen) that HiGHS solves in near-linear time in practice, O(N * J)
for downsizing N nodes, and O(N * D) for packing; the pod count enters only through N (nodes grow linearly with
pods) and never through a per-pod loop. 20,000 pods / 200 workloads / 2,000 offerings plan in well under a second
on 2 cores (see README.md for measurements).
"""

from .incremental import plan
from .planner import lower_bound
from .problem import ProblemError
from .validate import validate

#: The newest problem/plan format `plan` speaks; version 1 problems (no ``version`` field) still get version-1 plans.
FORMAT_VERSION = 2
FORMAT_VERSIONS = (1, 2)

__all__ = ["FORMAT_VERSION", "FORMAT_VERSIONS", "ProblemError", "lower_bound", "plan", "validate"]
