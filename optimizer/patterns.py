"""Node patterns: the exact per-node model of a small problem, by column generation (HiGHS through highspy).

A *pattern* is one node: an offering j and a whole number of pods ``a_d`` of every demand class that fits on it
(cpu, memory and pod slots after the daemonset). The master program picks how many nodes of every pattern to open::

    min  sum_k p_j(k) l_k + M sum_d u_d
    s.t. sum_k a_dk l_k + u_d >= n_d                          every class d (cover; surplus pods are dropped later)
         sum_{k on pool j} l_k - c <= 0                       every spot pool j       } only under a pool cap:
         c - share * sum_{spot k} l_k <= 1 - 1e-6             c integer = ceil(share*S)}
         l_k, c integer >= 0

Unlike the pooled whole-node model (pods pooled per offering), every solution of this one is a plan node by node,
so nothing is lost turning it into nodes. Its columns are generated: the LP relaxation is solved over the patterns
known so far, and new patterns of negative reduced cost are priced out per offering by greedy fills (classes in
several value-density orders, then seeded with each class first), a heuristic for the 3-dimensional knapsack.
The integer program then runs over the patterns whose reduced cost could still improve on the incumbent (the plan
the caller found otherwise, given as its start), under a branch-and-bound node limit: deterministic, no wall clock
decides the answer (a time limit far behind is only a safety net).

`pack_by_patterns` applies the same idea to one offering's share of a plan of many pods (above 8,000, where the
model above does not run): patterns of that offering only, the most pod value into a given number of nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import highspy
import numpy as np
import scipy.sparse as sparse
from highspy._core import _Highs  # the bare solver: the `Highs` wrapper prints a banner to stdout

from .model import Classes, NodeResult, _run_warm, quiet_stdout
from .problem import Problem, _ceil_share

__all__ = ["PATTERN_ITERATIONS", "PATTERN_MIP_COLUMNS", "PATTERN_MIP_NODES", "pack_by_patterns", "solve_patterns"]

#: Column-generation rounds (each: one LP re-solve and one pricing pass over every offering).
PATTERN_ITERATIONS = 30
#: Branch-and-bound nodes of the integer program over the generated patterns (deterministic limit).
PATTERN_MIP_NODES = 200
#: The integer program runs over at most this many patterns (those of smallest reduced cost).
PATTERN_MIP_COLUMNS = 1500
#: At most this many new patterns enter the LP per round (the most negative reduced costs).
PATTERNS_PER_ROUND = 200
#: Broad pricing (`solve_patterns(broad=True)`): the cpu weights of the extra density orders (memory: the rest).
BROAD_CPU_WEIGHTS = (0.2, 0.35, 0.5, 0.65, 0.8)
#: Diving (large problems): at most this many fixing steps, the first DIVE_PRICING of them followed by a pricing pass
#: adding at most DIVE_PATTERNS patterns shaped for the pods not yet fixed.
DIVE_STEPS = 400
DIVE_PRICING = 60
DIVE_PATTERNS = 40
#: A hang guard only, never what decides a plan: measured solves take at most a few seconds of CPU, 100 times less,
#: so the node and round limits above decide (the same input gives the same plan, however loaded the machine).
PATTERN_SECONDS = 600.0
#: `pack_by_patterns` (one offering's share of a plan of many pods): column-generation rounds, and how many classes
#: (of highest reduced value in each density order) start a greedy fill of their own each round.
PACK_ROUNDS = 20
PACK_SEEDS = 8

_INF = highspy.kHighsInf
_BIG = np.iinfo(np.int64).max // 4


@dataclass
class _Master:
    """The HiGHS model and the bookkeeping of its columns (patterns, slacks, the pool-cap integer)."""

    h: _Highs
    n_rows: int
    pool_row: dict[int, int]  # spot offering -> its row
    c_row: int  # row of c - share * S (or -1); with `s_form`, the row S - sum of spot nodes = 0
    c_col: int  # column of c (or -1); with `s_form`, the column S
    first_pattern: int  # columns before this are slacks and c
    off: list[int]  # offering of every pattern column (from first_pattern on)
    load: list[np.ndarray]  # pods per class of every pattern column
    seen: set[bytes]
    s_form: bool = False


def _pattern_entries(m: _Master, j: int, a: np.ndarray, spot: bool, share: float) -> tuple[list[int], list[float]]:
    d = np.flatnonzero(a)
    idx = d.tolist()
    val = a[d].astype(float).tolist()
    if spot and m.c_row >= 0:
        idx += [m.pool_row[j], m.c_row]
        val += [1.0, -1.0 if m.s_form else -share]
    return idx, val


def _add_patterns(m: _Master, p: Problem, prices: np.ndarray, items: list[tuple[int, np.ndarray]]) -> int:
    """Add the patterns not seen before as LP columns; return how many were added."""
    share = p.max_pool_share
    costs, starts, index, value = [], [], [], []
    for j, a in items:
        key = j.to_bytes(4, "little") + a.astype(np.int32).tobytes()
        if key in m.seen:
            continue
        m.seen.add(key)
        idx, val = _pattern_entries(m, j, a, bool(p.spot[j]), share)
        starts.append(len(index))
        index += idx
        value += val
        costs.append(float(prices[j]))
        m.off.append(j)
        m.load.append(a.astype(np.int64))
    if costs:
        n = len(costs)
        m.h.addCols(
            n,
            np.array(costs),
            np.zeros(n),
            np.full(n, _INF),
            len(index),
            np.array(starts, dtype=np.int32),
            np.array(index, dtype=np.int32),
            np.array(value, dtype=float),
        )
    return len(costs)


def _fill(
    order: np.ndarray, kmax: np.ndarray, size: np.ndarray, free: np.ndarray, a: np.ndarray | None = None
) -> np.ndarray:
    """Greedy fill of one node per offering: classes in `order` (T, J) take as many pods as still fit (up to
    `kmax`); `a` (D, J) is what the nodes hold already. Returns pods per (class, offering)."""
    n_j = free.shape[0]
    cols = np.arange(n_j)
    a = np.zeros_like(kmax) if a is None else a.copy()
    room = free - (a.T @ size)
    for t in range(order.shape[0]):
        d = order[t]
        s = size[d]  # (J, 3)
        fit = np.where(s > 0, room // np.maximum(s, 1), _BIG).min(axis=1)
        take = np.maximum(np.minimum(fit, kmax[d, cols] - a[d, cols]), 0)
        a[d, cols] += take
        room -= take[:, None] * s
    return a


def solve_patterns(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    offerings: np.ndarray,
    incumbent: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    integer: bool = True,
    dynamic: bool = True,
    mip_nodes: int = 0,
    dive: bool = False,
    dive_up: float | None | tuple[float | None, ...] = None,
    mip_columns: int = PATTERN_MIP_COLUMNS,
    s_form: bool = False,
    mip_pool: bool = True,
    skip_gap: float = -1.0,
    lean_mip: bool = False,
    broad: bool = False,
) -> NodeResult | None:
    """The per-node optimum over generated patterns on `offerings` (see the module docstring).

    Without `integer` (large problems) no integer program runs: the LP's node counts are rounded down and the pods
    they leave over are returned as unplaced, for the caller to place; pricing then uses only the one-pass fills.

    `compat` (D, J) must already exclude offerings new nodes may not use; `incumbent` is (offering per node, pods per
    class per node, unplaced per class) of a known plan: its nodes enter as patterns and it starts the integer
    program, so the answer is never worse than it. Returns None when there is nothing to place, and, with `skip_gap`
    >= 0, when the incumbent is within that ratio of the LP over the patterns (nothing to gain worth the integer
    program). `dive_up` may be a tuple: the dive (and the integer program after it) then runs once per value, each
    from a copy of the same converged LP, and the cheapest result is returned.

    With `broad`, pricing takes the classes in five more density orders (cpu and memory shares mixed 1:4 to 4:1) and,
    with `s_form` under a pool cap, prices spot patterns by their exact reduced cost: a second, different column
    generation for callers that run both and keep the cheaper plan."""
    need = np.where(compat.any(axis=1), cl.count, 0).astype(np.int64)
    n_d = len(cl)
    if n_d == 0 or need.sum() == 0 or len(offerings) == 0:
        return None
    size = cl.size.astype(np.int64)
    share = p.max_pool_share
    free_all = p.free_capacity()
    offs = np.asarray(offerings, dtype=np.int64)
    free = free_all[offs]
    with np.errstate(divide="ignore"):
        per = np.where(size[:, None, :] > 0, free[None, :, :] // np.maximum(size[:, None, :], 1), _BIG).min(axis=2)
    kmax = np.where(compat[:, offs], np.minimum(per, need[:, None]), 0).astype(np.int64)
    kmax = np.maximum(kmax, 0)
    price = prices[offs]

    # --- the master's rows and fixed columns ---------------------------------------------------------------------
    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", PATTERN_SECONDS)
    inc_offs = [] if incumbent is None else np.unique(incumbent[0]).tolist()
    spot_offs = sorted({int(j) for j in offs[p.spot[offs]]} | {int(j) for j in inc_offs if p.spot[j]})
    pool = share < 1.0 and len(spot_offs) > 0
    lower = [float(x) for x in need]
    upper = [_INF] * n_d
    pool_row: dict[int, int] = {}
    c_row = -1
    if pool:
        for j in spot_offs:
            pool_row[j] = len(lower)
            lower.append(-_INF)
            upper.append(0.0)
        if s_form:  # pool rows are l_j - share * S <= 1 - 1e-6 (integer l_j: l_j <= ceil(share * S))
            upper[n_d:] = [1.0 - 1e-6] * len(spot_offs)
        c_row = len(lower)
        lower.append(0.0 if s_form else -_INF)
        upper.append(0.0 if s_form else 1.0 - 1e-6)
    n_rows = len(lower)
    h.addRows(
        n_rows,
        np.array(lower),
        np.array(upper),
        0,
        np.zeros(n_rows, dtype=np.int32),
        np.zeros(0, np.int32),
        np.zeros(0),
    )
    penalty = 10.0 * float(max(price.max(), 1e-6)) + 1.0
    # slacks u_d: pods left unplaced, at a price above any node
    h.addCols(
        n_d,
        np.full(n_d, penalty),
        np.zeros(n_d),
        need.astype(float),
        n_d,
        np.arange(n_d, dtype=np.int32),
        np.arange(n_d, dtype=np.int32),
        np.ones(n_d),
    )
    c_col = -1
    if pool:
        c_col = n_d
        idx = [pool_row[j] for j in spot_offs] + [c_row]
        h.addCols(
            1,
            np.zeros(1),
            np.zeros(1),
            np.full(1, _INF),
            len(idx),
            np.zeros(1, dtype=np.int32),
            np.array(idx, dtype=np.int32),
            np.array([-share if s_form else -1.0] * len(spot_offs) + [1.0]),
        )
    m = _Master(h, n_rows, pool_row, c_row, c_col, n_d + (1 if pool else 0), [], [], set(), s_form)

    # --- starting patterns: every class alone on every offering it fits, and the incumbent's nodes ------------------
    items: list[tuple[int, np.ndarray]] = []
    dd, jj = np.nonzero(kmax)
    for d, k in zip(dd.tolist(), jj.tolist(), strict=True):
        a = np.zeros(n_d, dtype=np.int64)
        a[d] = kmax[d, k]
        items.append((int(offs[k]), a))
    inc_cols: dict[bytes, int] = {}
    if incumbent is not None:
        for j, a in zip(incumbent[0].tolist(), incumbent[1], strict=True):
            a = np.minimum(np.asarray(a, dtype=np.int64), need)
            items.append((int(j), a))
            key = int(j).to_bytes(4, "little") + a.astype(np.int32).tobytes()
            inc_cols[key] = inc_cols.get(key, 0) + 1
    _add_patterns(m, p, prices, items)

    # --- column generation -------------------------------------------------------------------------------------------
    active_rows = np.arange(n_d)
    spot_mask = p.spot[offs]
    frac = size[:, None, :] / np.maximum(free[None, :, :], 1)  # (D, J, 3)
    weights = [
        frac.max(axis=2),
        frac.sum(axis=2),
        frac[:, :, 0] + 1e-3 * frac[:, :, 2],
        frac[:, :, 1] + 1e-3 * frac[:, :, 2],
        np.ones(kmax.shape),
    ]
    if broad:
        weights += [a * frac[:, :, 0] + (1.0 - a) * frac[:, :, 1] + 0.05 * frac[:, :, 2] for a in BROAD_CPU_WEIGHTS]
    pool_rows = np.array([pool_row[int(j)] if pool and spot_mask[k] else 0 for k, j in enumerate(offs)], dtype=np.int64)

    def price_once(limit: int, seeded: bool, kcap: np.ndarray) -> int:
        """One pricing pass at the current LP duals (classes capped per node by `kcap`); patterns added."""
        sol = h.getSolution()
        obj = h.getInfo().objective_function_value
        duals = np.asarray(sol.row_dual, dtype=float)
        pi = np.maximum(duals[active_rows], 0.0)
        eff = price.copy()
        if pool:
            # a spot pattern has 1 in its pool's row and -share in the row of c (exact reduced cost); with `s_form`,
            # -1 in the row of S, whose dual the exact reduced cost adds: pricing subtracts it instead (unless
            # `broad`), a heuristic choice of which patterns enter (measured: cheaper plans on 4 of 6 pool-capped
            # benchmark problems)
            c_dual = (duals[c_row] if broad else -duals[c_row]) if s_form else share * duals[c_row]
            eff = eff - np.where(spot_mask, duals[pool_rows] - c_dual, 0.0)
        km = np.where((pi > 1e-9)[:, None], kcap, 0)
        if not km.any():
            return 0
        tol = 1e-9 * max(1.0, abs(obj))
        found = _price_round(km, size, free, pi, eff, weights, tol, dynamic=dynamic)
        if not found and seeded:
            found = _price_seeded(km, size, free, pi, eff, weights[0], tol)
        if not found:
            return 0
        found.sort(key=lambda t: t[0])
        return _add_patterns(m, p, prices, [(int(offs[k]), a) for _, k, a in found[:limit]])

    lp_obj = 0.0
    for _ in range(PATTERN_ITERATIONS):
        _run_warm(h, strict=False)
        lp_obj = h.getInfo().objective_function_value
        if price_once(PATTERNS_PER_ROUND, True, kmax) == 0:
            break
    else:
        _run_warm(h, strict=False)
        lp_obj = h.getInfo().objective_function_value

    # rounding: every dive variant starts from the same converged LP (a copy of the master), the cheapest result wins
    ups = list(dive_up) if isinstance(dive_up, tuple) else [dive_up]
    saved = (h.getLp(), h.getBasis(), list(m.off), list(m.load), set(m.seen)) if len(ups) > 1 else None
    best: NodeResult | None = None
    for v, up in enumerate(ups):
        if v > 0 and saved is not None:
            h = _Highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("time_limit", PATTERN_SECONDS)
            h.passModel(saved[0])
            h.setBasis(saved[1])
            m = replace(m, h=h, off=list(saved[2]), load=list(saved[3]), seen=set(saved[4]))
        fixed = np.zeros(0)
        if dive:
            fixed = _dive(h, m, need, price_once, kmax, up)
        if not integer:
            lam = np.floor(np.asarray(h.getSolution().col_value, dtype=float)[m.first_pattern :] + 1e-9)
            return _nodes(m, lam.astype(np.int64), need, cl.count, size, free_all, prices, n_d)

        # --- right-sized patterns for what whole LP nodes leave over: the integer program needs them -----------------
        lam = np.asarray(h.getSolution().col_value, dtype=float)[m.first_pattern :]
        pi = np.maximum(np.asarray(h.getSolution().row_dual, dtype=float)[:n_d], 0.0)
        pi = np.where(pi > 1e-9, pi, 1e-6 * float(price.min(initial=1.0)))
        for _ in range(3):
            covered = np.zeros(n_d, dtype=np.int64)
            for k in np.flatnonzero(lam >= 1.0 - 1e-9).tolist():
                covered += m.load[k] * math.floor(lam[k] + 1e-9)
            residual = np.maximum(need - covered, 0)
            if residual.sum() == 0:
                break
            km = np.minimum(kmax, residual[:, None])
            items = []
            fills = [
                _fill(np.argsort(-np.where(km > 0, pi[:, None] / np.maximum(w, 1e-12), -1.0), axis=0), km, size, free)
                for w in weights[:2]
            ]
            fills += [_fill_dynamic(km, size, free, pi, total) for total in ((False, True) if dynamic else ())]
            for a in fills:
                for k in np.flatnonzero(a.any(axis=0)).tolist():
                    items.append((int(offs[k]), a[:, k].copy()))
            if _add_patterns(m, p, prices, items) == 0:
                break
            _run_warm(h, strict=False)
            lam = np.asarray(h.getSolution().col_value, dtype=float)[m.first_pattern :]
        lp_obj = h.getInfo().objective_function_value

        # --- the integer program over the patterns that may still pay -----------------------------------------------
        n_cols = h.getNumCol()
        col_dual = np.asarray(h.getSolution().col_dual, dtype=float)
        start = np.zeros(n_cols)
        ub_cost = math.inf
        if incumbent is not None:
            for k, (j, a) in enumerate(zip(m.off, m.load, strict=True)):
                key = int(j).to_bytes(4, "little") + a.astype(np.int32).tobytes()
                start[m.first_pattern + k] = inc_cols.get(key, 0)
            covered = np.zeros(n_d, dtype=np.int64)
            for k in np.flatnonzero(start[m.first_pattern :]).tolist():
                covered += m.load[k] * int(start[m.first_pattern + k])
            start[:n_d] = np.maximum(need - covered, 0)
            if pool:
                s = sum(int(start[m.first_pattern + k]) for k, j in enumerate(m.off) if p.spot[j])
                start[c_col] = s if s_form else (_ceil_share(share, s) if s else 0)
            ub_cost = float(start[:n_d] @ np.full(n_d, penalty)) + sum(
                float(prices[j]) * start[m.first_pattern + k] for k, j in enumerate(m.off)
            )
        if incumbent is not None and skip_gap >= 0.0 and ub_cost <= lp_obj * (1.0 + skip_gap) + 1e-9:
            continue
        gap = ub_cost - lp_obj
        pattern_cols = np.arange(m.first_pattern, n_cols)
        rc = col_dual[m.first_pattern :]
        keep = rc <= gap + 1e-7
        if len(fixed):
            keep[: len(fixed)] |= fixed > 0
        if keep.sum() > mip_columns:  # the integer program sees the patterns of smallest reduced cost only
            keep &= rc <= np.sort(rc)[mip_columns - 1]
            if len(fixed):
                keep[: len(fixed)] |= fixed > 0
        drop = pattern_cols[~keep]
        # a fresh solver for the integer program (re-running the LP's instance as a MIP mis-reports its objective)
        lp = h.getLp()
        upper = np.asarray(lp.col_upper_, dtype=float)
        upper[drop] = 0.0
        lp.col_upper_ = upper
        integrality = np.zeros(n_cols, dtype=np.uint8)
        integrality[pattern_cols] = 1
        if pool and not s_form:
            integrality[c_col] = 1
        lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integrality]
        if pool and not mip_pool:  # the integer program without the pool cap (the caller spreads the pools)
            row_upper = np.asarray(lp.row_upper_, dtype=float)
            row_upper[[pool_row[j] for j in spot_offs]] = _INF
            lp.row_upper_ = row_upper
        h = _Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", PATTERN_SECONDS)
        h.setOptionValue("mip_max_nodes", mip_nodes or PATTERN_MIP_NODES)
        h.setOptionValue("mip_rel_gap", 1e-4)
        if lean_mip:
            # large problems: no restart (a second presolve and root solve) after the root node: the same node limit
            # at about 60% of the CPU time on web 1,000 / 6,000 pods (a deterministic setting, no clock)
            h.setOptionValue("mip_allow_restart", False)
        h.passModel(lp)
        # (no MIP start: HiGHS 1.16 answers a run started from a given solution with that solution and a wrong
        # objective; the incumbent bounds the columns above and the caller keeps whichever plan is cheaper)
        with quiet_stdout():
            h.run()
        sol = h.getSolution()
        if not sol.value_valid:
            continue
        x = np.round(np.asarray(sol.col_value, dtype=float)).astype(np.int64)
        res = _nodes(m, np.maximum(x[m.first_pattern :], 0), need, cl.count, size, free_all, prices, n_d)
        if best is None or (res.unplaced.sum(), res.cost) < (best.unplaced.sum(), best.cost - 1e-9):
            best = res

    return best


def _dive(
    h: _Highs, m: _Master, need: np.ndarray, price_once: Any, kmax: np.ndarray, dive_up: float | None
) -> np.ndarray:
    """Round the master LP by diving: every pattern the LP uses whole is fixed (a lower bound) at that many nodes;
    when it uses none whole, the pattern it uses most gets one more node if it uses it at least `dive_up` (never
    without `dive_up`). After each fix the LP is re-solved, the first DIVE_PRICING times with up to DIVE_PATTERNS new
    patterns priced for the pods not yet fixed. Stops when nothing more is fixed or after DIVE_STEPS fixes (fixed
    limits: deterministic). Returns the fixed node counts per pattern; the integer program then decides the rest."""
    first = m.first_pattern
    lb = np.zeros(h.getNumCol() - first)
    for step in range(DIVE_STEPS):
        _run_warm(h, strict=False)
        lam = np.asarray(h.getSolution().col_value, dtype=float)[first:]
        if len(lb) < len(lam):
            lb = np.concatenate([lb, np.zeros(len(lam) - len(lb))])
        extra = lam - lb
        whole = np.flatnonzero(extra >= 1.0 - 1e-6)
        if len(whole):
            new_lb = lb[whole] + np.floor(extra[whole] + 1e-6)
        else:
            k = int(np.argmax(extra))
            if dive_up is None or extra[k] < dive_up:
                return lb
            whole, new_lb = np.array([k]), np.array([lb[k] + 1.0])
        lb[whole] = new_lb
        h.changeColsBounds(len(whole), (whole + first).astype(np.int32), new_lb, np.full(len(whole), _INF))
        if step < DIVE_PRICING:
            _run_warm(h, strict=False)
            covered = np.zeros(len(need), dtype=np.int64)
            for k in np.flatnonzero(lb).tolist():
                covered += m.load[k] * int(lb[k])
            rest = np.maximum(need - covered, 0)
            price_once(DIVE_PATTERNS, False, np.minimum(kmax, rest[:, None]))
    _run_warm(h, strict=False)
    lam = np.asarray(h.getSolution().col_value, dtype=float)[first:]
    return np.concatenate([lb, np.zeros(len(lam) - len(lb))])


def _nodes(
    m: _Master,
    lam: np.ndarray,
    need: np.ndarray,
    count: np.ndarray,
    size: np.ndarray,
    free_all: np.ndarray,
    prices: np.ndarray,
    n_d: int,
) -> NodeResult:
    """`lam[k]` nodes of every pattern k, surplus pods taken off the least-filled nodes first."""
    nodes_off: list[int] = []
    nodes_load: list[np.ndarray] = []
    for k in np.flatnonzero(lam).tolist():
        for _ in range(int(lam[k])):
            nodes_off.append(m.off[k])
            nodes_load.append(m.load[k].copy())
    off = np.array(nodes_off, dtype=np.int64)
    load = np.array(nodes_load, dtype=np.int64).reshape(len(nodes_off), n_d)
    surplus = load.sum(axis=0) - need
    if len(off):
        fill = (load @ size / np.maximum(free_all[off], 1)).max(axis=1)
        for d in np.flatnonzero(surplus > 0).tolist():
            for i in np.argsort(fill, kind="stable").tolist():
                take = int(min(surplus[d], load[i, d]))
                load[i, d] -= take
                surplus[d] -= take
                if surplus[d] == 0:
                    break
    unplaced = np.maximum(need - load.sum(axis=0), 0) + (count - need)
    return NodeResult(cost=float(prices[off].sum()), off=off, load=load, unplaced=unplaced)


def _fill_dynamic(km: np.ndarray, size: np.ndarray, free: np.ndarray, pi: np.ndarray, total: bool) -> np.ndarray:
    """Greedy fill pod by pod: each step every offering's node takes the class of highest value per share of the
    room it has *left* (its largest share, or the sum of its shares with `total`), so CPU-heavy and memory-heavy pods
    end up side by side. Returns pods per (class, offering)."""
    n_d, n_j = km.shape
    a = np.zeros_like(km)
    room = free.astype(float).copy()
    cols = np.arange(n_j)
    live = np.ones(n_j, dtype=bool)
    sz = size.astype(float)
    for _ in range(int(km.sum(axis=0).max(initial=0))):
        ok = (a < km) & (sz[:, None, :] <= room[None, :, :] + 1e-9).all(axis=2)
        ok &= live[None, :]
        if not ok.any():
            break
        share = sz[:, None, :] / np.maximum(room[None, :, :], 1e-9)
        w = share.sum(axis=2) if total else share.max(axis=2)
        score = np.where(ok, pi[:, None] / np.maximum(w, 1e-12), -1.0)
        d = np.argmax(score, axis=0)
        go = ok[d, cols]
        live &= go
        a[d[go], cols[go]] += 1
        room[go] -= sz[d[go]]
    return a


def _price_round(
    km: np.ndarray,
    size: np.ndarray,
    free: np.ndarray,
    pi: np.ndarray,
    eff: np.ndarray,
    weights: list[np.ndarray],
    tol: float,
    dynamic: bool = True,
) -> list[tuple[float, int, np.ndarray]]:
    """One greedy fill per offering and density order; the fills of negative reduced cost (best per offering)."""
    best: dict[int, tuple[float, int, np.ndarray]] = {}
    for w in weights:
        density = np.where(km > 0, pi[:, None] / np.maximum(w, 1e-12), -1.0)
        order = np.argsort(-density, axis=0, kind="stable")
        a = _fill(order, km, size, free)
        _collect(a, pi, eff, tol, best)
    for total in (False, True) if dynamic else ():
        _collect(_fill_dynamic(km, size, free, pi, total), pi, eff, tol, best)
    return list(best.values())


def _price_seeded(
    km: np.ndarray, size: np.ndarray, free: np.ndarray, pi: np.ndarray, eff: np.ndarray, w: np.ndarray, tol: float
) -> list[tuple[float, int, np.ndarray]]:
    """Greedy fills that start with every class first (all that fit, then one pod), the rest by value density."""
    best: dict[int, tuple[float, int, np.ndarray]] = {}
    density = np.where(km > 0, pi[:, None] / np.maximum(w, 1e-12), -1.0)
    order = np.argsort(-density, axis=0, kind="stable")
    for d0 in np.flatnonzero(km.any(axis=1)).tolist():
        for first in (None, 1):
            a0 = np.zeros_like(km)
            a0[d0] = km[d0] if first is None else np.minimum(km[d0], first)
            a = _fill(order, km, size, free, a0)
            _collect(a, pi, eff, tol, best)
    return list(best.values())


def _collect(
    a: np.ndarray, pi: np.ndarray, eff: np.ndarray, tol: float, best: dict[int, tuple[float, int, np.ndarray]]
) -> None:
    rc = eff - pi @ a
    for k in np.flatnonzero((rc < -tol) & a.any(axis=0)).tolist():
        if k not in best or rc[k] < best[k][0]:
            best[k] = (float(rc[k]), k, a[:, k].copy())


def _fills(room: np.ndarray, a: np.ndarray, size: np.ndarray, orders: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Greedy fills of nodes with free `room` already holding `a` (both (F, ...), modified in place), one per row of
    `orders` (class orders, no class twice in a row): each class in turn takes as many pods as fit, at most its
    `limit` (same shape as `orders`; 0 skips it). All fills run at once, one class position at a time. Returns
    `a`."""
    rows = np.arange(len(a))
    step = np.maximum(size, 1)[orders]  # (F, T, 3)
    grow = size[orders]
    took = np.zeros(orders.shape, dtype=np.int64)
    # the smallest request of any class in each resource: once every fill has less room than that in some resource,
    # no class fits any more and the fills are done (many classes: most of the positions left take nothing)
    least = size.min(axis=0)
    for t in range(orders.shape[1]):
        take = np.minimum((room // step[:, t]).min(axis=1), limit[:, t])
        np.maximum(take, 0, out=take)
        took[:, t] = take
        room -= take[:, None] * grow[:, t]
        if t % 8 == 7 and (room < least).any(axis=1).all():
            break
    a[rows[:, None], orders] += took
    return a


def pack_by_patterns(
    cap: np.ndarray,
    size: np.ndarray,
    count: np.ndarray,
    nodes: int,
    value: np.ndarray,
    start: np.ndarray,
    rounds: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Whole nodes of one offering for `count` pods per class: the nodes of the patterns an LP uses whole, and the
    pods they leave (which the caller packs into the nodes left of `nodes`).

    The LP: ``max sum_k (value . a_k) l_k  s.t.  sum_k a_k l_k <= count,  sum_k l_k <= nodes``, over patterns (one
    node's pods, `a_k`) generated by column generation, started from each class alone and the distinct nodes of the
    packing `start` (so the LP packs at least what `start` does). Pricing: greedy fills in five density orders of
    the classes' reduced values (per summed share, largest share, cpu share, memory share, and alone), each also
    started with one pod of each of the PACK_SEEDS classes first in it; every fill of positive reduced value enters.
    At most `rounds` rounds (PACK_ROUNDS). Counts and rounds decide, never a clock."""
    idx = np.flatnonzero(count > 0)
    k = len(idx)
    if k == 0 or nodes <= 0:
        return np.zeros((0, len(count)), dtype=np.int64), count.copy()
    sz = size[idx].astype(np.int64)
    cnt = count[idx].astype(np.int64)
    val = value[idx].astype(float)
    share = sz / np.maximum(cap.astype(float), 1.0)
    seen: set[bytes] = set()
    pats: list[np.ndarray] = []

    def new(cand: np.ndarray) -> np.ndarray:
        out = []
        for a in np.unique(cand, axis=0):
            key = a.tobytes()
            if a.any() and key not in seen:
                seen.add(key)
                out.append(a)
        pats.extend(out)
        return np.array(out, dtype=np.int64).reshape(-1, k)

    alone = np.diag(np.minimum(cnt, (cap // np.maximum(sz, 1)).min(axis=1)))
    first = new(np.vstack([alone, start[:, idx]]))

    def columns(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        m = sparse.csc_matrix(np.vstack([a.T, np.ones((1, len(a)))]))
        return -(a @ val), m.indptr, m.indices, m.data

    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", PATTERN_SECONDS)
    h.addRows(
        k + 1,
        np.full(k + 1, -_INF),
        np.concatenate([cnt, [nodes]]).astype(float),
        0,
        np.zeros(k + 1, dtype=np.int32),
        np.zeros(0, np.int32),
        np.zeros(0),
    )
    cost, start_, index, vals = columns(first)
    h.addCols(len(first), cost, np.zeros(len(first)), np.full(len(first), _INF), len(vals), start_, index, vals)
    seeds = min(PACK_SEEDS, k)
    for _ in range(PACK_ROUNDS if rounds is None else rounds):
        _run_warm(h, strict=False)
        dual = -np.asarray(h.getSolution().row_dual, dtype=float)  # >= 0 on these <= rows of a minimisation
        w = val - dual[:k]
        dens = np.stack(
            [
                w / np.maximum(share.sum(axis=1), 1e-9),
                w / np.maximum(share.max(axis=1), 1e-9),
                w / np.maximum(share[:, 0], 1e-9),
                w / np.maximum(share[:, 1], 1e-9),
                w,
            ]
        )
        orders = np.argsort(-dens, axis=1, kind="stable")
        # the seeded fills' orders: each density order without its seed class
        seeded = np.repeat(orders, seeds, axis=0)
        lead = orders[:, :seeds].reshape(-1)
        rest = seeded[seeded != lead[:, None]].reshape(len(lead), k - 1)
        # each seeded fill starts with one pod of its seed class (fills that cannot are dropped)
        room = cap.astype(np.int64) - sz[lead]
        ok = (room >= 0).all(axis=1) & (w[lead] > 0)
        a = np.zeros((int(ok.sum()), k), dtype=np.int64)
        a[np.arange(len(a)), lead[ok]] = 1
        plain = np.zeros((len(orders), k), dtype=np.int64)
        # one pass for both kinds: a seeded fill's order ends with its seed class, which takes no more there
        ends = np.column_stack([rest[ok], lead[ok]])
        both = np.vstack([orders, ends])
        limit = np.where(w[both] > 0, cnt[both], 0)
        limit[len(orders) :, -1] = 0
        cand = _fills(
            np.vstack([np.tile(cap.astype(np.int64), (len(orders), 1)), room[ok]]),
            np.vstack([plain, a]),
            sz,
            both,
            limit,
        )
        cand = cand[cand @ w - dual[k] > 1e-9]
        add = new(cand) if len(cand) else np.zeros((0, k), dtype=np.int64)
        if len(add) == 0:
            break
        cost, start_, index, vals = columns(add)
        h.addCols(len(add), cost, np.zeros(len(add)), np.full(len(add), _INF), len(vals), start_, index, vals)
    _run_warm(h, strict=False)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover - always feasible, bounded
        return np.zeros((0, len(count)), dtype=np.int64), count.copy()
    used = np.floor(np.asarray(h.getSolution().col_value, dtype=float) + 1e-6).astype(np.int64)
    loads = np.zeros((int(used.sum()), len(count)), dtype=np.int64)
    loads[:, idx] = np.repeat(np.array(pats, dtype=np.int64), used, axis=0)
    return loads, count - loads.sum(axis=0)
