"""Plan quality: random problems give valid plans no dearer than a naive one; small ones are within 3% of the
integer optimum (an exact per-node HiGHS MILP, solved here), also over real catalog offerings; plans are
deterministic; catalog problems of thousands of pods are within 3% of the whole-node LP bound."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer import lower_bound, plan, planner, validate
from tests.optimizer.bench import load_bench

ARCHS = ("x86_64", "arm64")


@st.composite
def problems(
    draw: st.DrawFn, max_offerings: int = 6, max_workloads: int = 4, max_count: int = 12, constrained: bool = True
) -> dict[str, Any]:
    """Random well-formed problems; every workload fits at least one offering of its arch."""
    n_off = draw(st.integers(1, max_offerings))
    offerings = []
    for i in range(n_off):
        offerings.append(
            {
                "instance_type": f"t{i % 3}.s{i}",
                "zone": draw(st.sampled_from("abc")),
                "capacity_type": draw(st.sampled_from(("spot", "on-demand"))),
                "price": str(Decimal(draw(st.integers(5, 400))) / 1000),
                "allocatable_cpu_m": draw(st.sampled_from((1000, 2000, 4000, 8000))),
                "allocatable_memory_mib": draw(st.sampled_from((2000, 4000, 8000, 16000))),
                "max_pods": draw(st.integers(4, 30)),
                "arch": draw(st.sampled_from(ARCHS)),
                "interruption_rate": draw(st.sampled_from((0.025, 0.075, 0.125, 0.225))),
            }
        )
    # identical (type, zone, capacity) keys are malformed: make them unique
    seen = set()
    offerings = [
        o
        for o in offerings
        if (k := (o["instance_type"], o["zone"], o["capacity_type"])) not in seen and not seen.add(k)
    ]
    ds = {
        "cpu_m": draw(st.sampled_from((0, 100, 300))),
        "memory_mib": draw(st.sampled_from((0, 200, 500))),
        "pods": draw(st.integers(0, 3)),
    }
    workloads = []
    for i in range(draw(st.integers(1, max_workloads))):
        w: dict[str, Any] = {
            "name": f"w{i}",
            "count": draw(st.integers(0, max_count)),
            "cpu_m": draw(st.sampled_from((50, 250, 500, 900, 1500))),
            "memory_mib": draw(st.sampled_from((64, 512, 1000, 1500, 3000))),
            "spot_ok": draw(st.booleans()),
        }
        if draw(st.booleans()):
            w["arch"] = [draw(st.sampled_from(ARCHS))]
        fits = [
            o
            for o in offerings
            if o["allocatable_cpu_m"] - ds["cpu_m"] >= w["cpu_m"]
            and o["allocatable_memory_mib"] - ds["memory_mib"] >= w["memory_mib"]
            and o["max_pods"] - ds["pods"] >= 1
            and o["arch"] in w.get("arch", ARCHS)
        ]
        if fits:
            workloads.append(w)
    constraints: dict[str, Any] = {"on_demand_base": 0.0, "max_pool_share": 1.0}
    if constrained:
        constraints = {
            "on_demand_base": draw(st.sampled_from((0.0, 0.2, 0.5))),
            "max_pool_share": draw(st.sampled_from((1.0, 0.5, 0.3))),
        }
        if draw(st.booleans()):
            constraints["max_interruption_rate"] = 0.1
    return {
        "offerings": offerings,
        "workloads": workloads,
        "daemonset": ds,
        "constraints": constraints,
        "strategy": draw(st.sampled_from(("lowest-price", "price-capacity-optimized"))),
    }


def naive_cost(pr: dict[str, Any]) -> Decimal | None:
    """Each workload's on-demand share and the rest alone on the single offering type that is cheapest for it;
    None when that plan places fewer pods than needed (so it is not a comparable plan)."""
    ds = pr["daemonset"]
    cons = pr["constraints"]
    total = Decimal(0)
    for w in pr["workloads"]:
        od = w["count"] if not w["spot_ok"] else math.ceil(round(cons["on_demand_base"] * w["count"], 9))
        for must_od, n in ((True, od), (False, w["count"] - od)):
            if n == 0:
                continue
            best = None
            for o in pr["offerings"]:
                if must_od and o["capacity_type"] == "spot":
                    continue
                if o["capacity_type"] == "spot" and o.get("interruption_rate", 0) > cons.get(
                    "max_interruption_rate", 1.0
                ):
                    continue
                if o["arch"] not in w.get("arch", ARCHS):
                    continue
                per = min(
                    (o["allocatable_cpu_m"] - ds["cpu_m"]) // max(w["cpu_m"], 1),
                    (o["allocatable_memory_mib"] - ds["memory_mib"]) // max(w["memory_mib"], 1),
                    o["max_pods"] - ds["pods"],
                )
                if per >= 1:
                    cost = Decimal(o["price"]) * math.ceil(n / per)
                    best = cost if best is None else min(best, cost)
            if best is None:
                return None
            total += best
    return total


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_random_plans_are_valid(pr: dict[str, Any]) -> None:
    result = plan(pr)
    assert validate(pr, result) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(constrained=False))
def test_random_plans_are_no_dearer_than_one_type_per_workload(pr: dict[str, Any]) -> None:
    pr["strategy"] = "lowest-price"
    result = plan(pr)
    assert validate(pr, result) == []
    naive = naive_cost(pr)
    if naive is not None:
        assert result["unplaced"] == {}
        assert Decimal(result["hourly_cost"]) <= naive


def integer_optimum(pr: dict[str, Any]) -> float:
    """Exact optimum with HiGHS MILP: one binary per potential node, an integer per (workload, node).

    Pool share: an integer c with x_pool <= c and c <= share * S + 1 - 1e-6, i.e. c <= ceil(share * S)."""
    offs, wls, ds, cons = pr["offerings"], pr["workloads"], pr["daemonset"], pr["constraints"]
    total_pods = sum(w["count"] for w in wls)
    bins = [j for j, _ in enumerate(offs) for _ in range(total_pods)]
    nb, nw = len(bins), len(wls)
    nv = nb + nb * nw + 1  # open, q[b, w], c

    def q(b: int, w: int) -> int:
        return nb + b * nw + w

    cost = np.zeros(nv)
    lb, ub = np.zeros(nv), np.full(nv, np.inf)
    ub[:nb] = 1
    rows, lo, hi = [], [], []

    def row(coefs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(nv)
        for k, v in coefs.items():
            r[k] += v
        rows.append(r)
        lo.append(low)
        hi.append(high)

    for b, j in enumerate(bins):
        o = offs[j]
        cost[b] = float(o["price"])
        spot = o["capacity_type"] == "spot"
        max_rate = cons.get("max_interruption_rate")
        if spot and max_rate is not None and o.get("interruption_rate", 0.0) > max_rate:
            ub[b] = 0  # pools above the interruption limit are not used
        for w, wl in enumerate(wls):
            if o["arch"] not in wl.get("arch", ARCHS) or (spot and not wl["spot_ok"]):
                ub[q(b, w)] = 0
        for key, cap, d in (
            ("cpu_m", "allocatable_cpu_m", "cpu_m"),
            ("memory_mib", "allocatable_memory_mib", "memory_mib"),
            (None, "max_pods", "pods"),
        ):
            coefs = {q(b, w): float(wl[key]) if key else 1.0 for w, wl in enumerate(wls)}
            coefs[b] = -(o[cap] - ds[d])
            row(coefs, -np.inf, 0)
        if b + 1 < nb and bins[b + 1] == j:  # symmetry: open nodes of a type in order
            row({b: 1, b + 1: -1}, 0, np.inf)
    for w, wl in enumerate(wls):
        row({q(b, w): 1 for b in range(nb)}, wl["count"], wl["count"])
        need = wl["count"] if not wl["spot_ok"] else math.ceil(round(cons["on_demand_base"] * wl["count"], 9))
        row({q(b, w): 1 for b, j in enumerate(bins) if offs[j]["capacity_type"] == "on-demand"}, need, np.inf)
    share = cons["max_pool_share"]
    spot_bins = [b for b, j in enumerate(bins) if offs[j]["capacity_type"] == "spot"]
    for j, o in enumerate(offs):
        if o["capacity_type"] != "spot":
            continue
        coefs = {b: 1.0 for b, jj in enumerate(bins) if jj == j}
        coefs[nv - 1] = -1.0
        row(coefs, -np.inf, 0)  # x_pool <= c
    coefs = {b: -share for b in spot_bins}
    coefs[nv - 1] = 1.0
    row(coefs, -np.inf, 1 - 1e-6)  # c <= share * S + 1 - eps
    res = milp(
        cost,
        constraints=LinearConstraint(np.array(rows), lo, hi),
        integrality=np.ones(nv),
        bounds=Bounds(lb, ub),
        options={"time_limit": 60},
    )
    assert res.status == 0, res.message
    return float(res.fun)


SMALL_CASES = [
    # (offerings as (ctype, price, cpu, mem, pods, arch), workloads as (count, cpu, mem, spot_ok, arch), ds, cons)
    (
        [
            ("spot", "0.04", 2000, 8000, 20, "x86_64"),
            ("spot", "0.07", 4000, 16000, 40, "x86_64"),
            ("on-demand", "0.10", 2000, 8000, 20, "x86_64"),
            ("on-demand", "0.19", 4000, 16000, 40, "x86_64"),
        ],
        [(5, 700, 1000, True, None), (3, 300, 3000, True, None), (2, 500, 500, False, None)],
        (100, 300, 1),
        {},
    ),
    (
        [
            ("spot", "0.03", 2000, 4000, 10, "arm64"),
            ("spot", "0.05", 2000, 8000, 10, "x86_64"),
            ("on-demand", "0.08", 4000, 8000, 20, "arm64"),
            ("on-demand", "0.09", 2000, 8000, 20, "x86_64"),
        ],
        [(6, 600, 1200, True, None), (2, 900, 900, True, ["x86_64"]), (3, 250, 2500, True, ["arm64"])],
        (50, 100, 2),
        {"on_demand_base": 0.34},
    ),
    (
        [
            ("spot", "0.02", 1000, 2000, 8, "x86_64"),
            ("spot", "0.025", 1000, 2000, 8, "x86_64"),
            ("spot", "0.09", 4000, 8000, 30, "x86_64"),
            ("on-demand", "0.05", 1000, 2000, 8, "x86_64"),
        ],
        [(7, 450, 700, True, None), (1, 900, 1800, True, None)],
        (0, 0, 0),
        {"max_pool_share": 0.5},
    ),
    (
        # like bench's small-constrained, scaled down: packing the aggregated MILP's node counts used to land 37%
        # above the optimum here; the per-node packing MILP reaches it
        [
            ("spot", "0.0481", 2000, 16000, 8, "x86_64"),
            ("spot", "0.0317", 2000, 4000, 17, "x86_64"),
            ("on-demand", "0.2195", 4000, 8000, 29, "x86_64"),
        ],
        [(4, 250, 512, True, None), (5, 500, 3000, True, None), (2, 1500, 3000, True, None)],
        (150, 300, 3),
        {"on_demand_base": 0.2, "max_pool_share": 0.3},
    ),
]


def small_problem(case: tuple[Any, ...]) -> dict[str, Any]:
    offs, wls, ds, cons = case
    return {
        "offerings": [
            {
                "instance_type": f"i{k}.large",
                "zone": "z",
                "capacity_type": c,
                "price": p,
                "allocatable_cpu_m": cpu,
                "allocatable_memory_mib": mem,
                "max_pods": pods,
                "arch": a,
            }
            for k, (c, p, cpu, mem, pods, a) in enumerate(offs)
        ],
        "workloads": [
            {"name": f"w{k}", "count": n, "cpu_m": cpu, "memory_mib": mem, "spot_ok": ok, **({"arch": a} if a else {})}
            for k, (n, cpu, mem, ok, a) in enumerate(wls)
        ],
        "daemonset": {"cpu_m": ds[0], "memory_mib": ds[1], "pods": ds[2]},
        "constraints": {"on_demand_base": 0.0, "max_pool_share": 1.0, **cons},
    }


@pytest.mark.parametrize("case", SMALL_CASES, ids=["mixed", "arch-and-base", "pool-share", "base-and-pool-share"])
def test_small_problem_within_3_percent_of_integer_optimum(case: tuple[Any, ...]) -> None:
    pr = small_problem(case)
    result = plan(pr)
    assert validate(pr, result) == []
    assert result["unplaced"] == {}
    optimum = integer_optimum(pr)
    assert lower_bound(pr) <= optimum + 1e-6
    assert float(result["hourly_cost"]) <= 1.03 * optimum + 1e-9


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_offerings=3, max_workloads=2, max_count=5))
def test_random_small_problems_within_3_percent_of_integer_optimum(pr: dict[str, Any]) -> None:
    pr["strategy"] = "lowest-price"
    result = plan(pr)
    if result["unplaced"] or not any(w["count"] for w in pr["workloads"]):
        return  # the MILP below needs every pod placed; unplaced reporting is tested elsewhere
    optimum = integer_optimum(pr)
    assert lower_bound(pr) <= optimum + 1e-6
    assert float(result["hourly_cost"]) <= 1.03 * optimum + 1e-9


@pytest.mark.parametrize(("mix", "pods", "seed"), [("memory", 12, 11), ("mixed", 14, 12), ("constrained", 10, 13)])
def test_small_catalog_problem_within_3_percent_of_integer_optimum(mix: str, pods: int, seed: int) -> None:
    # real offerings: a random dozen of the bundled catalog, solved exactly node by node here
    bench = load_bench()
    shape = next(m for m in bench.MIXES if m.name == mix)
    pr = bench.make_problem(shape, pods, (2, 3), (12, 12), seed)
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    optimum = integer_optimum(pr)
    assert float(result["hourly_cost"]) <= 1.03 * optimum + 1e-9


@pytest.mark.parametrize(
    ("mix", "pods", "offerings", "seed"),
    [
        ("web", 20, 14, 41),
        ("compute", 16, 12, 42),
        ("big-pods", 14, 12, 43),
        ("memory", 16, 14, 44),
        ("mixed", 18, 12, 45),
        ("constrained", 16, 14, 46),
        ("constrained", 18, 12, 47),
        ("constrained", 14, 16, 48),
    ],
)
def test_generated_problem_within_3_percent_of_exact_optimum(mix: str, pods: int, offerings: int, seed: int) -> None:
    # every workload mix of the benchmark, drawn afresh: the plan (node patterns and all) against the exact
    # node-by-node optimum solved here
    bench = load_bench()
    shape = next(m for m in bench.MIXES if m.name == mix)
    pr = bench.make_problem(shape, pods, (2, 4), (offerings, offerings), seed)
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    optimum = integer_optimum(pr)
    assert float(result["hourly_cost"]) <= 1.03 * optimum + 1e-9


@pytest.mark.parametrize(("share", "base", "seed"), [(0.3, 0.2, 51), (0.5, 0.0, 52), (0.25, 0.5, 53)])
def test_pool_capped_problem_within_3_percent_of_exact_optimum(share: float, base: float, seed: int) -> None:
    # pool caps that bind: a dozen catalog offerings, the spot pools capped at a quarter to a half of the spot nodes
    bench = load_bench()
    shape = next(m for m in bench.MIXES if m.name == "mixed")
    pr = bench.make_problem(shape, 16, (2, 4), (12, 12), seed)
    pr["constraints"] = {"on_demand_base": base, "max_pool_share": share}
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    optimum = integer_optimum(pr)
    assert float(result["hourly_cost"]) <= 1.03 * optimum + 1e-9


@pytest.mark.parametrize(
    ("mix", "pods", "seed", "within", "setting", "before"),
    [
        # the benchmark's pool-capped problem (share 0.3, on-demand base 0.2): the planner's whole-pod program stops
        # at its node limit 1.3% above its optimum with 43 nodes, too many to pack node by node; run again with more
        # nodes and packed by a bigger per-node program: 5.8905 -> 5.8194 $/h
        ("constrained", 200, 0, 1.03, "SMALL_PACK_VARS", "PACK_VARS"),
        # a seed no setting was chosen on: the whole-pod optimum's 7 nodes packed within 200 branch-and-bound nodes
        # came out 3.7% dearer than that optimum; within SMALL_PACK_NODES, 0.2%
        ("big-pods", 40, 3, 1.01, "SMALL_PACK_NODES", "PACK_NODES"),
    ],
)
def test_small_plans_search_on_until_within_reach_of_the_whole_pod_optimum(
    mix: str, pods: int, seed: int, within: float, setting: str, before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Problems drawn like the benchmark's small ones, against the whole-pod program's optimum (integer pods per
    offering; HiGHS proves it in seconds), a lower bound on every plan; with the setting as it was before, the plan
    is more than 3% above it."""
    bench = load_bench()
    small = next(s for s in bench.SIZES if s.name == "small")
    pr = bench.make_problem(next(m for m in bench.MIXES if m.name == mix), pods, small.workloads, small.offerings, seed)
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    bound, proven = bench.whole_node_bound(pr, 120, whole_pods=True)
    assert proven
    assert float(result["hourly_cost"]) <= within * bound
    monkeypatch.setattr(planner, setting, getattr(planner, before))
    assert float(plan(pr)["hourly_cost"]) > 1.03 * bound


