"""The planner's view of a problem: demand classes, the compatibility matrix, and the LP relaxation.

A *demand class* is a set of pods that are interchangeable for placement: the same CPU and memory request, the same
arch list, and the same capacity requirement (``must_od``: must run on on-demand). Each workload contributes at most
two classes: its on-demand share (``ceil(on_demand_base * count)``, or the whole count when ``spot_ok`` is false) and
the rest. Identical classes of different workloads are merged, so the solver's size depends on the number of distinct
pod shapes, not on the number of pods.

The LP ("node type counts") has one column ``x_j`` per usable offering, one column ``y_dg`` per compatible (class,
offering group) pair and a slack ``u_d`` for pods that cannot be placed::

    min  sum_j p_j x_j + M sum_d u_d
    s.t. sum_{j in g} cap_jr x_j >= sum_d size_dr y_dg      for every group g and resource r (cpu, memory, pod slots)
         sum_g y_dg + u_d = n_d                             for every class d
         x_j <= share * S + 1,  S = sum_{spot j} x_j        for every spot pool j (only when share < 1)

For the lower bound, offerings are grouped by the exact set of classes whose pod fits them (so a pod is never counted
on capacity it could not use); any integer plan is a feasible point (``ceil(share*S) <= share*S + 1``), so the optimum
is a valid lower bound on the cost of any plan that places the same pods. The planner re-solves it with one group per
offering, over the offerings the first solve selected, to learn which pods go on which node type.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp
from highspy._core import _Highs  # the bare solver: the `Highs` wrapper prints a banner to stdout
from scipy.optimize import Bounds, LinearConstraint, milp

from .problem import Problem

__all__ = [
    "MILP_NODES",
    "MILP_SECONDS",
    "PACK_NODES",
    "PACK_VARS",
    "PCO_K",
    "Classes",
    "LPCache",
    "LPResult",
    "NodeResult",
    "build_classes",
    "compatibility",
    "effective_prices",
    "fit_groups",
    "quiet_stdout",
    "solve_lp",
    "solve_nodes",
    "undominated",
    "usable_offerings",
]

#: price-capacity-optimized weight: effective_price = price * (1 + PCO_K * interruption_rate) for spot offerings.
PCO_K = 2.0
#: The whole-node integer program stops after this many branch-and-bound nodes (or within its relative gap): a
#: deterministic limit, so the same problem always gets the same plan whatever the machine's load.
MILP_NODES = 300
#: A hang guard only, never what decides a plan: measured solves take at most ~10 s of CPU (small pool-capped
#: problems, more on a loaded machine; a few seconds above 200 pods), far inside it, so node limits decide.
MILP_SECONDS = 600.0
#: The per-node packing MILP (`solve_nodes`) runs only up to this many variables and stops after PACK_NODES
#: branch-and-bound nodes; both keep it well inside its wall-clock safety net, so the node limit decides.
PACK_VARS = 400
PACK_NODES = 200
#: Column generation rounds of a restricted planning LP (`solve_lp(price_out=...)`).
PRICE_OUT_ROUNDS = 20


@dataclass
class Classes:
    """Demand classes (see module docstring). ``members[d]`` lists (workload index, pods) in workload order."""

    size: np.ndarray  # (D, 3) int64: cpu_m, memory_mib, 1 pod slot
    count: np.ndarray  # (D,) int64
    must_od: np.ndarray  # (D,) bool
    arch_ok: np.ndarray  # (D, J) bool
    members: list[list[tuple[int, int]]]

    def __len__(self) -> int:
        return len(self.count)


def build_classes(p: Problem) -> Classes:
    """Split every workload into its on-demand and flexible share and merge identical shares."""
    od_req = p.od_required()
    arch_rows = p.arch_ok()
    index: dict[tuple[int, int, bool, frozenset[str] | None], int] = {}
    size: list[tuple[int, int, int]] = []
    count: list[int] = []
    must_od: list[bool] = []
    arch_of: list[int] = []
    members: list[list[tuple[int, int]]] = []
    for w in range(p.n_workloads):
        for is_od, n in ((True, int(od_req[w])), (False, int(p.count[w] - od_req[w]))):
            if n <= 0:
                continue
            key = (int(p.w_cpu[w]), int(p.w_mem[w]), is_od, p.w_arch[w])
            d = index.get(key)
            if d is None:
                d = index[key] = len(count)
                size.append((key[0], key[1], 1))
                count.append(0)
                must_od.append(is_od)
                arch_of.append(w)
                members.append([])
            count[d] += n
            members[d].append((w, n))
    n_classes = len(count)
    return Classes(
        size=np.array(size, dtype=np.int64).reshape(n_classes, 3),
        count=np.array(count, dtype=np.int64),
        must_od=np.array(must_od, dtype=bool),
        arch_ok=arch_rows[arch_of] if n_classes else np.zeros((0, p.n_offerings), dtype=bool),
        members=members,
    )


def usable_offerings(p: Problem) -> np.ndarray:
    """Offerings that can hold at least one pod slot after the daemonset and that the constraints allow."""
    free = p.free_capacity()
    ok = (free >= 0).all(axis=1) & (free[:, 2] >= 1)
    spot_ok = p.max_pool_share > 0.0
    if p.max_interruption_rate is not None:
        ok_rate = p.interruption_rate <= p.max_interruption_rate + 1e-12
    else:
        ok_rate = np.ones(p.n_offerings, dtype=bool)
    return ok & (~p.spot | (spot_ok & ok_rate))


def undominated(p: Problem, prices: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(J,) bool: `allowed` offerings that no other allowed offering of the same arch and capacity type dominates.

    k dominates j when it has at least as much free cpu, memory and pod slots, costs no more (`prices`) and is
    interrupted no more often (ties broken by index). Any plan stays valid and no dearer when a node of j moves to k;
    under a pool cap a spot offering is dropped only with at least ``ceil(1 / max_pool_share)`` dominators, since
    then they always have room under ``ceil(share x S)`` for it. So dropping these loses no optimum."""
    free = p.free_capacity()
    out = allowed.copy()
    share = p.max_pool_share
    arch = np.array(p.arch, dtype=object)
    rate = p.interruption_rate
    for key in {(a, bool(s)) for a, s in zip(p.arch, p.spot.tolist(), strict=True)}:
        g = np.flatnonzero(allowed & (arch == key[0]) & (p.spot == key[1]))
        if len(g) < 2:
            continue
        need = 1 if not key[1] or share >= 1.0 else (math.ceil(1.0 / share - 1e-9) if share > 0 else len(g))
        # identical offerings (one type in several zones) collapse to one row with a multiplicity
        rows, _, inverse, mult = np.unique(
            np.column_stack([free[g].astype(float), prices[g], rate[g]]),
            axis=0,
            return_index=True,
            return_inverse=True,
            return_counts=True,
        )
        inverse = inverse.reshape(-1)
        f, pr, rt = rows[:, :3], rows[:, 3], rows[:, 4]
        # sdom[a, b]: row a strictly dominates row b; one 2-D comparison per attribute
        ge = (pr[:, None] <= pr[None, :]) & (rt[:, None] <= rt[None, :])
        strict = (pr[:, None] < pr[None, :]) | (rt[:, None] < rt[None, :])
        for r in range(3):
            ge &= f[:, None, r] >= f[None, :, r]
            strict |= f[:, None, r] > f[None, :, r]
        dominators = (ge & strict).astype(np.int64).T @ mult
        # within a row of identical offerings, the k-th (by index) has k dominators among its twins
        order = np.lexsort((g, inverse))
        rank = np.empty(len(g), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(np.bincount(inverse[order], minlength=len(rows)))[:-1]])
        rank[order] = np.arange(len(g)) - starts[inverse[order]]
        out[g[dominators[inverse] + rank >= need]] = False
    return out


