"""The benchmark's per-node bound (`bench/optimizer.py`, `node_bound`) against the exact per-node model, solved here by
enumerating every pattern of a few small catalog problems: it must never exceed the exact optimum (it is what the
benchmark calls a proven lower bound), it must reach the pattern LP's optimum when it converges (and so beat the
whole-node LP relaxation, which pools pods), and a bound from a run stopped early must stay below that LP."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from optimizer import plan, validate
from optimizer.model import build_classes, compatibility
from optimizer.problem import parse_problem
from tests.optimizer.bench import load_bench


def pattern_model(pr: dict[str, Any], offerings: np.ndarray | None, integer: bool) -> float:
    """The per-node model over every pattern of the given offerings (all when None), by enumeration.

    With `integer`, the exact per-node optimum: integer nodes per pattern and the exact pool cap (an integer c with
    nodes_j <= c <= share * S + 1 - 1e-6, i.e. c <= ceil(share * S)). Without, the bound's LP (pool rows
    nodes_j - share * S <= 1)."""
    p = parse_problem(pr)
    cl = build_classes(p)
    compat = compatibility(p, cl)
    js = np.flatnonzero(compat.any(axis=0)) if offerings is None else offerings
    rows = np.flatnonzero(compat[:, js].any(axis=1))
    size, need = cl.size[rows], cl.count[rows]
    free = p.free_capacity()
    cols: list[tuple[int, np.ndarray]] = []
    for j in js.tolist():
        per = (free[j][None, :] // size).min(axis=1)
        kmax = np.where(compat[rows, j], np.minimum(per, need), 0)
        for a in itertools.product(*(range(k + 1) for k in kmax.tolist())):
            v = np.array(a, dtype=np.int64)
            if (v.any() or not integer) and (v @ size <= free[j]).all():
                cols.append((j, v))
    n_p, n_d = len(cols), len(rows)
    share = p.max_pool_share
    spot_js = sorted({j for j, _ in cols if p.spot[j]}) if share < 1.0 else []
    n_var = n_p + (1 if spot_js and integer else 0)
    a_cover = np.zeros((n_d, n_var))
    for k, (_, v) in enumerate(cols):
        a_cover[:, k] = v
    mats, lo, hi = [a_cover], [need.astype(float)], [np.full(n_d, np.inf)]
    if spot_js:
        is_spot = np.array([bool(p.spot[j]) for j, _ in cols] + [False] * (n_var - n_p))
        on = np.array([[j == i for j, _ in cols] + [False] * (n_var - n_p) for i in spot_js], dtype=float)
        if integer:  # nodes_j - c <= 0, c - share * S <= 1 - 1e-6
            c_col = np.zeros((len(spot_js), n_var))
            c_col[:, -1] = -1.0
            mats += [on + c_col, (np.eye(1, n_var, n_var - 1) - share * is_spot)[None, 0]]
            lo += [np.full(len(spot_js), -np.inf), np.full(1, -np.inf)]
            hi += [np.zeros(len(spot_js)), np.full(1, 1 - 1e-6)]
        else:
            mats.append(on - share * is_spot[None, :])
            lo.append(np.full(len(spot_js), -np.inf))
            hi.append(np.ones(len(spot_js)))
    cost = np.array([float(p.price_f[j]) for j, _ in cols] + [0.0] * (n_var - n_p))
    res = milp(
        cost,
        constraints=LinearConstraint(np.vstack(mats), np.concatenate(lo), np.concatenate(hi)),
        integrality=np.ones(n_var) if integer else np.zeros(n_var),
        bounds=Bounds(np.zeros(n_var), np.full(n_var, np.inf)),
        options={"time_limit": 60},
    )
    assert res.status == 0, res.message
    return float(res.fun)


CASES = [
    ("constrained", 10, 51),
    ("constrained", 12, 52),
    ("mixed", 12, 53),
    ("big-pods", 10, 54),
    ("memory", 12, 57),
    ("web", 14, 56),
]


@pytest.mark.parametrize(("mix", "pods", "seed"), CASES)
def test_per_node_bound_is_proven_and_reaches_the_pattern_lp(mix: str, pods: int, seed: int) -> None:
    bench = load_bench()
    pr = bench.make_problem(next(m for m in bench.MIXES if m.name == mix), pods, (2, 3), (10, 10), seed)
    p = parse_problem(pr)
    kept = np.flatnonzero(compatibility(p, build_classes(p)).any(axis=0) & bench._undominated(p))
    optimum = pattern_model(pr, None, integer=True)  # every offering, exact pool cap
    lp = pattern_model(pr, kept, integer=False)
    nb = bench.node_bound(pr, 30.0)
    assert nb.converged and nb.theta >= 1.0
    assert nb.bound <= optimum * (1 + 1e-9) + 1e-9
    assert nb.bound <= lp * (1 + 1e-9) + 1e-9
    assert nb.bound >= lp / (1 + bench.KNAPSACK_GAP) - 1e-9
    whole_node_lp, _ = bench.whole_node_bound(pr, 10.0, relax=True)
    assert nb.bound >= whole_node_lp * (1 - 1e-6) - 1e-9
    result = plan(pr)  # the bound is below what the planner finds, too
    assert validate(pr, result) == [] and nb.bound <= float(result["hourly_cost"]) + 1e-9


def pool_capped(share: float, base: float) -> dict[str, Any]:
    """One node type in four spot zones (prices apart) and on-demand, a bigger one in two spot zones: the pool cap
    binds (the pattern LP rises from 0.2775 without it to 0.2877 at 0.3)."""
    small = [("spot", z, pr) for z, pr in zip("abcd", ("0.030", "0.034", "0.038", "0.045"), strict=True)]
    small.append(("on-demand", "a", "0.100"))

    def node(itype: str, zone: str, ctype: str, price: str, k: int) -> dict[str, Any]:
        return {
            "instance_type": itype,
            "zone": zone,
            "capacity_type": ctype,
            "price": price,
            "allocatable_cpu_m": 2000 * k,
            "allocatable_memory_mib": 8000 * k,
            "max_pods": 20 * k,
            "arch": "x86_64",
        }

    return {
        "offerings": [node("m.large", z, c, pr, 1) for c, z, pr in small]
        + [node("m.xlarge", z, "spot", pr, 2) for z, pr in zip("ab", ("0.07", "0.075"), strict=True)],
        "workloads": [
            {"name": "a", "count": 15, "cpu_m": 900, "memory_mib": 1000, "spot_ok": True},
            {"name": "b", "count": 7, "cpu_m": 400, "memory_mib": 3000, "spot_ok": True},
        ],
        "daemonset": {"cpu_m": 100, "memory_mib": 200, "pods": 1},
        "constraints": {"on_demand_base": base, "max_pool_share": share},
    }


@pytest.mark.parametrize(("share", "base"), [(0.3, 0.0), (0.3, 0.2), (0.5, 0.0), (0.2, 0.0)])
def test_per_node_bound_under_a_binding_pool_cap(share: float, base: float) -> None:
    bench = load_bench()
    pr = pool_capped(share, base)
    p = parse_problem(pr)
    kept = np.flatnonzero(compatibility(p, build_classes(p)).any(axis=0) & bench._undominated(p))
    optimum = pattern_model(pr, None, integer=True)
    lp = pattern_model(pr, kept, integer=False)
    assert lp > pattern_model(pool_capped(1.0, base), None, integer=False) + 1e-3  # the cap binds
    nb = bench.node_bound(pr, 30.0)
    assert nb.converged
    assert lp / (1 + bench.KNAPSACK_GAP) - 1e-9 <= nb.bound <= min(lp, optimum) * (1 + 1e-9) + 1e-9
    assert nb.bound >= bench.whole_node_bound(pr, 10.0, relax=True)[0] * (1 - 1e-6) - 1e-9


def test_per_node_bound_stopped_early_stays_below_the_pattern_lp() -> None:
    bench = load_bench()
    pr = bench.make_problem(next(m for m in bench.MIXES if m.name == "constrained"), 12, (2, 3), (10, 10), 52)
    p = parse_problem(pr)
    kept = np.flatnonzero(compatibility(p, build_classes(p)).any(axis=0) & bench._undominated(p))
    lp = pattern_model(pr, kept, integer=False)
    for rounds in (1, 2, 3):
        nb = bench.node_bound(pr, 30.0, max_rounds=rounds)
        assert nb.rounds <= rounds and nb.theta >= 1.0 and math.isfinite(nb.bound)
        assert 0.0 <= nb.bound <= lp * (1 + 1e-9) + 1e-9
    assert not bench.node_bound(pr, 30.0, max_rounds=1).converged
