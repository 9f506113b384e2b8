"""Benchmark of the planner's cost and time on problems from the bundled AWS catalog (``python bench/optimizer.py``).

Offerings come from ``pricing/data/aws``: instance specs (vCPU, memory, arch, ENIs) sized with the EKS reservations
of `optimizer.catalog`, us-east-1 on-demand prices, us-east-1 spot prices of 2022-05-31 per AZ id mapped to zone
names, and interruption rates from the spot advisor bucket midpoints. Workloads are drawn with fixed seeds from
several distinct *mixes* (request sizes, memory per CPU, replica tails, arch pinning, spot eligibility, constraints).

Every plan is checked with `optimizer.validate` and compared with the *whole-node bound*: the dual bound HiGHS proves
(time-capped) for the integer program with a whole number of nodes per offering and each offering's pods pooled,
a lower bound on the cost of every valid plan. The 20,000-pod problems are compared with that program's LP
relaxation. Above the small size class, plans are also compared with the *per-node bound* (`node_bound`): the LP
relaxation of the per-node pattern model, proven by column generation with exact pricing and the Farley bound.
Quality is measured on list prices with the ``lowest-price`` strategy.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from highspy import kHighsInf as _INF
from highspy._core import _Highs  # the bare solver: the `Highs` wrapper prints a banner
from scipy.optimize import Bounds, LinearConstraint, milp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from optimizer import lower_bound, plan, validate
from optimizer.catalog import INTERRUPTION_MIDPOINTS, offering
from optimizer.model import build_classes, compatibility
from optimizer.problem import parse_problem

DATA = ROOT / "pricing" / "data" / "aws"
REGION = "us-east-1"


@cache
def catalog() -> list[dict[str, Any]]:
    """Every us-east-1 offering (spot per zone with an observed price, on-demand per zone offered), sized for EKS."""
    specs = {s["instance_type"]: s for s in json.loads((DATA / "instance_types.json").read_text())}
    with open(DATA / "on_demand_prices.csv") as f:
        od = {r["instance_type"]: r["usd_per_hour"] for r in csv.DictReader(f) if r["region"] == REGION}
    with open(DATA / "availability_zones.csv") as f:
        zone_of = {r["zone_id"]: r["zone_name"] for r in csv.DictReader(f) if r["region"] == REGION}
    with open(DATA / "spot_advisor.csv") as f:
        rate = {
            r["instance_type"]: INTERRUPTION_MIDPOINTS[int(r["interruption_range_index"])]
            for r in csv.DictReader(f)
            if r["region"] == REGION and r["os"] == "Linux"
        }
    spot: dict[tuple[str, str], tuple[str, str]] = {}  # (type, zone) -> (timestamp, price): keep the latest record
    with open(DATA / "spot_price_history" / "2022-05-31" / f"{REGION}.csv") as f:
        for r in csv.DictReader(f):
            if r["product_description"] != "Linux/UNIX" or r["availability_zone_id"] not in zone_of:
                continue
            key = (r["instance_type"], zone_of[r["availability_zone_id"]])
            if key not in spot or r["timestamp"] > spot[key][0]:
                spot[key] = (r["timestamp"], r["spot_price_usd_per_hour"])
    with open(DATA / "offerings" / "availability_zone.csv") as f:
        offered = {(r["instance_type"], r["availability_zone"]) for r in csv.DictReader(f) if r["region"] == REGION}

    def usable(s: dict[str, Any] | None) -> bool:
        # general-purpose Kubernetes nodes: no GPUs/accelerators, no bare metal, no Mac hosts
        # current-generation, non-burstable, 2+ vCPU: what a production node template would allow
        return bool(
            s
            and not s["gpus"]
            and not s["accelerators"]
            and not s["bare_metal"]
            and "mac" not in s["family"]
            and s["current_generation"]
            and not s["burstable"]
            and s["vcpu"] >= 2
            and s["max_network_interfaces"]
            and s["ipv4_addresses_per_interface"]
        )

    out = []
    for (itype, zone), (_, price) in sorted(spot.items()):
        s = specs.get(itype)
        if usable(s) and Decimal(price) > 0:
            out.append(
                offering(s, zone=zone, capacity_type="spot", price=price, interruption_rate=rate.get(itype, 0.1))
            )
    for itype, zone in sorted(offered):
        s = specs.get(itype)
        if usable(s) and itype in od:
            out.append(offering(s, zone=zone, capacity_type="on-demand", price=od[itype]))
    return [o for o in out if o["max_pods"] > 4 and o["allocatable_memory_mib"] > 512]


@dataclass(frozen=True)
class Mix:
    """A family of workloads: request ranges (log-uniform), replica tail, pinning, spot eligibility, constraints."""

    name: str
    cpu_m: tuple[int, int]  # per-pod CPU request range, millicores
    gib_per_cpu: tuple[float, float]  # memory per CPU range
    tail: float = 1.5  # Pareto shape of the replica split (smaller: heavier tail)
    arm_only: float = 0.1  # share of workloads pinned to arm64
    x86_only: float = 0.1  # share pinned to x86_64
    not_spot: float = 0.1  # share with spot_ok false
    constraints: dict[str, Any] = field(default_factory=dict)


MIXES = [
    Mix("web", (50, 1000), (1, 4)),
    Mix("memory", (100, 4000), (4, 16), arm_only=0.2, not_spot=0.2),
    Mix("compute", (500, 8000), (0.5, 2), tail=1.2, arm_only=0.05, x86_only=0.2, not_spot=0.05),
    Mix("mixed", (50, 8000), (0.5, 16), tail=1.1, arm_only=0.15, x86_only=0.15, not_spot=0.25),
    Mix("big-pods", (2000, 8000), (0.5, 16), tail=2.0, arm_only=0.0, x86_only=0.3, not_spot=0.0),
    Mix(
        "constrained",
        (50, 8000),
        (0.5, 16),
        tail=1.3,
        constraints={"on_demand_base": 0.2, "max_pool_share": 0.3, "max_interruption_rate": 0.15},
    ),
]


@dataclass(frozen=True)
class Size:
    """A size class: pods, workloads and how many catalog offerings a problem draws (None: the whole catalog)."""

    name: str
    pods: tuple[int, ...]
    workloads: tuple[int, int]
    offerings: tuple[int, int] | None
    bound: str  # "whole-node" or "lp"
    seeds: int


SIZES = [
    Size("small", (40, 100, 200), (4, 20), (150, 800), "whole-node", 2),
    Size("medium", (1_000, 2_000), (30, 60), (2_000, 2_600), "whole-node", 2),
    Size("large", (6_000,), (60, 120), (2_000, 2_600), "whole-node", 2),
    Size("xl", (20_000,), (200, 200), (2_500, 2_500), "lp", 1),
]


def make_problem(mix: Mix, pods: int, workloads: tuple[int, int], offerings: tuple[int, int] | None, seed: int) -> dict:
    """A deterministic problem: `pods` replicas of a `mix` over the catalog (or a random part of it)."""
    rng = np.random.default_rng([seed, pods, sum(map(ord, mix.name))])
    cat = catalog()
    if offerings is None:
        chosen = cat
    else:
        k = int(rng.integers(offerings[0], offerings[1] + 1))
        chosen = [cat[i] for i in sorted(rng.choice(len(cat), size=min(k, len(cat)), replace=False))]
    n_w = int(rng.integers(workloads[0], workloads[1] + 1))
    n_w = min(n_w, pods)
    weights = rng.pareto(mix.tail, size=n_w) + 0.05
    counts = np.maximum(1, np.floor(weights / weights.sum() * pods)).astype(int)
    counts[np.argmax(counts)] += pods - counts.sum()
    wl = []
    lo, hi = math.log(mix.cpu_m[0]), math.log(mix.cpu_m[1])
    mlo, mhi = math.log(mix.gib_per_cpu[0]), math.log(mix.gib_per_cpu[1])
    for i in range(n_w):
        cpu = int(round(math.exp(rng.uniform(lo, hi)) / 10) * 10)
        mem = int(round(cpu / 1000 * math.exp(rng.uniform(mlo, mhi)) * 1024 / 16) * 16)
        w: dict[str, Any] = {
            "name": f"w{i:03d}",
            "count": int(counts[i]),
            "cpu_m": max(cpu, 10),
            "memory_mib": max(mem, 32),
            "spot_ok": bool(rng.random() >= mix.not_spot),
        }
        r = rng.random()
        if r < mix.arm_only:
            w["arch"] = ["arm64"]
        elif r < mix.arm_only + mix.x86_only:
            w["arch"] = ["x86_64"]
        wl.append(w)
    return {
        "offerings": chosen,
        "workloads": wl,
        "daemonset": {"cpu_m": 150, "memory_mib": 300, "pods": 3},
        "constraints": {"on_demand_base": 0.0, "max_pool_share": 1.0, **mix.constraints},
        "strategy": "lowest-price",
    }


def whole_node_bound(
    problem: dict[str, Any], seconds: float, relax: bool = False, whole_pods: bool = False, packed: list | None = None
) -> tuple[float, bool]:
    """The dual bound HiGHS proves within `seconds` for: integer nodes per offering, each offering's pods pooled
    (continuous pods per (pod shape, offering) within the offering's nodes' total cpu, memory and pod slots), the
    exact pool cap. Returns (bound, solved to optimality).

    Offerings that others dominate (same arch and capacity type, at least as much of everything, no dearer, no higher
    interruption rate; with a pool cap, by at least ceil(1/share) others) are left out first, which changes no
    optimum: a dominated node can always move to a dominator with room. With `relax`, its LP relaxation. With
    `whole_pods`, the stronger *whole-pod bound*: integer pods per offering and at most ``floor(cap / size)`` pods of a
    shape per node (both hold in every plan), a lower bound on the exact per-node optimum."""
    p = parse_problem(problem)
    cl = build_classes(p)
    compat = compatibility(p, cl)
    keep = np.flatnonzero(compat.any(axis=0) & _undominated(p))
    compat = compat[:, keep]
    free = p.free_capacity()[keep].astype(float)
    price = p.price_f[keep]
    spot = p.spot[keep]
    di, ji = np.nonzero(compat)
    n_x, n_y, n_d = len(keep), len(di), len(cl)
    share = p.max_pool_share
    pool = share < 1.0 and spot.any()
    n_var = n_x + n_y + (2 if pool else 0)  # x, y, [S, c]
    rows, cols, vals, lo, hi = [], [], [], [], []
    r0 = 0
    for r in range(3):  # sum_d size y_dj - cap_j x_j <= 0
        rows += [r0 + ji, r0 + np.arange(n_x)]
        cols += [n_x + np.arange(n_y), np.arange(n_x)]
        vals += [cl.size[di, r].astype(float), -free[:, r]]
        lo.append(np.full(n_x, -np.inf))
        hi.append(np.zeros(n_x))
        r0 += n_x
    if whole_pods:  # y_dj <= floor(cap_j / size_d) x_j
        k = np.floor(free[ji] / np.maximum(cl.size[di], 1)).min(axis=1)
        rows += [r0 + np.arange(n_y), r0 + np.arange(n_y)]
        cols += [n_x + np.arange(n_y), ji]
        vals += [np.ones(n_y), -k]
        lo.append(np.full(n_y, -np.inf))
        hi.append(np.zeros(n_y))
        r0 += n_y
    rows.append(r0 + di)  # sum_j y_dj = n_d
    cols.append(n_x + np.arange(n_y))
    vals.append(np.ones(n_y))
    lo.append(cl.count.astype(float))
    hi.append(cl.count.astype(float))
    r0 += n_d
    if pool:
        s_col, c_col = n_x + n_y, n_x + n_y + 1
        sj = np.flatnonzero(spot)
        rows += [np.full(len(sj) + 1, r0)]  # S - sum spot x = 0
        cols += [np.concatenate([sj, [s_col]])]
        vals += [np.concatenate([-np.ones(len(sj)), [1.0]])]
        lo.append(np.zeros(1))
        hi.append(np.zeros(1))
        r0 += 1
        rows += [r0 + np.arange(len(sj)), r0 + np.arange(len(sj))]  # x_j - c <= 0
        cols += [sj, np.full(len(sj), c_col)]
        vals += [np.ones(len(sj)), -np.ones(len(sj))]
        lo.append(np.full(len(sj), -np.inf))
        hi.append(np.zeros(len(sj)))
        r0 += len(sj)
        rows += [np.full(2, r0)]  # c - share S <= 1 - eps
        cols += [np.array([c_col, s_col])]
        vals += [np.array([1.0, -share])]
        lo.append(np.full(1, -np.inf))
        hi.append(np.full(1, 1 - 1e-6))
        r0 += 1
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, n_var))
    cost = np.concatenate([price, np.zeros(n_var - n_x)])
    integrality = np.zeros(n_var)
    integrality[:n_x] = 1
    if whole_pods:
        integrality[n_x : n_x + n_y] = 1
    if pool:
        integrality[-1] = 1
    with _quiet():
        res = milp(
            cost,
            constraints=LinearConstraint(a, np.concatenate(lo), np.concatenate(hi)),
            integrality=np.zeros(n_var) if relax else integrality,
            bounds=Bounds(np.zeros(n_var), np.full(n_var, np.inf)),
            options={"time_limit": seconds, "mip_rel_gap": 1e-4},
        )
    bound = getattr(res, "mip_dual_bound", None)
    if bound is None or not np.isfinite(bound):
        bound = res.fun if res.status == 0 else lower_bound(problem)
    if packed is not None and whole_pods and not relax and res.status == 0:
        x = np.round(res.x[:n_x]).astype(np.int64)
        y = np.round(res.x[n_x : n_x + n_y]).astype(np.int64)
        if all(
            _packs(cl.size[di[ji == j]], y[ji == j], int(x[j]), free[j].astype(np.int64), seconds)
            for j in np.flatnonzero(x)
        ):
            packed.append(float(res.fun))
    return float(bound), res.status == 0


#: Exact pricing stops a round once it has found this many improving patterns (the master is re-solved first).
EXACT_PER_ROUND = 25
#: Relative gap of the pricing knapsacks: their proven upper bound, not their solution, enters theta, so this only
#: weakens the bound by at most as much (and saves most of the branch and bound on knapsacks of 200 classes).
KNAPSACK_GAP = 1e-3


@dataclass
class NodeBound:
    """Result of `node_bound`: the proven bound and how the column generation behind it ended."""

    bound: float  # proven lower bound on every valid plan's cost: z / theta of the best exact pricing round
    lp: float  # the restricted master's last optimum (an upper bound on the per-node LP, not a bound on plans)
    theta: float  # the Farley factor of the round that gave `bound` (1: the LP optimum is proven)
    converged: bool  # exact pricing found no improving pattern: `bound` is the per-node LP optimum
    rounds: int  # master solves
    exact_rounds: int  # rounds of exact pricing (a knapsack program per offering shape)
    columns: int  # patterns generated
    seconds: float


def node_bound(problem: dict[str, Any], seconds: float = 60.0, max_rounds: int = 10_000) -> NodeBound:
    """The *per-node bound*: the LP relaxation of the exact per-node ("pattern") model, proven by column generation
    with exact pricing and the Farley bound, so it is valid wherever the generation stops (time cap `seconds`).

    A pattern is one node of offering j holding ``a_d`` whole pods of every class d (``a_d <= n_d``, compatible,
    within j's free cpu, memory and pod slots). Every valid plan is a multiset of patterns, so with ``lambda_p`` its
    nodes of pattern p it is feasible for::

        min  sum_p price_j(p) lambda_p
        s.t. sum_p a_dp lambda_p >= n_d                          every class d with a compatible offering   (y_d)
             sum_{p on j} lambda_p - share * sum_{spot p} lambda_p <= 1   every spot pool j, when share < 1  (u_j)
             lambda >= 0

    (a plan keeps ``nodes_j <= ceil(share * S) < share * S + 1``). Dominated offerings are left out first
    (`_undominated`, valid under the pool cap): some optimal plan uses none of them, so the LP over the others still
    bounds that plan's cost. Hence the LP optimum is a lower bound on every valid plan.

    Validity at any stop: in ``>=`` form the pool rows read ``-(...) >= -1``, so the LP dual is
    ``max sum_d n_d y_d - sum_j u_j`` over ``y, u >= 0`` with, for every pattern p, ``value_p <= price_p`` where
    ``value_p = sum_d a_dp y_d`` on an on-demand offering and ``sum_d a_dp y_d - u_j + share * sum_i u_i`` on spot
    pool j (its coefficient is ``1 - share`` in row j and ``-share`` in the other pool rows). Take y, u from the
    restricted master's duals, clipped to their signs (any such vector will do), and ``theta >= max(1, max_p
    value_p / price_p)`` over *all* patterns: then ``(y, u) / theta`` is dual feasible and ``D(y, u) / theta`` (D the
    dual objective) is a lower bound on the LP optimum (Farley). ``max_p`` is, per offering, an integer
    3-dimensional bounded knapsack (``max sum_d y_d a_d``) plus the pool term: solved as a MILP, its proven upper
    bound (HiGHS's dual bound when it stops early) keeps theta an upper bound; offerings whose cheap bound (the
    smallest single-resource fractional knapsack) cannot beat the largest ratio found are not solved. Offerings of
    the same free capacity and compatible classes share one knapsack. Prices must be positive.

    Column generation: greedy fills (classes by dual value per share of the node) price columns until they find
    none, then exact pricing adds the knapsacks' improving patterns; it stops when exact pricing finds none
    (converged: theta <= 1 up to tolerance), after `max_rounds` master solves, or at `seconds`."""
    t0 = time.perf_counter()
    deadline = t0 + seconds
    greedy_until = t0 + 0.5 * seconds  # the rest is left for exact pricing, which alone proves the bound
    p = parse_problem(problem)
    cl = build_classes(p)
    compat = compatibility(p, cl)
    keep = np.flatnonzero(compat.any(axis=0) & _undominated(p))
    compat = compat[:, keep]
    rows_d = np.flatnonzero(compat.any(axis=1) & (cl.count > 0))
    compat = compat[rows_d]
    size = cl.size[rows_d].astype(np.int64)
    need = cl.count[rows_d].astype(np.int64)
    free = p.free_capacity()[keep].astype(np.int64)
    price = p.price_f[keep].astype(float)
    spot = p.spot[keep]
    n_d, n_j = len(rows_d), len(keep)
    if n_d == 0:
        return NodeBound(0.0, 0.0, 1.0, True, 0, 0, 0, time.perf_counter() - t0)
    if (price <= 0).any():
        raise ValueError("the per-node bound needs positive prices")
    share = p.max_pool_share
    pool = bool(share < 1.0 and spot.any())
    with np.errstate(divide="ignore"):
        per = np.where(size[:, None, :] > 0, free[None, :, :] // np.maximum(size[:, None, :], 1), 2**40).min(axis=2)
    kmax = np.where(compat, np.minimum(per, need[:, None]), 0).astype(np.int64)  # (D, J)

    # offerings with the same free capacity and the same pods per node of every class share one knapsack
    groups: dict[bytes, int] = {}
    group_of = np.empty(n_j, dtype=np.int64)
    for j in range(n_j):
        key = free[j].tobytes() + kmax[:, j].tobytes()
        group_of[j] = groups.setdefault(key, len(groups))
    n_g = len(groups)
    first = np.zeros(n_g, dtype=np.int64)
    first[group_of[::-1]] = np.arange(n_j)[::-1]
    g_free = free[first]  # (G, 3)
    g_kmax = kmax[:, first]  # (D, G)
    g_frac = size[:, None, :] / np.maximum(g_free[None, :, :], 1)  # (D, G, 3)

    # --- master: cover rows, pool rows, and S - sum spot lambda = 0 (the S column keeps pattern columns sparse) -------
    spot_j = np.flatnonzero(spot) if pool else np.zeros(0, dtype=np.int64)
    pool_row = np.full(n_j, -1, dtype=np.int64)
    pool_row[spot_j] = n_d + np.arange(len(spot_j))
    def_row = n_d + len(spot_j)
    n_rows = def_row + (1 if pool else 0)
    lower = np.concatenate([need.astype(float), np.full(len(spot_j), -_INF), np.zeros(1 if pool else 0)])
    upper = np.concatenate([np.full(n_d, _INF), np.ones(len(spot_j)), np.zeros(1 if pool else 0)])
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.addRows(n_rows, lower, upper, 0, np.zeros(n_rows, dtype=np.int32), np.zeros(0, np.int32), np.zeros(0))
    penalty = 10.0 * float(price.max()) + 1.0  # slacks keep the master feasible; they are no patterns
    h.addCols(
        n_d,
        np.full(n_d, penalty),
        np.zeros(n_d),
        np.full(n_d, _INF),
        n_d,
        np.arange(n_d, dtype=np.int32),
        np.arange(n_d, dtype=np.int32),
        np.ones(n_d),
    )
    if pool:
        idx = np.concatenate([pool_row[spot_j], [def_row]]).astype(np.int32)
        h.addCols(
            1,
            np.zeros(1),
            np.zeros(1),
            np.full(1, _INF),
            len(idx),
            np.zeros(1, dtype=np.int32),
            idx,
            np.concatenate([np.full(len(spot_j), -share), [1.0]]),
        )
    seen: set[bytes] = set()

    def add(cols: list[tuple[int, np.ndarray]]) -> int:
        costs, starts, index, value = [], [], [], []
        for j, a in cols:
            key = int(j).to_bytes(4, "little") + a.astype(np.int32).tobytes()
            if key in seen or (a.astype(np.int64) @ size > free[j]).any() or (a > kmax[:, j]).any():
                continue
            seen.add(key)
            d = np.flatnonzero(a)
            starts.append(len(index))
            index += d.tolist() + ([int(pool_row[j]), def_row] if pool and spot[j] else [])
            value += a[d].astype(float).tolist() + ([1.0, -1.0] if pool and spot[j] else [])
            costs.append(price[j])
        if costs:
            h.addCols(
                len(costs),
                np.array(costs),
                np.zeros(len(costs)),
                np.full(len(costs), _INF),
                len(index),
                np.array(starts, dtype=np.int32),
                np.array(index, dtype=np.int32),
                np.array(value),
            )
        return len(costs)

    # start: every class alone on the three offerings cheapest per pod for it
    start: list[tuple[int, np.ndarray]] = []
    for d in range(n_d):
        js = np.flatnonzero(kmax[d])
        for j in js[np.argsort(price[js] / kmax[d, js], kind="stable")[:3]].tolist():
            a = np.zeros(n_d, dtype=np.int64)
            a[d] = kmax[d, j]
            start.append((j, a))
    add(start)

    def duals() -> tuple[np.ndarray, np.ndarray, float]:
        """(y, const per offering, dual objective D): the master's duals clipped to their signs, dense pool form."""
        rd = np.asarray(h.getSolution().row_dual, dtype=float)
        y = np.maximum(rd[:n_d], 0.0)
        const = np.zeros(n_j)
        big_u = 0.0
        if pool:
            u = np.maximum(-rd[n_d:def_row], 0.0)
            big_u = float(u.sum())
            const[spot_j] = share * big_u - u
        return y, const, float(need @ y) - big_u

    def best_members(k_val: np.ndarray, const: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per group: the largest value / price over its offerings given knapsack values `k_val`, and which one."""
        ratio = (k_val[group_of] + const) / price
        best = np.full(n_g, -np.inf)
        np.maximum.at(best, group_of, ratio)
        who = np.full(n_g, -1, dtype=np.int64)
        hit = ratio >= best[group_of]
        who[group_of[hit][::-1]] = np.flatnonzero(hit)[::-1]
        return best, who

    def greedy(y: np.ndarray, const: np.ndarray) -> list[tuple[float, int, np.ndarray]]:
        """Greedy fills of one node per group, classes in value-density orders; improving patterns found."""
        km = np.where((y > 1e-12)[:, None], g_kmax, 0)
        found: list[tuple[float, int, np.ndarray]] = []
        for w in (g_frac.max(axis=2), g_frac.sum(axis=2), g_frac[:, :, 0], g_frac[:, :, 1]):
            dens = np.where(km > 0, y[:, None] / np.maximum(w, 1e-12), -1.0)
            order = np.argsort(-dens, axis=0, kind="stable")
            a = np.zeros_like(km)
            room = g_free.copy()
            cols = np.arange(n_g)
            for t in range(n_d):
                d = order[t]
                s = size[d]  # (G, 3)
                fit = (room // np.maximum(s, 1)).min(axis=1)
                take = np.maximum(np.minimum(fit, km[d, cols]), 0)
                a[d, cols] += take
                room -= take[:, None] * s
            best, who = best_members(y @ a, const)
            for g in np.flatnonzero(best > 1.0 + 1e-9).tolist():
                found.append((float(best[g]), int(who[g]), a[:, g].copy()))
        return found

    def cheap_ub(y: np.ndarray) -> np.ndarray:
        """Per group an upper bound on the knapsack: the smallest single-resource fractional knapsack bound."""
        out = np.empty(n_g)
        for g in range(n_g):
            d = np.flatnonzero((y > 1e-12) & (g_kmax[:, g] > 0))
            if not len(d):
                out[g] = 0.0
                continue
            best = np.inf
            for r in range(3):
                s = size[d, r].astype(float)
                o = np.argsort(-y[d] / s, kind="stable")
                w = s[o] * g_kmax[d[o], g]
                v = y[d[o]] * g_kmax[d[o], g]
                cw = np.cumsum(w)
                k = int(np.searchsorted(cw, g_free[g, r], side="right"))
                val = float(v[:k].sum())
                if k < len(d):
                    val += y[d[o[k]]] / s[o[k]] * (g_free[g, r] - (cw[k - 1] if k else 0.0))
                best = min(best, val)
            out[g] = best
        return out

    def knapsack(g: int, y: np.ndarray, limit: float, gap: float) -> tuple[float, np.ndarray | None]:
        """Exact pricing of group g: (proven upper bound on max y.a, best pattern found)."""
        d = np.flatnonzero((y > 1e-12) & (g_kmax[:, g] > 0))
        if not len(d):
            return 0.0, np.zeros(n_d, dtype=np.int64)
        with _quiet():
            res = milp(
                -y[d],
                constraints=LinearConstraint(size[d].T.astype(float), -np.inf, g_free[g].astype(float)),
                integrality=np.ones(len(d)),
                bounds=Bounds(np.zeros(len(d)), g_kmax[d, g].astype(float)),
                options={"time_limit": max(limit, 0.05), "mip_rel_gap": gap},
            )
        dual = getattr(res, "mip_dual_bound", None)
        ub = -float(dual) if dual is not None and np.isfinite(dual) else math.inf
        if res.x is None:
            return ub, None
        a = np.zeros(n_d, dtype=np.int64)
        a[d] = np.round(res.x).astype(np.int64)
        return max(ub if res.status == 0 else ub, float(y @ a)), a

    best_bound, best_theta, converged, quick = 0.0, math.inf, False, True
    proof_at = t0 + 0.7 * seconds
    rounds = exact_rounds = 0
    z = 0.0
    while True:
        h.run()
        rounds += 1
        z = h.getInfo().objective_function_value
        y, const, dual_obj = duals()
        if time.perf_counter() < greedy_until and rounds < max_rounds:
            found = greedy(y, const)
            found.sort(key=lambda t: -t[0])
            if add([(j, a) for _, j, a in found[:300]]):
                continue
        # exact pricing: knapsacks in order of their cheap bound's ratio, until none can beat the largest found. A
        # quick round (short, loose knapsacks, at most EXACT_PER_ROUND patterns) first; a full one when it finds
        # nothing or past `proof_at`. Every round's theta is a valid upper bound (knapsacks' proven bounds, the cheap
        # bounds where not solved), so every round gives a valid Farley bound.
        full = not quick or time.perf_counter() >= proof_at
        exact_rounds += 1
        ub = cheap_ub(y)
        ratio_ub, _ = best_members(ub, const)
        theta = 1.0
        improving: list[tuple[float, int, np.ndarray]] = []
        for g in np.argsort(-ratio_ub, kind="stable").tolist():
            if ratio_ub[g] <= theta:
                break
            left = deadline - time.perf_counter()
            if left <= 0 or (not full and len(improving) >= EXACT_PER_ROUND):  # the cheap bounds stand for the rest
                theta = max(theta, float(ratio_ub[g]))
                break
            k_ub, a = knapsack(g, y, min(left, 2.0 if full else 0.1), KNAPSACK_GAP if full else 1e-2)
            k_ub = min(k_ub, float(ub[g]))
            r_ub, _ = best_members(np.where(np.arange(n_g) == g, k_ub, 0.0), const)
            theta = max(theta, float(r_ub[g]))
            if a is not None:
                r_sol, who = best_members(np.where(np.arange(n_g) == g, float(y @ a), 0.0), const)
                if r_sol[g] > 1.0 + 1e-9:
                    improving.append((float(r_sol[g]), int(who[g]), a))
        if dual_obj / theta > best_bound:
            best_bound, best_theta = dual_obj / theta, theta
        added = bool(improving) and add([(j, a) for _, j, a in improving]) > 0
        if not added and full:
            converged = theta <= 1.0 + KNAPSACK_GAP + 1e-9
            break
        quick = added  # nothing new from a quick round: the next one is full
        if time.perf_counter() >= deadline or rounds >= max_rounds:
            break
    return NodeBound(
        bound=max(best_bound, 0.0),
        lp=float(z),
        theta=best_theta,
        converged=converged,
        rounds=rounds,
        exact_rounds=exact_rounds,
        columns=len(seen),
        seconds=time.perf_counter() - t0,
    )


def _packs(size: np.ndarray, count: np.ndarray, nodes: int, cap: np.ndarray, seconds: float) -> bool:
    """Whether `count[d]` pods of shape `size[d]` fit on `nodes` nodes of free capacity `cap` (cpu, memory, slots)."""
    keep = count > 0
    size, count = size[keep].astype(np.int64), count[keep]
    if count.sum() == 0:
        return True
    # first-fit decreasing by largest share
    room = np.tile(cap, (nodes, 1))
    ok = True
    for d in np.argsort(-(size / np.maximum(cap, 1)).max(axis=1), kind="stable"):
        left = int(count[d])
        for b in range(nodes):
            k = int(min(left, (room[b] // np.maximum(size[d], 1)).min()))
            if k > 0:
                room[b] -= k * size[d]
                left -= k
            if left == 0:
                break
        if left:
            ok = False
            break
    if ok:
        return True
    # exact: q[b, d] integer pods of shape d on node b; every pod placed, every node within its capacity
    n_d = len(count)
    n_var = nodes * n_d
    rows, cols, vals = [], [], []
    for r in range(3):
        for b in range(nodes):
            rows += [r * nodes + b] * n_d
            cols += list(range(b * n_d, (b + 1) * n_d))
            vals += size[:, r].astype(float).tolist()
    for d in range(n_d):
        rows += [3 * nodes + d] * nodes
        cols += [b * n_d + d for b in range(nodes)]
        vals += [1.0] * nodes
    a = sp.csr_matrix((vals, (rows, cols)), shape=(3 * nodes + n_d, n_var))
    lo = np.concatenate([np.full(3 * nodes, -np.inf), count.astype(float)])
    hi = np.concatenate([np.repeat(cap.astype(float), nodes), count.astype(float)])
    with _quiet():
        res = milp(
            np.zeros(n_var),
            constraints=LinearConstraint(a, lo, hi),
            integrality=np.ones(n_var),
            bounds=Bounds(np.zeros(n_var), np.full(n_var, np.inf)),
            options={"time_limit": min(seconds, 2.0)},  # unproven within it: not known to pack
        )
    return res.status == 0


@contextlib.contextmanager
def _quiet() -> Any:
    """HiGHS prints some MIP progress straight to the process's stdout: silence it for the table's sake."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _undominated(p: Any) -> np.ndarray:
    """Offerings no other offering of the same arch and capacity type dominates (see `whole_node_bound`)."""
    free = p.free_capacity()
    need = np.where(p.spot & (p.max_pool_share < 1.0), math.ceil(1 / max(p.max_pool_share, 1e-9) - 1e-9), 1)
    out = np.ones(p.n_offerings, dtype=bool)
    arch = np.array(p.arch)
    for j in range(p.n_offerings):
        same = (arch == arch[j]) & (p.spot == p.spot[j])
        ge = (
            (free >= free[j]).all(axis=1)
            & (p.price_f <= p.price_f[j])
            & (p.interruption_rate <= p.interruption_rate[j])
        )
        strict = (
            (free > free[j]).any(axis=1) | (p.price_f < p.price_f[j]) | (p.interruption_rate < p.interruption_rate[j])
        )
        dom = same & ge & (strict | (np.arange(p.n_offerings) < j))
        dom[j] = False
        out[j] = dom.sum() < need[j]
    return out


def run(
    mix: Mix, size: Size, pods: int, seed: int, bound_seconds: float, repeat: int, node_seconds: float = 0.0
) -> dict[str, Any]:
    """Plan one problem `repeat` times (the best time counts), validate it, and compare it with its bound (and,
    above the small size class with `node_seconds` > 0, with the per-node bound of `node_bound`)."""
    problem = make_problem(mix, pods, size.workloads, size.offerings, seed)
    best = float("inf")
    result: dict[str, Any] = {}
    for _ in range(repeat):
        t0 = time.process_time()
        result = plan(problem)
        best = min(best, time.process_time() - t0)
    errors = validate(problem, result)
    t0 = time.perf_counter()
    if size.bound == "lp":
        bound, exact = whole_node_bound(problem, bound_seconds, relax=True)
        exact = False
    else:
        bound, exact = whole_node_bound(problem, bound_seconds)
    bound_s = time.perf_counter() - t0
    # the whole-pod bound is time-capped too: where it proves less than the whole-node bound, the latter stands
    packed: list[float] = []
    pod_bound = (
        max(whole_node_bound(problem, bound_seconds, whole_pods=True, packed=packed)[0], bound)
        if size.name == "small"
        else None
    )
    cost = Decimal(result["hourly_cost"])
    nb = node_bound(problem, node_seconds) if node_seconds > 0 and size.name != "small" else None
    # the exact per-node optimum, where it is known: the whole-pod program's optimum when it packs into its nodes,
    # or the plan itself when it meets the whole-pod bound
    exact = None
    if packed:
        exact = min(packed[0], float(cost))
    elif pod_bound and float(cost) <= pod_bound * (1 + 1e-4):
        exact = float(cost)
    return {
        "mix": mix.name,
        "size": size.name,
        "seed": seed,
        "pods": sum(w["count"] for w in problem["workloads"]),
        "workloads": len(problem["workloads"]),
        "offerings": len(problem["offerings"]),
        "nodes": len(result["nodes"]),
        "unplaced": sum(result["unplaced"].values()),
        "time_ms": round(best * 1000, 1),
        "cost": str(cost),
        "bound": f"{bound:.6f}",
        "bound_kind": size.bound + (" (optimal)" if exact else ""),
        "bound_s": round(bound_s, 1),
        "ratio": round(float(cost) / bound, 4) if bound > 0 else None,
        "pod_bound": None if pod_bound is None else f"{pod_bound:.6f}",
        "pod_ratio": round(float(cost) / pod_bound, 4) if pod_bound else None,
        "exact": None if exact is None else f"{exact:.6f}",
        "exact_ratio": round(float(cost) / exact, 4) if exact else None,
        "node_bound": None if nb is None else f"{nb.bound:.6f}",
        "node_ratio": round(float(cost) / nb.bound, 4) if nb and nb.bound > 0 else None,
        "node_bound_s": None if nb is None else round(nb.seconds, 1),
        "node_theta": None if nb is None else round(nb.theta, 5),
        "node_lp": None if nb is None else f"{nb.lp:.6f}",
        "node_converged": None if nb is None else nb.converged,
        "valid": not errors,
        "errors": errors[:5],
    }


def _node_note(r: dict[str, Any]) -> str:
    """How the per-node bound ended: its time, and theta when exact pricing did not converge."""
    state = "converged" if r["node_converged"] else f"theta {r['node_theta']}"
    return f"; per-node {r['node_bound_s']} s, {state}"


def _exact_cell(r: dict[str, Any]) -> str:
    """The ratio to the exact optimum, or `<=` the ratio to the whole-pod bound when the optimum is not known."""
    if r["exact_ratio"] is not None:
        return str(r["exact_ratio"])
    return f"<={r['pod_ratio']}" if r["pod_ratio"] is not None else ""


def main(argv: list[str] | None = None) -> int:
    """Print the table and the worst ratio per size class (or JSON with --json); exit 1 if any plan is invalid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--small", action="store_true", help="only the small size class (what CI runs)")
    parser.add_argument("--sizes", nargs="*", help="size classes to run (default: all)")
    parser.add_argument("--mixes", nargs="*", help="workload mixes to run (default: all)")
    parser.add_argument("--seeds", type=int, help="seeds per (mix, size); default per size class")
    parser.add_argument("--repeat", type=int, default=1, help="plans per problem; the best time is reported")
    parser.add_argument("--bound-seconds", type=float, default=20.0, help="time cap of each whole-node bound solve")
    parser.add_argument(
        "--node-bound-seconds",
        type=float,
        default=0.0,
        help="time cap of each per-node bound (medium and larger; default 0: not computed)",
    )
    args = parser.parse_args(argv)
    sizes = [s for s in SIZES if (not args.small or s.name == "small") and (not args.sizes or s.name in args.sizes)]
    mixes = [m for m in MIXES if not args.mixes or m.name in args.mixes]
    rows = []
    if not args.json:
        head = (
            f"{'mix':<12}{'size':<7}{'seed':>4}{'pods':>7}{'wl':>5}{'offers':>7}{'nodes':>6}{'cpu ms':>9}"
            f"{'cost $/h':>12}{'bound':>12}{'ratio':>8}{'pod r.':>8}{'exact r.':>9}{'node bound':>12}{'node r.':>8}"
            "  bound kind"
        )
        print(head)
        print("-" * len(head))
    for size in sizes:
        for mix in mixes:
            for pods in size.pods:
                for seed in range(args.seeds or size.seeds):
                    r = run(mix, size, pods, seed, args.bound_seconds, args.repeat, args.node_bound_seconds)
                    rows.append(r)
                    if not args.json:
                        print(
                            f"{r['mix']:<12}{r['size']:<7}{r['seed']:>4}{r['pods']:>7}{r['workloads']:>5}"
                            f"{r['offerings']:>7}{r['nodes']:>6}{r['time_ms']:>9}{r['cost']:>12}{r['bound']:>12}"
                            f"{r['ratio']!s:>8}{r['pod_ratio'] or '':>8}{_exact_cell(r):>9}{r['node_bound'] or '':>12}"
                            f"{r['node_ratio'] or '':>8}  {r['bound_kind']}"
                            + (_node_note(r) if r["node_bound"] is not None else "")
                            + ("" if r["valid"] else "  INVALID: " + "; ".join(r["errors"])),
                            flush=True,
                        )
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        print()
        print("worst ratio per size class (plan cost / bound):")
        for size in sizes:
            got = [r for r in rows if r["size"] == size.name and r["ratio"] is not None]
            if got:
                worst = max(got, key=lambda r: r["ratio"])
                slowest = max(r["time_ms"] for r in got)
                print(
                    f"  {size.name:<7} {worst['ratio']:.4f}  ({worst['mix']}, {worst['pods']} pods,"
                    f" seed {worst['seed']};"
                    f" {len(got)} problems, slowest plan {slowest} ms, vs {size.bound} bound)"
                )
                node = [r for r in got if r["node_ratio"] is not None]
                if node:
                    w = max(node, key=lambda r: r["node_ratio"])
                    both = max(node, key=lambda r: min(r["node_ratio"], r["ratio"]))
                    print(
                        f"  {size.name:<7} {w['node_ratio']:.4f}  vs the per-node bound ({w['mix']}, {w['pods']} pods,"
                        f" seed {w['seed']}; converged on {sum(bool(r['node_converged']) for r in node)} of"
                        f" {len(node)}); {min(both['node_ratio'], both['ratio']):.4f} vs the larger of the two bounds"
                        f" ({both['mix']}, {both['pods']} pods, seed {both['seed']})"
                    )
                pod = [r for r in got if r["pod_ratio"] is not None]
                if pod:
                    w = max(pod, key=lambda r: r["pod_ratio"])
                    print(
                        f"  {size.name:<7} {w['pod_ratio']:.4f}  vs the whole-pod bound ({w['mix']}, {w['pods']} pods,"
                        f" seed {w['seed']})"
                    )
                    known = [r for r in pod if r["exact_ratio"] is not None]
                    if known:
                        w = max(known, key=lambda r: r["exact_ratio"])
                        print(
                            f"  {size.name:<7} {w['exact_ratio']:.4f}  vs the exact optimum ({w['mix']},"
                            f" {w['pods']} pods, seed {w['seed']}; known for {len(known)} of {len(pod)} problems)"
                        )
                    rest = [r for r in pod if r["exact_ratio"] is None]
                    if rest:
                        w = max(rest, key=lambda r: r["pod_ratio"])
                        print(
                            f"  {size.name:<7} <={w['pod_ratio']:.4f} vs the exact optimum where it is not known (the"
                            f" whole-pod bound; {w['mix']}, {w['pods']} pods, seed {w['seed']})"
                        )
    return 0 if all(r["valid"] and not r["unplaced"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