def compatibility(p: Problem, cl: Classes) -> np.ndarray:
    """(D, J) bool: a pod of class d may run on offering j (usable, arch, capacity type, one pod fits)."""
    free = p.free_capacity()
    fits = (cl.size[:, None, 0] <= free[None, :, 0]) & (cl.size[:, None, 1] <= free[None, :, 1])
    cap_ok = ~(cl.must_od[:, None] & p.spot[None, :])
    return fits & cap_ok & cl.arch_ok & usable_offerings(p)[None, :]


def effective_prices(p: Problem, strategy: str | None = None) -> np.ndarray:
    """Prices the planner minimises: list prices for lowest-price; for price-capacity-optimized, spot prices are
    weighted by their interruption rate, price * (1 + PCO_K * interruption_rate)."""
    strategy = strategy or p.strategy
    if strategy == "price-capacity-optimized":
        return p.price_f * np.where(p.spot, 1.0 + PCO_K * p.interruption_rate, 1.0)
    return p.price_f.copy()


@dataclass
class LPResult:
    """Solution of `solve_lp`: node counts per offering, pods per (class, group), unplaced pods per class."""

    cost: float  # sum of price * x (without the unplaced penalty)
    x: np.ndarray  # (len(offerings),)
    y: np.ndarray  # (D, n_groups)
    unplaced: np.ndarray  # (D,)
    rc: np.ndarray | None = None  # (len(offerings),) reduced cost of every x (LP only)
    bound: float | None = None  # integer programs: the dual bound HiGHS proved (objective, unplaced penalty included)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """HiGHS's MIP sometimes prints a debugging line (`HighsMipSolverData::transformNewIntegerFeasibleSolution
    ...`) straight to the process's stdout whatever `output_flag` says: point file descriptor 1 at /dev/null around
    the solve (and flush C stdio before pointing it back)."""
    fd = 1
    try:
        os.fstat(fd)
    except OSError:  # no stdout at all: nothing to protect
        yield
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(fd)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
        yield
    finally:
        libc.fflush(None)  # what C stdio still buffers goes to /dev/null too
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


class LPCache:
    """Solved planning LPs, kept to re-solve the same LP for other pod counts (warm-started dual simplex).

    The repair steps plan the pods a packing left over with the same offerings, groups and classes as the plan
    before them; only the demand rows change. HiGHS re-solves from the previous optimal basis in a tenth of the time
    of a fresh solve (the constrained 20,000-pod problem: 0.04-0.06 s instead of 0.35 s). Keyed by everything the LP
    depends on except the counts; the answer is the same optimum a fresh solve proves (another vertex at most where
    the optimum is not unique)."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[_Highs, int]] = {}

    @staticmethod
    def key(p: Problem, cl: Classes, offerings: np.ndarray, group: np.ndarray, gc: np.ndarray, prices: np.ndarray):
        return (
            id(p),
            np.asarray(offerings, dtype=np.int64).tobytes(),
            np.asarray(group, dtype=np.int64).tobytes(),
            (gc.shape, np.packbits(gc).tobytes()),
            np.asarray(prices[offerings], dtype=float).tobytes(),
            cl.size.astype(np.int64).tobytes(),
        )


def solve_lp(
    p: Problem,
    cl: Classes,
    offerings: np.ndarray,
    group: np.ndarray,
    group_compat: np.ndarray,
    prices: np.ndarray,
    integral: bool = False,
    whole_pods: bool = False,
    gap: float = 1e-4,
    nodes: int = MILP_NODES,
    cache: LPCache | None = None,
    price_out: np.ndarray | None = None,
) -> LPResult | None:
    """Solve the LP of the module docstring with HiGHS.

    With `integral` (small problems only) it is solved as a MILP instead: integer node and pod counts, a cut
    ``y_dj <= floor(cap_j / size_d) * x_j`` per pair (the whole-pods-per-node limit the pooled capacity misses), and
    the exact pool cap through an integer ``c`` with ``x_pool <= c <= share * S + 1 - 1e-6``, i.e. ``ceil(share*S)``.

    `offerings` are indices into the problem's offerings, `group[i]` the group of ``offerings[i]`` and
    ``group_compat[g, d]`` whether class d may use group g (it must fit every offering of the group).
    """
    n_x = len(offerings)
    n_g = group_compat.shape[0]
    n_d = len(cl)
    free = p.free_capacity()[offerings].astype(float)
    size = cl.size.astype(float)
    price = prices[offerings]
    gi, di = np.nonzero(group_compat)  # y columns, ordered by group
    n_y = len(gi)
    spot_cols = np.flatnonzero(p.spot[offerings])
    share = p.max_pool_share
    pool_rows = share < 1.0 and len(spot_cols) > 0
    n_s = 1 if pool_rows else 0
    n_c = 1 if (pool_rows and integral) else 0
    n_var = n_x + n_y + n_d + n_s + n_c
    x0, y0, u0, s0 = 0, n_x, n_x + n_y, n_x + n_y + n_d
    c0 = s0 + n_s
    penalty = 10.0 * (float(price.max()) if n_x else 1.0) + 1.0
    key = None if (cache is None or integral) else LPCache.key(p, cl, offerings, group, group_compat, prices)
    if key is not None and key in cache._entries:
        h, n_ub = cache._entries.pop(key)
        counts = cl.count.astype(float)
        h.changeRowsBounds(n_d, np.arange(n_ub, n_ub + n_d, dtype=np.int32), counts, counts)
        h.changeColsBounds(n_d, np.arange(u0, u0 + n_d, dtype=np.int32), np.zeros(n_d), counts)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            cache._entries[key] = (h, n_ub)
            return _lp_result(h, price, x0, n_x, y0, gi, di, n_g, u0, n_d)
        # a warm re-solve that does not end optimal (numerical trouble) falls through to a fresh solve

    # capacity rows (as <=): sum_d size_dr y_dg - sum_{j in g} cap_jr x_j <= 0, row id 3*g + r
    rows, cols, vals = [], [], []
    for r in range(3):
        rows.append(3 * group + r)
        cols.append(x0 + np.arange(n_x))
        vals.append(-free[:, r])
        rows.append(3 * gi + r)
        cols.append(y0 + np.arange(n_y))
        vals.append(size[di, r])
    n_ub = 3 * n_g
    b_ub = [np.zeros(n_ub)]
    if pool_rows and not integral:
        # x_j - share * S <= 1 for each spot pool: a relaxation of x_j <= ceil(share * S)
        k = len(spot_cols)
        rr = n_ub + np.arange(k)
        rows += [rr, rr]
        cols += [x0 + spot_cols, np.full(k, s0)]
        vals += [np.ones(k), np.full(k, -share)]
        n_ub += k
        b_ub.append(np.ones(k))
    elif pool_rows:
        k = len(spot_cols)
        rr = n_ub + np.arange(k)
        rows += [rr, rr, np.array([n_ub + k]), np.array([n_ub + k])]
        cols += [x0 + spot_cols, np.full(k, c0), np.array([c0]), np.array([s0])]
        vals += [np.ones(k), -np.ones(k), np.ones(1), np.array([-share])]
        n_ub += k + 1
        b_ub += [np.zeros(k), np.array([1.0 - 1e-6])]
    if integral:
        # whole pods per node: y_dj <= floor(cap_j / size_d) * x_j (groups are single offerings here)
        first_of = np.zeros(n_g, dtype=np.int64)
        first_of[group] = np.arange(n_x)
        j_of_y = first_of[gi]
        k_dy = np.floor(free[j_of_y] / np.maximum(size[di], 1.0)).min(axis=1)
        rr = n_ub + np.arange(n_y)
        rows += [rr, rr]
        cols += [y0 + np.arange(n_y), x0 + j_of_y]
        vals += [np.ones(n_y), -k_dy]
        n_ub += n_y
        b_ub.append(np.zeros(n_y))
    a_ub = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_ub, n_var))

    # equality rows: sum_g y_dg + u_d = n_d; and S - sum_spot x_j = 0
    e_rows = [di, np.arange(n_d)]
    e_cols = [y0 + np.arange(n_y), u0 + np.arange(n_d)]
    e_vals = [np.ones(n_y), np.ones(n_d)]
    b_eq = [cl.count.astype(float)]
    if pool_rows:
        e_rows += [np.full(len(spot_cols), n_d), np.array([n_d])]
        e_cols += [x0 + spot_cols, np.array([s0])]
        e_vals += [-np.ones(len(spot_cols)), np.ones(1)]
        b_eq.append(np.zeros(1))
    a_eq = sp.csr_matrix(
        (np.concatenate(e_vals), (np.concatenate(e_rows), np.concatenate(e_cols))), shape=(n_d + n_s, n_var)
    )

    # An unplaced pod must cost more than any way of placing it (a whole node of the dearest offering).
    c = np.concatenate([price, np.zeros(n_y), np.full(n_d, penalty), np.zeros(n_s + n_c)])
    bounds = np.zeros((n_var, 2))
    bounds[:, 1] = np.inf
    bounds[u0 : u0 + n_d, 1] = cl.count
    if integral:
        # whole nodes (and the pool cap's integer c); pods stay pooled per offering, which the per-node packing
        # that follows turns into whole pods
        integrality = np.ones(n_var) if whole_pods else np.zeros(n_var)
        integrality[x0 : x0 + n_x] = 1
        integrality[c0 : c0 + n_c] = 1
        with quiet_stdout():
            res = milp(
                c,
                constraints=[
                    LinearConstraint(a_ub, -np.inf, np.concatenate(b_ub)),
                    LinearConstraint(a_eq, np.concatenate(b_eq), np.concatenate(b_eq)),
                ],
                integrality=integrality,
                bounds=Bounds(bounds[:, 0], bounds[:, 1]),
                options={"node_limit": nodes, "time_limit": MILP_SECONDS, "mip_rel_gap": gap},
            )
        if res.x is None:  # no incumbent within the time limit: the caller falls back to the LP
            return None
    else:
        # the LP through highspy itself: the same HiGHS dual simplex, and the solved instance can be kept for a
        # warm re-solve with other counts (LPCache)
        a_all = sp.vstack([a_ub, a_eq]).tocsc()
        row_lower = np.concatenate([np.full(n_ub, -highspy.kHighsInf), *b_eq])
        h = _highs_lp(c, bounds[:, 0], bounds[:, 1], row_lower, np.concatenate([*b_ub, *b_eq]), a_all)
        # no scaling: on these LPs (capacities in millicores and MiB, prices in dollars) HiGHS's scaling doubles
        # the dual simplex iterations; unscaled, the 20,000-pod problems solve 2-2.5x faster to the same optimum.
        # A solve that does not end optimal is run again with the default scaling.
        h.setOptionValue("simplex_scale_strategy", 0)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover - numerical safety net
            h.setOptionValue("simplex_scale_strategy", 1)
            h.clearSolver()
            h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover - always feasible, bounded
            raise RuntimeError(f"HiGHS failed on the planning LP: {h.modelStatusToString(h.getModelStatus())}")
        result = _lp_result(h, price, x0, n_x, y0, gi, di, n_g, u0, n_d)
        if price_out is not None:
            layout = (x0, n_x, y0, gi, di, n_g, u0, n_d)
            result = _price_out(h, price, layout, size, price_out & ~group_compat, n_ub, n_var)
        if key is not None:
            cache._entries[key] = (h, n_ub)
        return result
    sol = res.x
    x = np.maximum(sol[x0 : x0 + n_x], 0.0)
    y = np.zeros((n_d, n_g))
    y[di, gi] = np.maximum(sol[y0 : y0 + n_y], 0.0)
    bound = getattr(res, "mip_dual_bound", None)
    return LPResult(
        cost=float(price @ x),
        x=x,
        y=y,
        unplaced=np.maximum(sol[u0 : u0 + n_d], 0.0),
        bound=float(bound) if bound is not None and np.isfinite(bound) else None,
    )


def _price_out(
    h: _Highs,
    price: np.ndarray,
    layout: tuple[int, int, int, np.ndarray, np.ndarray, int, int, int],
    size: np.ndarray,
    more: np.ndarray,
    n_ub: int,
    n_var: int,
) -> LPResult:
    """Column generation over the (group, class) pod columns of `more` that the LP solved in `h` left out: every one
    whose reduced cost (from the row duals) is negative enters and the LP is re-solved warm, until none does (at most
    PRICE_OUT_ROUNDS rounds). `layout` is `_lp_result`'s column layout."""
    x0, n_x, y0, gi, di, n_g, u0, n_d = layout
    gi_x = np.zeros(0, dtype=np.int64)
    di_x = np.zeros(0, dtype=np.int64)
    avail = more.copy()
    for _ in range(PRICE_OUT_ROUNDS):
        pi = np.asarray(h.getSolution().row_dual, dtype=float)
        # reduced cost of pod column (g, d): 0 - a . pi, with a = size_d on group g's capacity rows, 1 on d's demand
        rc = -(pi[: 3 * n_g].reshape(n_g, 3) @ size.T) - pi[n_ub : n_ub + n_d][None, :]
        g_new, d_new = np.nonzero(avail & (rc < -1e-7))
        if g_new.size == 0:
            break
        avail[g_new, d_new] = False
        k = g_new.size
        idx = np.stack([3 * g_new, 3 * g_new + 1, 3 * g_new + 2, n_ub + d_new], axis=1).reshape(-1)
        val = np.concatenate([size[d_new], np.ones((k, 1))], axis=1).reshape(-1)
        h.addCols(
            k,
            np.zeros(k),
            np.zeros(k),
            np.full(k, highspy.kHighsInf),
            4 * k,
            np.arange(0, 4 * k, 4, dtype=np.int32),
            idx.astype(np.int32),
            val,
        )
        gi_x = np.concatenate([gi_x, g_new])
        di_x = np.concatenate([di_x, d_new])
        _run_warm(h)
    result = _lp_result(h, price, *layout)
    if gi_x.size:
        v = np.asarray(h.getSolution().col_value, dtype=float)
        result.y[di_x, gi_x] += np.maximum(v[n_var : n_var + gi_x.size], 0.0)
    return result


def _run_warm(h: _Highs, *, strict: bool = True) -> bool:
    """Re-solve the LP in `h` after columns were added or bounds changed. The model stays feasible and bounded, but
    a warm unscaled dual simplex can end without an answer (status "Unknown": the 20,000-pod `memory` benchmark
    problem of seed 9 did, and the planner raised); then it runs again with HiGHS's scaling, then from scratch.
    Whether it ended optimal; when not, raises if `strict` (the caller cannot go on without the LP's answer)."""
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        return True
    _, scaling = h.getOptionValue("simplex_scale_strategy")
    h.setOptionValue("simplex_scale_strategy", 1)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        h.clearSolver()
        h.run()
    h.setOptionValue("simplex_scale_strategy", scaling)
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    if not optimal and strict:
        raise RuntimeError(f"HiGHS failed on the planning LP: {h.modelStatusToString(h.getModelStatus())}")
    return optimal


def _lp_result(
    h: _Highs,
    price: np.ndarray,
    x0: int,
    n_x: int,
    y0: int,
    gi: np.ndarray,
    di: np.ndarray,
    n_g: int,
    u0: int,
    n_d: int,
) -> LPResult:
    """Read the answer of the LP solved in `h` (node counts, pods per class and group, unplaced, reduced costs)."""
    sol = h.getSolution()
    v = np.asarray(sol.col_value, dtype=float)
    x = np.maximum(v[x0 : x0 + n_x], 0.0)
    y = np.zeros((n_d, n_g))
    y[di, gi] = np.maximum(v[y0 : y0 + len(gi)], 0.0)
    return LPResult(
        cost=float(price @ x),
        x=x,
        y=y,
        unplaced=np.maximum(v[u0 : u0 + n_d], 0.0),
        # reduced costs of the node columns (basic ones are 0 up to the solver's tolerance)
        rc=np.asarray(sol.col_dual, dtype=float)[x0 : x0 + n_x].copy(),
    )


def _highs_lp(
    cost: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    a: sp.csc_matrix,
) -> _Highs:
    """A quiet HiGHS instance holding the LP min cost . x, row_lower <= a x <= row_upper, col bounds (inf allowed)."""
    lp = highspy.HighsLp()
    lp.num_col_ = a.shape[1]
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = col_lower
    lp.col_upper_ = np.where(np.isinf(col_upper), highspy.kHighsInf, col_upper)
    lp.row_lower_ = np.where(np.isinf(row_lower), -highspy.kHighsInf, row_lower)
    lp.row_upper_ = np.where(np.isinf(row_upper), highspy.kHighsInf, row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", MILP_SECONDS)
    h.passModel(lp)
    return h


def solve_packing_lp(cost: np.ndarray, a_ub: sp.csr_matrix, b_ub: np.ndarray) -> np.ndarray | None:
    """min cost . z subject to a_ub z <= b_ub, z >= 0 (a small LP of the packing step), through highspy; None unless
    solved to optimality."""
    n_rows, n_cols = a_ub.shape
    h = _highs_lp(cost, np.zeros(n_cols), np.full(n_cols, np.inf), np.full(n_rows, -np.inf), b_ub, a_ub.tocsc())
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().col_value, dtype=float)


def fit_groups(compat: np.ndarray, offerings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group `offerings` by their exact compatibility column; return (group per offering, (n_groups, D) compat)."""
    cols = compat[:, offerings].T  # (J, D)
    if cols.shape[1] == 0:
        return np.zeros(len(offerings), dtype=np.int64), np.zeros((1, 0), dtype=bool)
    packed = np.packbits(cols, axis=1)
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), cols[first]


@dataclass
class NodeResult:
    """Solution of `solve_nodes`: the offering of every open node, its pods per class, and unplaced pods per class."""

    cost: float
    off: np.ndarray  # (N,) offering index of every open node
    load: np.ndarray  # (N, D) pods per class on it
    unplaced: np.ndarray  # (D,)


def solve_nodes(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    copies: np.ndarray,
    max_vars: int = PACK_VARS,
    max_nodes: int = PACK_NODES,
) -> NodeResult | None:
    """Exact per-node packing as a MILP (small problems only): ``copies[j]`` candidate nodes of offering j.

    One binary ``o_b`` per candidate node and an integer ``q_bd`` per compatible (node, class) pair::

        min  sum_b p_b o_b + M sum_d u_d
        s.t. sum_d size_dr q_bd <= cap_br o_b          every node b and resource r (cpu, memory, pod slots)
             q_bd <= floor(cap_b / size_d) o_b          (implied; tightens the relaxation)
             sum_b q_bd + u_d = n_d                      every class d
             sum_{b in pool j} o_b <= c <= share * S + 1 - 1e-6   (S = open spot nodes: c = ceil(share * S))
             o_b >= o_{b+1}                              for copies of one offering (symmetry)

    Returns None when it would have more than `max_vars` variables; stopped after `max_nodes` branch-and-bound
    nodes (deterministic); returns None without an incumbent.
    """
    free = p.free_capacity()
    cand = np.repeat(np.arange(p.n_offerings), np.maximum(copies, 0))
    n_b, n_d = len(cand), len(cl)
    if n_b == 0 or n_d == 0:
        return None
    bi, di = np.nonzero(compat[:, cand].T)  # q columns (node-major)
    n_q = len(bi)
    size = cl.size.astype(float)
    cap = free[cand].astype(float)
    share = p.max_pool_share
    spot_b = np.flatnonzero(p.spot[cand])
    pool_rows = share < 1.0 and len(spot_b) > 0
    n_c = 1 if pool_rows else 0
    n_var = n_b + n_q + n_d + n_c
    if n_var > max_vars:
        return None
    o0, q0, u0, c0 = 0, n_b, n_b + n_q, n_b + n_q + n_d

    rows, cols, vals = [], [], []
    for r in range(3):
        rows += [3 * bi + r, 3 * np.arange(n_b) + r]
        cols += [q0 + np.arange(n_q), o0 + np.arange(n_b)]
        vals += [size[di, r], -cap[:, r]]
    n_ub = 3 * n_b
    k_q = np.floor(cap[bi] / np.maximum(size[di], 1.0)).min(axis=1)
    rr = n_ub + np.arange(n_q)
    rows += [rr, rr]
    cols += [q0 + np.arange(n_q), o0 + bi]
    vals += [np.ones(n_q), -k_q]
    n_ub += n_q
    hi = [np.zeros(n_ub)]
    same = np.flatnonzero(cand[1:] == cand[:-1])  # o_{b+1} - o_b <= 0
    rr = n_ub + np.arange(len(same))
    rows += [rr, rr]
    cols += [o0 + same + 1, o0 + same]
    vals += [np.ones(len(same)), -np.ones(len(same))]
    n_ub += len(same)
    hi.append(np.zeros(len(same)))
    if pool_rows:
        pools, pool_of = np.unique(cand[spot_b], return_inverse=True)
        rr = n_ub + pool_of.reshape(-1)
        k = len(pools)
        rows += [rr, n_ub + np.arange(k)]
        cols += [o0 + spot_b, np.full(k, c0)]
        vals += [np.ones(len(spot_b)), -np.ones(k)]
        rows += [np.full(len(spot_b) + 1, n_ub + k)]
        cols += [np.concatenate([o0 + spot_b, [c0]])]
        vals += [np.concatenate([np.full(len(spot_b), -share), [1.0]])]
        n_ub += k + 1
        hi += [np.zeros(k), np.array([1.0 - 1e-6])]
    a_ub = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_ub, n_var))
    a_eq = sp.csr_matrix(
        (
            np.concatenate([np.ones(n_q), np.ones(n_d)]),
            (np.concatenate([di, np.arange(n_d)]), np.concatenate([q0 + np.arange(n_q), u0 + np.arange(n_d)])),
        ),
        shape=(n_d, n_var),
    )
    price = prices[cand]
    penalty = 10.0 * float(price.max()) + 1.0
    c = np.concatenate([price, np.zeros(n_q), np.full(n_d, penalty), np.zeros(n_c)])
    ub = np.full(n_var, np.inf)
    ub[o0 : o0 + n_b] = 1
    ub[u0 : u0 + n_d] = cl.count
    ub[q0 : q0 + n_q] = np.minimum(k_q, cl.count[di])
    count = cl.count.astype(float)
    res = milp(
        c,
        constraints=[LinearConstraint(a_ub, -np.inf, np.concatenate(hi)), LinearConstraint(a_eq, count, count)],
        integrality=np.ones(n_var),
        bounds=Bounds(np.zeros(n_var), ub),
        options={"node_limit": max_nodes, "time_limit": MILP_SECONDS},
    )
    if res.x is None:
        return None
    sol = np.round(res.x).astype(np.int64)
    open_b = sol[o0 : o0 + n_b] > 0
    load = np.zeros((n_b, n_d), dtype=np.int64)
    load[bi, di] = sol[q0 : q0 + n_q]
    # an open empty spot node may be what lets the pool cap admit the others: open nodes stay
    return NodeResult(
        cost=float(price[open_b].sum()),
        off=cand[open_b],
        load=load[open_b],
        unplaced=np.maximum(sol[u0 : u0 + n_d], 0),
    )