def test_small_plans_are_deterministic_across_mixes() -> None:
    # the small path's gap tests and integer programs decide by node and round counts only
    bench = load_bench()
    for mix in bench.MIXES:
        pr = bench.make_problem(mix, 40, (4, 12), (150, 300), 61)
        assert plan(pr) == plan(json.loads(json.dumps(pr)))


def test_plans_are_deterministic() -> None:
    bench = load_bench()
    # small (node patterns with the integer programs), pool-capped mid-sized, mid-sized with node patterns
    cases = (("mixed", 60, (200, 200)), ("constrained", 3_000, (2_000, 2_000)), ("memory", 1_500, (2_000, 2_000)))
    for mix, pods, offerings in cases:
        pr = bench.make_problem(next(m for m in bench.MIXES if m.name == mix), pods, (10, 30), offerings, 21)
        assert plan(pr) == plan(json.loads(json.dumps(pr)))


@pytest.mark.parametrize(("mix", "pods", "seed"), [("memory", 2_000, 31), ("compute", 3_000, 32), ("web", 6_000, 33)])
def test_catalog_problem_within_3_percent_of_whole_node_lp_bound(mix: str, pods: int, seed: int) -> None:
    bench = load_bench()
    pr = bench.make_problem(next(m for m in bench.MIXES if m.name == mix), pods, (40, 80), (2_000, 2_600), seed)
    result = plan(pr)
    assert validate(pr, result) == []
    assert result["unplaced"] == {}
    bound, _ = bench.whole_node_bound(pr, 60, relax=True)
    assert bound <= lower_bound(pr) * 1.2  # the same pods, the same kind of bound
    assert float(result["hourly_cost"]) <= 1.03 * bound


def test_few_nodes_of_small_pods_get_the_search_of_small_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    # 600 pods of 10-250 m CPU, whose nodes run out of pod slots with their CPU and memory, on about ten nodes: one
    # node is a tenth of the cost. The whole-pod program over every undominated offering, its node counts packed node
    # by node (FEW_NODES_SEARCH), reaches the whole-pod optimum (a bound on every plan); without it the plan of this
    # size costs 5% more
    bench = load_bench()
    tiny = bench.Mix("tiny", (10, 250), (0.5, 8), tail=1.2)
    pr = bench.make_problem(tiny, 600, (8, 20), (150, 400), 0)
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    bound, optimal = bench.whole_node_bound(pr, 60, whole_pods=True)
    assert optimal
    assert float(result["hourly_cost"]) <= bound * (1 + 1e-6)
    monkeypatch.setattr(planner, "FEW_NODES_SEARCH", False)
    without = plan(pr)
    assert validate(pr, without) == []
    assert float(without["hourly_cost"]) > 1.04 * float(result["hourly_cost"])


def test_node_patterns_close_the_packing_gap_on_big_memory_pods() -> None:
    # 200 memory-heavy pods over 633 catalog offerings, 1-2 pods a node: pooling pods per offering (the whole-node
    # program) packs them 4% above the whole-pod bound; the node patterns come within 2% of it
    bench = load_bench()
    pr = bench.make_problem(next(m for m in bench.MIXES if m.name == "memory"), 200, (4, 20), (150, 800), 0)
    result = plan(pr)
    assert validate(pr, result) == [] and result["unplaced"] == {}
    bound, _ = bench.whole_node_bound(pr, 60, whole_pods=True)
    assert float(result["hourly_cost"]) <= 1.02 * bound


def test_bench_exact_check_packs_only_what_fits() -> None:
    # the benchmark calls the whole-pod optimum exact only when its pods pack node by node
    bench = load_bench()
    cap = np.array([1000, 1000, 10])
    assert not bench._packs(np.array([[600, 100, 1]]), np.array([3]), 2, cap, 5)
    assert bench._packs(np.array([[600, 100, 1], [400, 100, 1]]), np.array([2, 2]), 2, cap, 5)
    # first-fit decreasing fails here, the feasibility program finds {500, 250, 250} and {400, 300, 300}
    sizes = np.array([[500, 1, 1], [400, 1, 1], [300, 1, 1], [250, 1, 1]])
    assert bench._packs(sizes, np.array([1, 1, 2, 2]), 2, cap, 5)
    assert not bench._packs(sizes, np.array([1, 1, 2, 3]), 2, cap, 5)
