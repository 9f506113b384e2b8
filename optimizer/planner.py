"""The planner: LP node mix, per-type packing, repair, consolidation and pool spreading (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sparse

from .model import (
    MILP_NODES,
    PACK_NODES,
    PACK_VARS,
    Classes,
    LPCache,
    LPResult,
    NodeResult,
    build_classes,
    compatibility,
    fit_groups,
    solve_lp,
    solve_nodes,
    solve_packing_lp,
    undominated,
    usable_offerings,
)
from .patterns import pack_by_patterns, solve_patterns
from .problem import Problem, _ceil_share, parse_problem

__all__ = ["lower_bound", "plan_fresh"]

_EPS = 1e-7
#: Problems up to this size get the node-type counts from an exact MILP (HiGHS, node-limited) instead of the LP.
SMALL_PODS = 200
#: Offerings beyond the LP's own choice that the whole-node integer program may use.
MIP_CANDIDATES = 24
#: Larger problems stop the integer program within this relative gap (their rounding loss is already small).
MIP_GAP = 0.005
#: Above this many pods no integer program runs: the LP's node counts are rounded down and what is left over gets
#: a plan of its own (twice), which loses little there and keeps 20,000 pods well under a second.
MIP_PODS = 8_000
#: Problems above SMALL_PODS up to this many pods also get a node-pattern plan.
PATTERN_PODS = 8_000
#: Up to this many pods the plan returned (`thorough`: not the version-2 candidates that keep nodes) is also made
#: with the pods that must run on demand and the others planned apart (`_split_plan`, step 10 in
#: optimizer/README.md). Not above: at 20,000 pods it would double a plan that must stay under a second.
APART_PODS = PATTERN_PODS
#: Above PATTERN_PODS pods, packing an offering's nodes also tries: the biggest pods first on empty nodes, then the
#: rest shared among the nodes by the room those leave (a small LP, at most GROUP_LP_COLUMNS columns), for "big" taken
#: as a largest share of a node of at least each of GROUP_SHARES.
GROUP_SHARES = (0.3, 0.1)
GROUP_LP_COLUMNS = 3_000
#: ... and where those leave pods worth more than PACK_PATTERNS_VALUE nodes of the offering over, on at least
#: PACK_PATTERNS_NODES nodes and PACK_PATTERNS_PER_CLASS nodes per class of pods, node patterns pack its share
#: (`pack_by_patterns`; with fewer nodes per class, rounding the patterns' LP leaves more over than it saves)
PACK_PATTERNS_VALUE = 0.5
PACK_PATTERNS_NODES = 20
PACK_PATTERNS_PER_CLASS = 2
#: ... whose integer program stops after this many branch-and-bound nodes.
PATTERN_MIP_NODES_LARGE = 50
#: The whole-pod integer program of a small problem stops after this many branch-and-bound nodes (deterministic).
SMALL_MILP_NODES = 300
#: The top-level plan of a small problem (`plan_fresh(thorough=True)`), when that program stopped at its node limit
#: short of MIP_GAP and its node counts were too many for the per-node program (PACK_VARS): it runs again with this
#: many nodes and its node counts are packed node by node by a per-node program of up to SMALL_PACK_VARS variables
#: (`solve_nodes`; one spare node per offering used). On the pool-capped `constrained` mix, 200 pods, seed 0, the
#: first program stops at 5.780 $/h (its optimum is 5.707) with 43 nodes (1,100 variables): 5.8905 -> 5.8539 $/h.
#: Local re-planning's sub-problems and the repair levels do not run it.
SMALL_MILP_NODES_MORE = 3000
SMALL_PACK_VARS = 2000
#: ... and its per-node programs (the packing of the whole-pod program's node counts, both runs) stop after this many
#: branch-and-bound nodes instead of PACK_NODES. On small problems no setting was chosen on (seeds 2-5), 200 nodes
#: left plans well above what the same node counts hold: `big-pods` 40 pods, seed 3, 4.2138 -> 4.0734 $/h (1.037 ->
#: 1.002 of the whole-pod optimum), `memory` 100 pods, seed 3, 2.2925 -> 2.2500.
SMALL_PACK_NODES = 3000
#: Problems above SMALL_PODS whose plan has few nodes (the per-node program over the node counts of step 5's integer
#: program, no spare nodes, would have at most SMALL_PACK_VARS variables: tens of nodes of small pods, where one node
#: is a few percent of the cost) get the small problems' search too, for the plan returned: the whole-pod integer
#: program over every undominated offering (SMALL_MILP_NODES_MORE nodes) and its node counts packed node by node.
#: Measured on problems no setting was chosen on, pods of 10-300 m CPU whose node's pod slots run out with its CPU and
#: memory: 2,000 pods, seed 0, 2.8172 -> 2.7888 $/h (1.024 -> 1.014 of the whole-node optimum); 1,000 pods 2.0657 ->
#: 2.0356 and 1.5644 -> 1.5307; `web` 1,000 pods 5.9693 -> 5.9263. 10-100 s more CPU where it runs. It does not run
#: when the best plan is already within FEW_NODES_GAP of the LP (a lower bound on every plan): `mixed` 2,000 pods,
#: seed 0, at 1.011 of it, gained nothing in 84 s; the plans it made cheaper were 1.033-1.070 of it. Nor above
#: BROAD_PODS pods, nor under a pool cap, where that program carries the cap's integer and took minutes (`constrained`
#: 1,200 pods: 5-10x the plan's CPU) for no plan it made cheaper.
FEW_NODES_SEARCH = True
FEW_NODES_GAP = 0.015
#: In that whole-pod program each class's pods may go to its FEW_NODES_OFFERINGS offerings cheapest per pod and to
#: every offering the LP or the best plan uses. Over every pair (class, undominated offering) its root node alone
#: took minutes on a broad template: `web` 500 pods of 55 workloads over 2,500 offerings (9,812 pairs), 3.0975 $/h
#: in 207 s of CPU, 123 s of them in this program (84 s and 3.1415 without it). With 10 per class (1,123 pairs): 3.0972
#: in 83 s. On the problems the search was measured on, the same plans or cheaper and faster: `mixed` 1,000 pods
#: 39.9725 -> 39.9106 (90 -> 73 s), `small-pods` 1,000 pods 2.0172 -> 2.0125 (112 -> 94 s), `tiny` 1,000 pods, seed
#: 1, the same in 60 instead of 75 s; `tiny` 600 pods still at its whole-pod optimum.
FEW_NODES_OFFERINGS = 10
#: Small problems stop searching once the best plan is within this ratio of a proven lower bound on every plan (the
#: LP, then the whole-pod integer program's dual bound): a deterministic gap test, no clock involved.
SMALL_GAP = 0.003
#: The node patterns' integer program of a small problem: at most this many patterns, this many branch-and-bound nodes.
SMALL_PATTERN_COLUMNS = 1500
SMALL_PATTERN_NODES = 200
#: Rounding the node patterns' LP (201-8,000 pods): the dive runs once per variant from the same converged LP, the
#: cheapest plan winning. None stops where the LP uses no pattern whole (the integer program decides the rest); a
#: number also rounds up the pattern used most while the LP uses it at least that much. Dives are chaotic: on the 30
#: benchmark problems of 1,000-6,000 pods (seeds 0 and 1) each variant is the cheapest somewhere, up to 1.7% cheaper
#: than the next (`web` 1,000 pods, seed 1: 1.032 -> 1.017 of the whole-node bound), at about 1.5-2x the CPU time.
DIVE_UP: tuple[float | None, ...] = (None, 0.5, 0.75, 0.3)
#: Under a pool cap (whose dive always rounds up: the integer program there drops the cap).
DIVE_UP_CAPPED: tuple[float | None, ...] = (0.5, 0.75, 0.3)
#: The node patterns (201-8,000 pods) run once per pricing here, the second started from the first one's plan (so
#: this step never ends dearer): the plain one-pass fills, then the broad ones (`solve_patterns(broad=True)`), whose
#: different columns round differently. On the 36 benchmark problems of 1,000-2,000 pods (seeds 0-2) the second run
#: made 12 plans cheaper, by up to 0.7% (`mixed` 1,000 pods, seed 2: 1.0228 -> 1.0159 of the whole-node bound), none
#: dearer, at about 1.6x the CPU time (local re-planning then starts from another plan, so a final plan can come out
#: dearer: 2 of 22 problems of 600 pods, by up to 0.5%, against 13 cheaper).
PATTERN_PRICINGS: tuple[bool, ...] = (False, True)
#: ... up to this many pods; above, the plain pricing only (on the six 6,000-pod problems the second run doubled the
#: CPU time, to 91 s, and made two plans cheaper, one dearer: local re-planning then starts from another plan).
BROAD_PODS = 3_000
#: Local re-planning (201-8,000 pods): a few nodes of the plan (at most LNS_NODES of them, LNS_PODS pods; the least
#: filled first, then the most money idle first, each order for at most LNS_ROUNDS rounds) are planned again as a small
#: problem (the exact path) and replaced when that is cheaper. On the seven 1,000-2,000-pod benchmark problems above
#: 1.02 of the whole-node bound it saved 0.1-0.4% each, for 2-15 s more CPU (more nodes or pods per round: `big-pods`
#: up to 60 s for 0.1% more).
LNS_ROUNDS = 2
LNS_NODES = 6
LNS_PODS = 45
#: Leftover pods are planned afresh up to this depth; below it they go to the best-value new nodes.
REPAIR_DEPTH = 2
#: Splitting (`_Plan.split_underfilled`, the last step of every plan): at most SPLIT_NODES nodes filled below SPLIT_FILL
#: (the largest share of cpu, memory or pod slots their pods use), the most money idle first, are each replaced by two
#: smaller nodes when two hold the pods for less. Packing ends every offering's share of the pods with a part-filled
#: node, and a single node that holds them (downsizing) may still be one size too big: on the 20,000-pod `web`
#: problem, seed 3, a 128-vCPU on-demand node held 102 vCPUs of pods (80%), where a 96-vCPU and an 8-vCPU node cost
#: 19% less (1.0205 -> 1.0130 of the LP relaxation with two more such splits).
#: Above this many pod columns (class x fit group) the first LP of a plan of many pods starts from each class's
#: FIRST_LP_START cheapest groups and prices the others in (the benchmark's 20,000-pod problems have up to 14,721).
FIRST_LP_COLUMNS = 20_000
FIRST_LP_START = 8
SPLIT_NODES = 16
SPLIT_FILL = 0.95


def lower_bound(problem: dict[str, Any]) -> float:
    """LP-relaxation lower bound (USD/h, list prices) on the hourly cost of a plan for `problem`.

    Pods that no allowed offering can take are left out (every plan reports them unplaced). Raises `ProblemError`
    for a malformed problem.
    """
    p = parse_problem(problem)
    cl = build_classes(p)
    compat = compatibility(p, cl)
    cols = np.flatnonzero(compat.any(axis=0))
    if len(cl) == 0 or len(cols) == 0:
        return 0.0
    group, gcompat = fit_groups(compat, cols)
    return solve_lp(p, cl, cols, group, gcompat, p.price_f).cost


def _largest_share(size: np.ndarray, free: np.ndarray) -> np.ndarray:
    """(D, J): the largest share of offering j's free capacity (by resource) one pod of class d takes. Computed per
    distinct offering shape (an instance type's offerings across zones and capacity types share one), then spread."""
    shapes, inverse = np.unique(free, axis=0, return_inverse=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (size[:, None, :] / np.maximum(shapes[None, :, :], 1)).max(axis=2)
    return ratio[:, inverse.ravel()]


def _pods_per_node(size: np.ndarray, free: np.ndarray) -> np.ndarray:
    """(D, J): how many pods of class d fit on an empty node of offering j (int64 max for an all-zero class),
    per distinct offering shape, then spread."""
    shapes, inverse = np.unique(free, axis=0, return_inverse=True)
    with np.errstate(divide="ignore"):
        per = np.where(
            size[:, None, :] > 0, shapes[None, :, :] // np.maximum(size[:, None, :], 1), np.iinfo(np.int64).max
        ).min(axis=2)
    return per[:, inverse.ravel()]


class _Plan:
    """Mutable node set: node i is one node of offering ``off[i]`` holding ``load[i, d]`` pods of class d."""

    def __init__(
        self, p: Problem, cl: Classes, compat: np.ndarray, prices: np.ndarray, new_ok: np.ndarray | None = None
    ) -> None:
        self.p = p
        self.cl = cl
        self.compat = compat
        self.prices = prices
        # offerings new nodes may use (version 2: not unavailable); kept nodes may sit on any offering
        self.new_ok = np.ones(p.n_offerings, dtype=bool) if new_ok is None else new_ok
        self.free = p.free_capacity()
        self.off = np.zeros(0, dtype=np.int64)
        # version 2: index into the problem's current nodes for a kept node (its offering never changes), else -1
        self.kept = np.zeros(0, dtype=np.int64)
        self.kept_price = np.zeros(0, dtype=float)  # what each kept node costs (its current price, weighted)
        self.load = np.zeros((0, len(cl)), dtype=np.int64)
        self.unplaced = np.zeros(len(cl), dtype=np.int64)
        # packing also tries the biggest pods first on empty nodes (pack_type): above PATTERN_PODS pods, where no
        # node patterns pack the plan (18 of 24 benchmark problems of 20,000 pods cheaper or the same, the worst ratio
        # to the LP 1.033 -> 1.027; below, it moved plans by +-1% either way, the node patterns' dive being sensitive
        # to the plan it starts from)
        self.big_first = False
        # with `big_first`: node patterns may pack an offering's share (`pack_by_patterns`); `patterned` tells that
        # they did for one
        self.patterns = True
        self.patterned = False
        # What one pod of a class is "worth": its share of the cheapest node it could use, by its dominant resource.
        # Used to rank new nodes by the value they absorb per dollar. The same for every plan of these classes on
        # these offerings, so computed once per problem (the repair levels make several plans).
        key = ("value", cl.size.tobytes(), compat.tobytes(), self.new_ok.tobytes(), np.asarray(prices).tobytes())
        value = p.memo.get(key)
        if value is None:
            ratio = _largest_share(cl.size, self.free)
            per_pod = np.where(compat & self.new_ok[None, :], prices[None, :] * ratio, np.inf)
            cheapest = per_pod.min(axis=1, initial=np.inf)
            value = p.memo[key] = np.where(np.isfinite(cheapest), cheapest, 0)
        self.value = value

    # --- helpers ---------------------------------------------------------------------------------------------------

    def node_prices(self) -> np.ndarray:
        """What every node costs the planner: the offering's (effective) price, a kept node's own."""
        out = self.prices[self.off].astype(float)
        kept = self.kept >= 0
        out[kept] = self.kept_price[self.kept[kept]]
        return out

    def cost(self) -> float:
        """Total price the planner minimises (effective prices under price-capacity-optimized)."""
        return float(self.node_prices().sum())

    def copy(self) -> _Plan:
        out = _Plan.__new__(_Plan)
        out.__dict__.update(self.__dict__)
        out.off, out.load, out.unplaced, out.kept = (
            self.off.copy(),
            self.load.copy(),
            self.unplaced.copy(),
            self.kept.copy(),
        )
        return out

    def used(self, idx: np.ndarray | None = None) -> np.ndarray:
        load = self.load if idx is None else self.load[idx]
        return load @ self.cl.size

    def room(self) -> np.ndarray:
        """(N, 3) capacity still free on every node."""
        return self.free[self.off] - self.used()

    def _append_load(self, loads: np.ndarray) -> None:
        """Append rows to `load`. `load` is a view of a buffer with spare rows, which grows by half when full, so
        a plan built offering by offering copies its (nodes x classes) matrix a few times, not once per offering
        (at 20,000 pods in 1,500 classes that matrix is ~30 MB). A `load` replaced elsewhere (a copy, nodes
        removed) starts a new buffer."""
        n, k = len(self.load), len(loads)
        buf = self.__dict__.get("_buf")
        if buf is None or self.load is not self.__dict__.get("_view") or len(buf) < n + k:
            buf = np.empty((max(n + k + (n + k) // 2, 16), self.load.shape[1]), dtype=np.int64)
            buf[:n] = self.load
            self._buf = buf
        buf[n : n + k] = loads
        self.load = self._view = buf[: n + k]

    def add_nodes(self, offering: int, loads: np.ndarray, kept: int = -1) -> None:
        self.off = np.concatenate([self.off, np.full(len(loads), offering, dtype=np.int64)])
        self._append_load(loads)
        self.kept = np.concatenate([self.kept, np.full(len(loads), kept, dtype=np.int64)])

    def add_nodes_of(self, offerings: np.ndarray, loads: np.ndarray) -> None:
        """New nodes, node i on ``offerings[i]`` holding ``loads[i]``."""
        self.off = np.concatenate([self.off, offerings.astype(np.int64)])
        self._append_load(loads)
        self.kept = np.concatenate([self.kept, np.full(len(loads), -1, dtype=np.int64)])

    def remove_nodes(self, keep: np.ndarray) -> None:
        self.off = self.off[keep]
        self.load = self.load[keep]
        self.kept = self.kept[keep]

    # --- packing ---------------------------------------------------------------------------------------------------

    def pack_type(self, j: int, counts: np.ndarray, nodes: int = 0, up: bool = False) -> np.ndarray:
        """Open just enough nodes of offering j for `counts` pods per class (exactly `nodes` when given); return what
        did not fit. With `up`, one node more when the pod value it saves from the leftovers exceeds its price."""
        got = self._pack(j, counts, nodes)
        if got is None:
            return counts.copy()
        loads, left = got
        if up and nodes and left @ self.value > self.prices[j]:
            more = self._pack(j, counts, nodes + 1, patterns=False)
            if more is not None and self.prices[j] + more[1] @ self.value < left @ self.value - 1e-12:
                loads, left = more
        self.add_nodes(j, loads)
        return left

    def _pack(
        self, j: int, counts: np.ndarray, nodes: int = 0, patterns: bool = True
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Pods per node for `counts` pods on `nodes` nodes of offering j (just enough when 0), and what did not fit;
        None when nothing fits.

        Packings are tried and the one leaving less pod value over wins: an even spread (each node takes
        floor(count/n) of every class, which always fits when the total does, and the remainders go one per node
        where the room lines up best), which keeps CPU-heavy and memory-heavy pods mixed on every node; first-fit
        decreasing by class, which does better when only a few big pods fit on a node; and with `big_first`, the
        spread alone from empty nodes (the biggest pods first) and the big pods first with the rest shared by an LP
        (`_grouped`). Where those still leave more than PACK_PATTERNS_VALUE nodes' worth of pod value over, on at
        least PACK_PATTERNS_NODES nodes and PACK_PATTERNS_PER_CLASS nodes per class (above 8,000 pods; `patterns`
        off for the packing of what they leave): node patterns (`pack_by_patterns`) give the nodes an LP over
        patterns uses whole, the other packings place the rest on the nodes left, and that wins when it leaves less
        value over. The LP knows which pods fill a node together: on the 20,000-pod `big-pods` problem, seed 4, its
        main offering's 1,343 nodes left pods worth 28.9 $/h over, with patterns 21.9."""
        cap = self.free[j]
        need = counts @ self.cl.size
        if ((cap <= 0) & (need > 0)).any():
            return None
        n = nodes or math.ceil(float((need / np.maximum(cap, 1)).max()) - 1e-9)
        if n <= 0:
            return None
        base = counts // n
        if ((base @ self.cl.size) > cap).any():  # fewer nodes than the pods need: first fit alone
            base = np.zeros_like(base)
        loads = np.tile(base, (n, 1))
        room = np.tile(cap - base @ self.cl.size, (n, 1)).astype(np.int64)
        left = self._spread(counts - base * n, loads, room, cap)
        if left.any() and base.any() and self.big_first:
            loads_big = np.zeros_like(loads)
            left_big = self._spread(counts, loads_big, np.tile(cap, (n, 1)).astype(np.int64), cap)
            if left_big @ self.value < left @ self.value - 1e-12:
                loads, left = loads_big, left_big
            share = (self.cl.size / np.maximum(cap, 1)).max(axis=1)
            tried: set[bytes] = set()
            for big in GROUP_SHARES:
                which = ((share >= big) & (counts > 0)).tobytes()
                if which in tried:
                    continue
                tried.add(which)
                got = self._grouped(counts, n, cap, big)
                if got is not None and got[1] @ self.value < left @ self.value - 1e-12:
                    loads, left = got
        if left.any():
            loads_ffd = np.zeros_like(loads)
            left_ffd = self._first_fit(counts, loads_ffd, np.tile(cap, (n, 1)).astype(np.int64), cap)
            if left_ffd @ self.value < left @ self.value - 1e-12:
                loads, left = loads_ffd, left_ffd
        if (
            patterns
            and self.patterns
            and self.big_first
            and n >= max(PACK_PATTERNS_NODES, PACK_PATTERNS_PER_CLASS * int((counts > 0).sum()))
            and left @ self.value > PACK_PATTERNS_VALUE * self.prices[j]
        ):
            fixed, rest = pack_by_patterns(cap, self.cl.size, counts, n, self.value, loads)
            more = self._pack(j, rest, n - len(fixed), patterns=False) if n > len(fixed) else None
            loads_p, left_p = (fixed, rest) if more is None else (np.vstack([fixed, more[0]]), more[1])
            if left_p @ self.value < left @ self.value - 1e-12:
                loads, left = loads_p, left_p
                self.patterned = True
        return loads, left

    def _grouped(self, counts: np.ndarray, n: int, cap: np.ndarray, big: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Pods per node for `counts` pods on `n` empty nodes with free capacity `cap`, and what did not fit.

        The pods whose largest share of a node is at least `big` go first, by the spread (one per node where the
        room lines up best). That leaves groups of nodes with the same room (none of them, one pod of a kind, ...).
        A small LP then shares the other pods among the groups (the most pod value that fits each group's pooled
        room), and each group takes its share by the even spread, like `_pack`. What the LP's rounding leaves goes
        wherever room is left. None when no pod is big or the LP would have more than GROUP_LP_COLUMNS columns.

        This is what the even spread alone misses: its base fills every node alike, so a pod needing most of a node
        finds no such room (18 pods of 78% of a node's memory on the main offering of the 20,000-pod
        `constrained` problem, seed 0: 14 nodes' worth of memory left over); and the spread alone from empty nodes
        packs the many small pods too loosely."""
        size = self.cl.size
        share = (size / np.maximum(cap.astype(float), 1.0)).max(axis=1)
        bigc = (share >= big) & (counts > 0)
        small = np.flatnonzero(~bigc & (counts > 0))
        if not bigc.any():
            return None
        loads = np.zeros((n, len(self.cl)), dtype=np.int64)
        room = np.tile(cap, (n, 1)).astype(np.int64)
        left = self._spread(np.where(bigc, counts, 0), loads, room, cap)
        if small.size == 0:
            return loads, left
        rooms, group = np.unique(room, axis=0, return_inverse=True)
        group = group.reshape(-1)
        n_g = len(rooms)
        if n_g * small.size > GROUP_LP_COLUMNS:
            return None
        # columns z[d, g] (pods of small class d in group g), d-major; rows: cpu, memory, pods of every group (<= its
        # nodes' room), then one per class (<= its count)
        di = np.repeat(np.arange(small.size), n_g)
        gi = np.tile(np.arange(n_g), small.size)
        col = np.arange(small.size * n_g)
        a = sparse.csr_matrix(
            (
                np.concatenate([size[small[di]].T.reshape(-1).astype(float), np.ones(col.size)]),
                (np.concatenate([3 * gi + r for r in range(3)] + [3 * n_g + di]), np.tile(col, 4)),
            ),
            shape=(3 * n_g + small.size, col.size),
        )
        b = np.concatenate([(rooms * np.bincount(group)[:, None]).reshape(-1), counts[small]]).astype(float)
        z = solve_packing_lp(-(self.value[small[di]] + 1e-6), a, b)  # most value (and pods, on ties) placed
        if z is None:
            return None
        share_of = np.floor(z.reshape(small.size, n_g) + 1e-6).astype(np.int64)
        for g in range(n_g):
            nodes = np.flatnonzero(group == g)
            want = np.zeros(len(self.cl), dtype=np.int64)
            want[small] = share_of[:, g]
            base = want // len(nodes)
            if ((base @ size) > rooms[g]).any():
                base = np.zeros_like(base)
            g_loads = loads[nodes] + base
            g_room = room[nodes] - base @ size
            left += self._spread(want - base * len(nodes), g_loads, g_room, cap)
            loads[nodes], room[nodes] = g_loads, g_room
        rest = np.zeros(len(self.cl), dtype=np.int64)
        rest[small] = counts[small] - share_of.sum(axis=1)
        left += self._spread(rest, loads, room, cap)
        return loads, left

    def _first_fit(self, want: np.ndarray, loads: np.ndarray, room: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """First-fit decreasing by class into nodes with `room` (both modified in place); return what did not fit."""
        left = want.copy()
        scale = np.maximum(scale.astype(float), 1.0)
        order = np.argsort(-(self.cl.size / scale).max(axis=1), kind="stable")
        for d in order[left[order] > 0].tolist():
            s = self.cl.size[d]
            k = np.maximum((room // np.maximum(s, 1)).min(axis=1), 0)
            csum = np.cumsum(k)
            take = np.minimum(k, np.maximum(left[d] - (csum - k), 0))
            loads[:, d] += take
            room -= np.outer(take, s)
            left[d] -= int(take.sum())
        return left

    def _spread(self, rest: np.ndarray, loads: np.ndarray, room: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Place `rest` pods into nodes with `room` (modified in place with `loads`), at most one pod per class and
        node per round, biggest classes first; return what did not fit."""
        left = rest.copy()
        scale = np.maximum(scale.astype(float), 1.0)
        order = np.argsort(-(self.cl.size / scale).max(axis=1), kind="stable")
        for d in order[left[order] > 0].tolist():
            s = self.cl.size[d]
            while left[d] > 0:
                fits = np.flatnonzero((room >= s).all(axis=1))
                if fits.size == 0:
                    break
                if left[d] >= fits.size:
                    # rounds in which every node with room takes one, all at once: round r takes one pod on each
                    # node with room for r more, as long as enough pods are left for all of them
                    k = (room[fits] // np.maximum(s, 1)).min(axis=1)
                    cum = np.cumsum(np.bincount(k)[::-1].cumsum()[::-1][1:])
                    take = np.minimum(k, int(np.searchsorted(cum, left[d], side="right")))
                    loads[fits, d] += take
                    room[fits] -= np.outer(take, s)
                    left[d] -= int(take.sum())
                    continue
                # the nodes whose room lines up best with the pod (dot product of the pod's and the room's shares
                # of a node, the "DotProduct" rule of vector bin packing): a memory-heavy pod goes where memory is
                # left, so CPU and memory run out together. (Emptiest-first here left 19% of the pods of the
                # 20,000-pod `mixed` problem's main offering over; this leaves 0.3%.)
                align = (room[fits] / scale) @ (s / scale)
                take = fits[np.argsort(-align, kind="stable")[: left[d]]]
                loads[take, d] += 1
                room[take] -= s
                left[d] -= len(take)
        return left

    def fill_existing(self, left: np.ndarray, allowed_nodes: np.ndarray | None = None) -> np.ndarray:
        """First-fit `left` pods into free room of existing compatible nodes, biggest pods first."""
        if len(self.off) == 0 or left.sum() == 0:
            return left
        left = left.copy()
        room = self.room()
        scale = np.maximum(self.free[self.off].max(axis=0), 1).astype(float)
        order = np.argsort(-(self.cl.size / scale).max(axis=1), kind="stable")
        for d in order[left[order] > 0].tolist():
            s = self.cl.size[d]
            ok = self.compat[d, self.off]
            if allowed_nodes is not None:
                ok &= allowed_nodes
            k = np.where(ok, (room // np.maximum(s, 1)).min(axis=1), 0)
            k = np.maximum(k, 0)
            if k.sum() == 0:
                continue
            csum = np.cumsum(k)
            take = np.minimum(k, np.maximum(left[d] - (csum - k), 0))
            self.load[:, d] += take
            room -= np.outer(take, s)
            left[d] -= int(take.sum())
        return left

    def open_new(self, left: np.ndarray, offering_mask: np.ndarray) -> np.ndarray:
        """Open new nodes for `left` pods, each time the offering that absorbs the most pod value per dollar (copies
        of the same fill at once); return the pods no allowed offering can take."""
        left = left.copy()
        size = self.cl.size
        order = np.argsort(-self.value, kind="stable")
        while left.sum() > 0:
            cand = np.flatnonzero(offering_mask & self.new_ok & self.compat[left > 0].any(axis=0))
            if cand.size == 0:
                break
            room = self.free[cand].copy()
            fill = np.zeros((len(cand), len(left)), dtype=np.int64)
            for d in order:
                if left[d] <= 0:
                    continue
                k = (room // np.maximum(size[d], 1)).min(axis=1)
                k = np.where(self.compat[d, cand], np.minimum(k, left[d]), 0)
                fill[:, d] = k
                room -= np.outer(k, size[d])
            worth = fill @ self.value
            score = worth / np.maximum(self.prices[cand], 1e-9)
            best = int(np.argmax(score))
            if worth[best] <= 0:
                break
            f = fill[best]
            copies = int((left[f > 0] // f[f > 0]).min())
            self.add_nodes(int(cand[best]), np.tile(f, (copies, 1)))
            left -= f * copies
        return left

    # --- consolidation -------------------------------------------------------------------------------------------

    def node_allowed(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), J) bool: offerings that every class on the node may use (content fit not checked); for an empty
        node (one the pool cap keeps), every offering the constraints allow."""
        present = self.load[idx] > 0
        usable = self.p.memo.get("usable")
        if usable is None:
            usable = self.p.memo["usable"] = usable_offerings(self.p)
        if len(idx) == 1:  # one node (pool spreading moves nodes one at a time): no grouping by class set
            return (usable & self.compat[np.flatnonzero(present[0])].all(axis=0))[None, :]
        out = np.tile(usable, (len(idx), 1))
        if present.size == 0:
            return out
        sig, inverse = np.unique(np.packbits(present, axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for g in range(len(sig)):
            rows = np.flatnonzero(inverse == g)
            classes = np.flatnonzero(present[rows[0]])
            out[rows] &= self.compat[classes].all(axis=0)
        return out

    def drop_underfilled(self, attempts: int = 40) -> None:
        """Try to empty the least-filled nodes into the free room of the others."""
        for _ in range(attempts):
            if len(self.off) <= 1:
                return
            cap = np.maximum(self.free[self.off], 1)
            fill = (self.used() / cap).max(axis=1)
            # most money paid for empty room first: emptying a dear half-full node beats emptying a cheap one
            waste = self.prices[self.off] * (1.0 - fill)
            order = np.argsort(-waste, kind="stable")
            moved = False
            order = order[self.kept[order] < 0]
            for i in order[: min(8, len(order))]:
                if fill[i] > 0.6:
                    continue
                if self._try_empty(int(i)):
                    moved = True
                    break
            if not moved:
                return

    def _try_empty(self, i: int) -> bool:
        want = self.load[i].copy()
        keep = np.ones(len(self.off), dtype=bool)
        keep[i] = False
        saved = self.off.copy(), self.load.copy(), self.kept.copy()
        self.remove_nodes(keep)
        left = self.fill_existing(want)
        if left.sum() == 0:
            return True
        self.off, self.load, self.kept = saved
        return False

    def downsize(self) -> None:
        """Move every node to the cheapest allowed offering that still holds its pods."""
        if len(self.off) == 0:
            return
        # nodes with the same usage and the same classes on them have the same best offering: solve each kind once
        # (a plan of 20,000 pods has ~2,500 nodes but a few hundred kinds)
        used = self.used()
        kinds, first, inverse = np.unique(
            np.hstack([used, np.packbits(self.load > 0, axis=1)]), axis=0, return_index=True, return_inverse=True
        )
        inverse = inverse.reshape(-1)
        allowed = self.node_allowed(first)
        used = used[first]
        best = np.empty(len(first), dtype=np.int64)
        best_cost = np.empty(len(first), dtype=float)
        chunk = max(1, 4_000_000 // max(1, self.p.n_offerings * 3))
        for start in range(0, len(first), chunk):
            sl = slice(start, start + chunk)
            fits = (self.free[None, :, :] >= used[sl, None, :]).all(axis=2) & allowed[sl] & self.new_ok[None, :]
            cost = np.where(fits, self.prices[None, :], np.inf)
            best[sl] = np.argmin(cost, axis=1)
            best_cost[sl] = cost[np.arange(len(best[sl])), best[sl]]
        better = (best_cost[inverse] < self.prices[self.off] - 1e-12) & (self.kept < 0)
        self.off[better] = best[inverse][better]

    def split_underfilled(self) -> None:
        """Replace under-filled nodes (see SPLIT_NODES) by two nodes that hold their pods for less, then merge pairs
        of under-filled nodes that one node holds for less.

        For each such node every undominated offering its pods may use is tried as the first node, filled biggest pods
        first (vectorised over the offerings); the pods it leaves go to the cheapest offering that holds them all. The
        cheapest pair wins when it costs less than the node. Kept nodes never change; pools are spread again when a
        split or merge broke the pool cap."""
        if len(self.off) == 0:
            return
        p, free, size, prices = self.p, self.free, self.cl.size, self.prices
        key = ("split", np.asarray(prices).tobytes(), self.new_ok.tobytes())
        und = p.memo.get(key)
        if und is None:
            und = p.memo[key] = undominated(p, prices, usable_offerings(p) & self.new_ok)
        fill = (self.used() / np.maximum(free[self.off], 1)).max(axis=1)
        idle = self.node_prices() * (1.0 - fill)
        todo = np.flatnonzero((fill < SPLIT_FILL) & (self.kept < 0) & (self.load.sum(axis=1) > 0))
        todo = todo[np.argsort(-idle[todo], kind="stable")[:SPLIT_NODES]]
        if len(todo) == 0:
            return
        allowed = self.node_allowed(todo) & und[None, :]
        changed = False
        for t, i in enumerate(todo.tolist()):
            cand = np.flatnonzero(allowed[t])
            if cand.size == 0:
                continue
            load = self.load[i]
            present = np.flatnonzero(load)
            order = present[np.argsort(-(size[present] / np.maximum(free[self.off[i]], 1)).max(axis=1), kind="stable")]
            room = free[cand].astype(np.int64)
            first = np.zeros((len(cand), len(load)), dtype=np.int64)
            for d in order.tolist():
                k = np.clip((room // np.maximum(size[d], 1)).min(axis=1), 0, load[d])
                first[:, d] = k
                room -= np.outer(k, size[d])
            rest = load[None, :] - first
            need = rest @ size
            holds = (free[cand][None, :, :] >= need[:, None, :]).all(axis=2)
            second_cost = np.where(holds, prices[cand][None, :], np.inf)
            second = second_cost.argmin(axis=1)
            alone = rest.sum(axis=1) == 0
            total = prices[cand] + np.where(alone, 0.0, second_cost[np.arange(len(cand)), second])
            b = int(np.argmin(total))
            if not np.isfinite(total[b]) or total[b] >= prices[self.off[i]] - 1e-9:
                continue
            self.off[i] = cand[b]
            self.load[i] = first[b]
            if not alone[b]:
                self.add_nodes(int(cand[second[b]]), rest[b][None, :])
            changed = True
        changed |= self._merge_underfilled(und)
        if changed and not _pools_ok(p, self.off):
            self.spread_pools()

    def _merge_underfilled(self, und: np.ndarray) -> bool:
        """Pairs of under-filled nodes (the SPLIT_NODES with the most money idle) whose pods one node holds for less
        than the two cost become that node; each node merges at most once. Returns whether any did."""
        free, prices = self.free, self.prices
        fill = (self.used() / np.maximum(free[self.off], 1)).max(axis=1)
        idle = self.node_prices() * (1.0 - fill)
        todo = np.flatnonzero((fill < SPLIT_FILL) & (self.kept < 0) & (self.load.sum(axis=1) > 0))
        todo = todo[np.argsort(-idle[todo], kind="stable")[:SPLIT_NODES]]
        if len(todo) < 2:
            return False
        allowed = self.node_allowed(todo) & und[None, :]
        used = self.used(todo)
        cost = self.node_prices()[todo]
        merged: set[int] = set()
        drop: list[int] = []
        for a in range(len(todo)):
            for b in range(a + 1, len(todo)):
                if a in merged or b in merged:
                    continue
                holds = allowed[a] & allowed[b] & (free >= (used[a] + used[b])[None, :]).all(axis=1)
                price = np.where(holds, prices, np.inf)
                j = int(np.argmin(price))
                if price[j] < cost[a] + cost[b] - 1e-9:
                    self.off[todo[a]] = j
                    self.load[todo[a]] += self.load[todo[b]]
                    drop.append(int(todo[b]))
                    merged |= {a, b}
        if drop:
            keep = np.ones(len(self.off), dtype=bool)
            keep[drop] = False
            self.remove_nodes(keep)
        return bool(drop)

    # --- pool share ------------------------------------------------------------------------------------------------

    def spread_pools(self) -> None:
        """Enforce max_pool_share: move nodes from over-full spot pools to the cheapest other pool (or on-demand)
        that holds their pods; nodes nothing can hold go back through repair on on-demand."""
        p = self.p
        share = p.max_pool_share
        if share >= 1.0:
            return
        fits_of: dict[bytes, np.ndarray] = {}  # the offerings that hold a node's pods, by the node's pods
        for _ in range(10 * len(self.off) + 10):
            spot_nodes = p.spot[self.off]
            n_spot = int(spot_nodes.sum())
            if n_spot == 0:
                return
            cap = _ceil_share(share, n_spot)
            per_pool = np.bincount(self.off[spot_nodes], minlength=p.n_offerings)
            over = np.flatnonzero(per_pool > cap)
            # kept nodes never move: only pools with a new node in them can be relieved
            movable = [int(j) for j in over if ((self.off == j) & (self.kept < 0)).any()]
            if not movable:
                return
            pool = movable[0]
            i = int(np.flatnonzero((self.off == pool) & (self.kept < 0))[-1])
            key = self.load[i].tobytes()
            fits = fits_of.get(key)
            if fits is None:
                allowed = self.node_allowed(np.array([i]))[0]
                fits = fits_of[key] = (self.free >= self.used(np.array([i]))[0]).all(axis=1) & allowed & self.new_ok
            room_in_pool = ~p.spot | (per_pool < cap)
            cand = fits & room_in_pool
            cand[pool] = False
            spot_cand = cand & p.spot
            pick = spot_cand if spot_cand.any() else cand & ~p.spot
            if pick.any():
                self.off[i] = int(np.flatnonzero(pick)[np.argmin(self.prices[pick])])
                continue
            # nothing holds this node's pods as one node: take it apart and re-place the pods on on-demand
            want = self.load[i].copy()
            keep = np.ones(len(self.off), dtype=bool)
            keep[i] = False
            self.remove_nodes(keep)
            left = self.fill_existing(want, allowed_nodes=~p.spot[self.off])
            left = self.open_new(left, ~p.spot)
            self.unplaced += left


class _LPContext:
    """What the repair levels of one plan share: solved LPs to re-solve warm (`LPCache`), and the top level's
    undominated offerings per `new_ok`, so that the pods a packing leaves over are planned by the very same LP
    (a superset of what dominance among just those pods would keep) with only the counts changed."""

    def __init__(self) -> None:
        self.cache = LPCache()
        self.cols: dict[bytes, np.ndarray] = {}
        self.many_pods = False  # the top level plans more than PATTERN_PODS pods


def plan_fresh(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    new_ok: np.ndarray | None = None,
    exact: bool = True,
    depth: int = 0,
    lp: _LPContext | None = None,
    thorough: bool = False,
) -> _Plan:
    """A node set from scratch for the pods of `cl` (its counts), new nodes only on `new_ok` offerings.

    `exact` lets small problems use the MILPs; `compat` is the full class x offering compatibility; `lp` is shared
    with the repair levels below (made here when not given). `thorough` (the plan the caller returns, not a part of
    one) lets a small problem's whole-pod program run longer when it stopped short (SMALL_MILP_NODES_MORE)."""
    new_ok = np.ones(p.n_offerings, dtype=bool) if new_ok is None else new_ok
    lp = _LPContext() if lp is None else lp
    cmask = compat & new_ok[None, :]
    placeable = cmask.any(axis=1) & (cl.count > 0)
    # the solvers see only offerings no other dominates (repair and pool spreading still see them all); the repair
    # levels reuse the offerings of the level that made them
    ctx_key = new_ok.tobytes() + prices.tobytes()
    if depth > 0 and ctx_key in lp.cols:
        cols = lp.cols[ctx_key]
        keep = np.zeros(p.n_offerings, dtype=bool)
        keep[cols] = True
        cmask &= keep[None, :]
    else:
        cmask &= undominated(p, prices, cmask[cl.count > 0].any(axis=0))[None, :]
        cols = np.flatnonzero(cmask[cl.count > 0].any(axis=0)) if len(cl) else np.zeros(0, dtype=np.int64)
        if depth == 0:
            lp.cols[ctx_key] = cols
    trimmed = depth > 0 and lp.many_pods
    if trimmed:
        # the repair levels of a plan of many pods: only the classes with pods left enter the LPs. A fresh solve over
        # their few hundred columns takes a tenth of the warm re-solve of the top level's ~15,000 (which the LP cache
        # still does for the levels below plans of up to PATTERN_PODS pods)
        cmask &= (cl.count > 0)[:, None]
    if len(cl) == 0 or cols.size == 0 or not placeable.any():
        st = _Plan(p, cl, compat, prices, new_ok)
        st.unplaced += np.where(placeable, 0, cl.count)
        return st

    pods = int(cl.count.sum())
    if depth == 0:
        lp.many_pods = pods > PATTERN_PODS
    small = exact and pods <= SMALL_PODS and depth == 0
    # the integer program: small problems always; mid-sized ones at the top level (big ones round the LP well)
    use_mip = small or (depth == 0 and pods <= MIP_PODS)
    # (b) LP over fit groups picks the node mix
    group, gcompat = fit_groups(cmask, cols)
    free = p.free_capacity()
    per_pod = np.where(cmask, prices[None, :] * _largest_share(cl.size, free), np.inf)
    if depth == 0 and lp.many_pods and int(gcompat.sum()) > FIRST_LP_COLUMNS:
        # many classes (a thousand workloads): the LP starts from each class's FIRST_LP_START groups cheapest per
        # pod and takes in the others by column generation (the same optimum; a third of the time at 20,000 pods in
        # 1,500 classes)
        g_cost = np.full(gcompat.shape, np.inf)
        for g in range(gcompat.shape[0]):
            g_cost[g] = per_pod[:, cols[group == g]].min(axis=1)
        k = min(FIRST_LP_START, gcompat.shape[0])
        top = np.argpartition(g_cost, k - 1, axis=0)[:k]
        start = np.zeros_like(gcompat)
        np.put_along_axis(start, top, True, axis=0)
        first = solve_lp(p, cl, cols, group, gcompat & start, prices, price_out=gcompat)
    else:
        first = solve_lp(p, cl, cols, group, gcompat, prices, cache=None if trimmed else lp.cache)
    assert first is not None
    chosen = set(cols[first.x > _EPS].tolist())
    # every class keeps its cheapest per-pod option, so the second LP can always place it
    chosen |= set(np.argmin(per_pod[placeable], axis=1).tolist())
    sel = np.array(sorted(chosen), dtype=np.int64)
    sel_compat = cmask[:, sel].T
    if lp.many_pods and depth == 0:
        # many pods: a class may only go where the first LP put it (the offerings it chose in the groups the class
        # used) or to its cheapest per-pod offering; the first LP's answer stays feasible, and the LP has a few
        # hundred pod columns instead of classes x offerings (a tenth of the time at 20,000 pods)
        pos = np.full(p.n_offerings, -1, dtype=np.int64)
        pos[cols] = np.arange(len(cols))
        used = first.y[:, group[pos[sel]]].T > _EPS  # (len(sel), D): class d was put in offering sel[k]'s group
        cheap = np.zeros_like(sel_compat)
        cheap_off = np.argmin(per_pod, axis=1)
        for d in np.flatnonzero(placeable).tolist():
            cheap[np.searchsorted(sel, cheap_off[d]), d] = True
        sel_compat = sel_compat & (used | cheap)
    # the restricted LP then takes in, by column generation, every other pair that makes it cheaper (without, it
    # cost up to 1.3% above the unrestricted one on the 20,000-pod benchmark problems)
    restricted = lp.many_pods and depth == 0
    price_out = cmask[:, sel].T if restricted else None
    second = solve_lp(p, cl, sel, np.arange(len(sel)), sel_compat, prices, price_out=price_out)
    assert second is not None
    best = _realise(p, cl, compat, prices, new_ok, sel, second, depth=depth, exact=small, lp=lp)
    # a proven lower bound on every plan of these pods (the LP when it places them all; then the integer program's)
    lb = first.cost if first.unplaced.sum() < 0.5 else 0.0

    def proven(st: _Plan) -> bool:
        return small and st.unplaced.sum() == 0 and st.cost() <= lb * (1.0 + SMALL_GAP) + 1e-12

    if proven(best):
        use_mip = False

    # whole nodes: an integer program over the LP's choice and the offerings closest to entering it (smallest
    # reduced cost per dollar), pods pooled per offering; node-limited, so deterministic
    # (small problems: every offering left after dominance, and whole pods per offering too)
    cand = set(chosen)
    if small:
        cand |= set(cols.tolist())
    elif first.rc is not None:
        score = first.rc / np.maximum(prices[cols], 1e-9)
        cand |= set(cols[np.argsort(score, kind="stable")[:MIP_CANDIDATES]].tolist())
    cand_a = np.array(sorted(cand), dtype=np.int64)

    def whole_nodes(nodes: int, offerings: np.ndarray = cand_a, whole_pods: bool = small) -> LPResult | None:
        return solve_lp(
            p,
            cl,
            offerings,
            np.arange(len(offerings)),
            cmask[:, offerings].T,
            prices,
            integral=True,
            whole_pods=whole_pods,
            gap=MIP_GAP,
            nodes=nodes,
        )

    mip = whole_nodes(SMALL_MILP_NODES if small else MILP_NODES) if use_mip else None
    packed_exactly = False  # the per-node program packed the integer program's node counts
    if mip is not None and small and mip.bound is not None and len(cand_a) == len(cols):
        lb = max(lb, mip.bound)  # a bound on every plan only when the program saw every undominated offering
    if mip is not None:
        alt = _realise(p, cl, compat, prices, new_ok, cand_a, mip, whole=True, depth=depth, exact=small, lp=lp)
        if (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
            best = alt
        if small:
            # few pods: pack the integer program's node counts exactly, node by node, with one spare node of every
            # offering it chose
            alt = _pack_exactly(
                p, cl, compat, prices, new_ok, cand_a, mip.x, PACK_VARS, SMALL_PACK_NODES if thorough else PACK_NODES
            )
            packed_exactly = alt is not None
            if alt is not None and (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
                best = alt
    runs: list[dict[str, Any]] = []  # solve_patterns options, one run each
    node_depth = REPAIR_DEPTH  # how deep the plan of the patterns' nodes may repair
    if small and not proven(best):
        # few pods: the per-node model over generated node patterns, started from the best plan so far
        runs.append({"mip_nodes": SMALL_PATTERN_NODES, "mip_columns": SMALL_PATTERN_COLUMNS, "skip_gap": SMALL_GAP})
    elif exact and depth == 0 and pods <= PATTERN_PODS:
        # more pods: the same over one-pass fills only, its LP rounded by diving (patterns it uses whole fixed, the
        # LP re-solved with new patterns for what is left) before a short integer program finishes the rest. Under a
        # pool cap the LP carries the cap, the dive also rounds up patterns used at least half, and the integer
        # program leaves the cap to pool spreading (with it, it takes tens of seconds at this size). Up to
        # BROAD_PODS pods a second run with broad pricing starts from the first one's plan.
        capped = p.max_pool_share < 1.0
        node_depth = depth
        for broad in PATTERN_PRICINGS if pods <= BROAD_PODS else PATTERN_PRICINGS[:1]:
            runs.append(
                {
                    "dynamic": False,
                    "mip_nodes": PATTERN_MIP_NODES_LARGE,
                    "dive": True,
                    "dive_up": DIVE_UP_CAPPED if capped else DIVE_UP,
                    "s_form": True,
                    "mip_pool": False,
                    "lean_mip": True,
                    "broad": broad,
                }
            )
    for opts in runs:
        res = solve_patterns(p, cl, cmask, prices, cols, (best.off, best.load, best.unplaced), **opts)
        if res is not None:
            alt = _plan_of_nodes(p, cl, compat, prices, new_ok, res, depth=node_depth, lp=lp)
            if (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
                best = alt
    if mip is not None and depth == 0 and not small:
        # the integer program's nodes packed the 20,000-pod way as well (big pods first, the rest shared by an LP):
        # under a pool cap it can beat the node patterns (`constrained` 2,000 pods, seed 0: 59.73 -> 59.30 $/h)
        alt = _realise(p, cl, compat, prices, new_ok, cand_a, mip, whole=True, depth=depth, lp=lp, big_first=True)
        if (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
            best = alt
    if exact and depth == 0 and not small and pods <= PATTERN_PODS:
        best = _replan_least_filled(p, cl, compat, prices, new_ok, best)
    if thorough and exact and depth == 0 and not small and pods <= APART_PODS:
        alt = _split_plan(p, cl, compat, prices, new_ok)
        if alt is not None and (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
            best = alt
    if thorough and mip is not None and small and not packed_exactly and not proven(best) and _stopped_short(mip):
        # the whole-pod program stopped at its node limit and its node counts were too many to pack node by node:
        # more nodes, then a bigger per-node program (one spare node per offering used)
        more = whole_nodes(SMALL_MILP_NODES_MORE)
        if more is not None:
            alt = _pack_exactly(p, cl, compat, prices, new_ok, cand_a, more.x, SMALL_PACK_VARS, SMALL_PACK_NODES)
            if alt is not None and (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
                best = alt
    if (
        FEW_NODES_SEARCH
        and thorough
        and mip is not None
        and not small
        and pods <= BROAD_PODS
        and p.max_pool_share >= 1.0
        and best.cost() > lb * (1.0 + FEW_NODES_GAP)
        and _pack_vars(cl, cmask, cand_a, mip.x) <= SMALL_PACK_VARS
    ):
        # few nodes (see FEW_NODES_SEARCH): the whole-pod program over every undominated offering, its node counts
        # packed node by node
        # each class may use its FEW_NODES_OFFERINGS offerings cheapest per pod and every offering the LP or the
        # best plan uses (node counts stay open on every offering)
        pods_on = np.zeros_like(cmask[:, cols])
        top = np.argsort(per_pod[:, cols], axis=1, kind="stable")[:, : min(FEW_NODES_OFFERINGS, len(cols))]
        np.put_along_axis(pods_on, top, True, axis=1)
        pods_on |= np.isin(cols, np.concatenate([sel, best.off]))[None, :]
        wp = solve_lp(
            p,
            cl,
            cols,
            np.arange(len(cols)),
            (cmask[:, cols] & pods_on).T,
            prices,
            integral=True,
            whole_pods=True,
            gap=MIP_GAP,
            nodes=SMALL_MILP_NODES_MORE,
        )
        if wp is not None and _pack_vars(cl, cmask, cols, wp.x) <= SMALL_PACK_VARS:
            alt = _pack_exactly(p, cl, compat, prices, new_ok, cols, wp.x, SMALL_PACK_VARS, SMALL_PACK_NODES)
            if alt is not None and (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
                best = alt
    if depth == 0:
        alt = best.copy()
        alt.split_underfilled()
        if (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
            best = alt
    # a safeguard against packing losses: every class alone on its own best single offering type
    alt = _single_type_plan(p, cl, compat, prices, new_ok) if depth == 0 else best
    if (alt.unplaced.sum(), alt.cost()) < (best.unplaced.sum(), best.cost() - 1e-12):
        best = alt
    return best


def _replan_least_filled(
    p: Problem, cl: Classes, compat: np.ndarray, prices: np.ndarray, new_ok: np.ndarray, st: _Plan
) -> _Plan:
    """Large-neighbourhood search on a finished plan: a few of its nodes (at most LNS_NODES holding at most LNS_PODS
    pods) are planned again as a problem of their own, by the exact path of small problems, and replaced when that
    costs less. Two orders pick the nodes, each for at most LNS_ROUNDS rounds, stopping at the first round that gains
    nothing: the least filled first (the largest share of a node their pods use), then the most money left idle
    first (price x the share unused). The sub-problem ignores the pool cap (it sees only a few nodes of the whole
    plan); pool spreading restores it on the merged plan, which must still be cheaper. Deterministic: counts decide,
    no clock."""
    sub_p = p if p.max_pool_share in (0.0, 1.0) else replace(p, max_pool_share=1.0, memo={})
    for idle_first in (False, True):
        for _ in range(LNS_ROUNDS):
            if len(st.off) < 2 or (st.kept >= 0).any():
                return st
            fill = (st.used() / np.maximum(st.free[st.off], 1)).max(axis=1)
            order = -(st.node_prices() * (1.0 - fill)) if idle_first else fill
            pods = st.load.sum(axis=1)
            pick: list[int] = []
            total = 0
            for i in np.argsort(order, kind="stable").tolist():
                if len(pick) == LNS_NODES or total + pods[i] > LNS_PODS:
                    break
                pick.append(i)
                total += int(pods[i])
            if len(pick) < 2:
                break
            counts = st.load[pick].sum(axis=0)
            rest = Classes(size=cl.size, count=counts, must_od=cl.must_od, arch_ok=cl.arch_ok, members=[])
            sub = plan_fresh(sub_p, rest, compat, prices, new_ok)
            if sub.unplaced.sum() > 0 or sub.cost() >= float(st.node_prices()[pick].sum()) - 1e-9:
                break
            keep = np.ones(len(st.off), dtype=bool)
            keep[pick] = False
            trial = st.copy()
            trial.remove_nodes(keep)
            trial.add_nodes_of(sub.off, sub.load)
            trial.spread_pools()
            if (trial.unplaced.sum(), trial.cost()) >= (st.unplaced.sum(), st.cost() - 1e-9):
                break
            st = trial
    return st


def _split_plan(p: Problem, cl: Classes, compat: np.ndarray, prices: np.ndarray, new_ok: np.ndarray) -> _Plan | None:
    """The pods that must run on demand and the others planned as two problems of their own, their nodes merged and
    consolidated (the others' pods may then move into the on-demand nodes' room). Valid as merged: the first part's
    nodes are all on demand and only the second's spot nodes count for the pool cap, which its plan keeps. None
    unless both kinds have pods. A part of at most SMALL_PODS pods gets the exact path without the longer searches
    of the plan returned: an on-demand part of 154 pods in 40 classes (`constrained` 600 pods) took 85 s with them,
    28 s without; the parts of the benchmark's 1,000-6,000-pod problems are larger and plan the same either way."""
    live = cl.count > 0
    od = cl.must_od & live
    if not od.any() or not (live & ~od).any():
        return None
    st = _Plan(p, cl, compat, prices, new_ok)
    for part in (od, ~od):
        sub_cl = Classes(
            size=cl.size, count=np.where(part, cl.count, 0), must_od=cl.must_od, arch_ok=cl.arch_ok, members=[]
        )
        sub = plan_fresh(p, sub_cl, compat, prices, new_ok)
        st.add_nodes_of(sub.off, sub.load)
        st.unplaced += sub.unplaced
    alt = st.copy()
    alt.drop_underfilled()
    alt.downsize()
    alt.spread_pools()
    if (alt.unplaced.sum(), alt.cost()) < (st.unplaced.sum(), st.cost() - 1e-12):
        st = alt
    return st


def _single_type_plan(p: Problem, cl: Classes, compat: np.ndarray, prices: np.ndarray, new_ok: np.ndarray) -> _Plan:
    """Each demand class on the one offering type that holds it most cheaply (whole nodes, no mixing).

    O(classes x offerings), vectorised. It is never better than a good mixed plan on large problems, but it bounds the
    planner's result from above by the simple plan an operator would write by hand."""
    st = _Plan(p, cl, compat, prices, new_ok)
    per = _pods_per_node(cl.size, p.free_capacity())
    per = np.where(compat & new_ok[None, :] & (per > 0), per, 0)
    nodes_needed = np.where(per > 0, -(-cl.count[:, None] // np.maximum(per, 1)), 0)
    cost = np.where(per > 0, nodes_needed * prices[None, :], np.inf)
    live = cl.count > 0
    best = np.argmin(cost, axis=1)
    ok = np.isfinite(cost[np.arange(len(cl)), best])
    st.unplaced += np.where(live & ~ok, cl.count, 0)
    ds = np.flatnonzero(live & ok)
    if ds.size:  # one block of nodes per class, built at once
        js = best[ds]
        n = nodes_needed[ds, js].astype(np.int64)
        k = per[ds, js].astype(np.int64)
        rows = np.repeat(ds, n)
        load = np.zeros((int(n.sum()), len(cl)), dtype=np.int64)
        load[np.arange(rows.size), rows] = np.repeat(k, n)
        load[np.cumsum(n) - 1, ds] = cl.count[ds] - k * (n - 1)
        st.add_nodes_of(np.repeat(js, n), load)
    st.spread_pools()
    return st


def _plan_of_nodes(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    new_ok: np.ndarray,
    sol: NodeResult,
    depth: int = REPAIR_DEPTH,
    lp: _LPContext | None = None,
) -> _Plan:
    """A plan of solved nodes: empty nodes dropped (unless the pool cap needs them), pods the solve left out
    placed in free room or on new nodes, every node moved to the cheapest offering that holds it, pools spread."""
    st = _Plan(p, cl, compat, prices, new_ok)
    st.off, st.load, st.kept = sol.off.copy(), sol.load.copy(), np.full(len(sol.off), -1, dtype=np.int64)
    left = st.fill_existing(sol.unplaced)
    if depth < REPAIR_DEPTH and left.sum() > 0:
        rest = Classes(size=cl.size, count=left, must_od=cl.must_od, arch_ok=cl.arch_ok, members=[])
        sub = plan_fresh(p, rest, compat, prices, new_ok, exact=False, depth=depth + 1, lp=lp)
        st.off = np.concatenate([st.off, sub.off])
        st.load = np.vstack([st.load, sub.load])
        st.kept = np.concatenate([st.kept, sub.kept])
        st.unplaced += sub.unplaced
    else:
        st.unplaced += st.open_new(left, np.ones(p.n_offerings, dtype=bool))
    st.drop_underfilled()
    st.downsize()
    empty = st.load.sum(axis=1) == 0
    if empty.any():
        trial = st.copy()
        trial.remove_nodes(~empty)
        if _pools_ok(p, trial.off):
            st = trial
    st.spread_pools()
    return st


def _pools_ok(p: Problem, off: np.ndarray) -> bool:
    """No spot pool holds more than ceil(max_pool_share x spot nodes) nodes."""
    if p.max_pool_share >= 1.0:
        return True
    spot = off[p.spot[off]]
    if spot.size == 0:
        return True
    return int(np.bincount(spot).max()) <= _ceil_share(p.max_pool_share, int(spot.size))


def _pack_vars(cl: Classes, cmask: np.ndarray, offerings: np.ndarray, counts: np.ndarray) -> int:
    """Variables of the per-node program (`solve_nodes`) over `counts` nodes (rounded) of `offerings`, no spares."""
    n = np.round(np.maximum(counts, 0)).astype(np.int64)
    return int(n.sum() + n @ cmask[:, offerings].sum(axis=0) + len(cl))


def _stopped_short(mip: LPResult) -> bool:
    """Whether an integer program stopped (at its node limit) with its incumbent more than MIP_GAP above its bound."""
    return mip.bound is not None and mip.cost > mip.bound * (1.0 + MIP_GAP) + 1e-9


def _pack_exactly(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    new_ok: np.ndarray,
    offerings: np.ndarray,
    counts: np.ndarray,
    max_vars: int,
    max_nodes: int,
) -> _Plan | None:
    """An integer program's node `counts` (of `offerings`) packed node by node (`_exact_plan`), with one spare node of
    every offering it chose, else without; None when neither runs or finds a packing."""
    used = np.zeros(p.n_offerings, dtype=np.int64)
    used[offerings] = np.round(counts).astype(np.int64)
    alt = _exact_plan(p, cl, compat, prices, new_ok, used + (used > 0), max_vars, max_nodes)
    return alt if alt is not None else _exact_plan(p, cl, compat, prices, new_ok, used, max_vars, max_nodes)


def _exact_plan(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    new_ok: np.ndarray,
    copies: np.ndarray,
    max_vars: int = PACK_VARS,
    max_nodes: int = PACK_NODES,
) -> _Plan | None:
    """The per-node MILP over `copies` candidate nodes per offering, then downsized and pool-spread like any plan."""
    sol = solve_nodes(p, cl, compat & new_ok[None, :], prices, copies, max_vars, max_nodes)
    if sol is None:
        return None
    st = _Plan(p, cl, compat, prices, new_ok)
    st.off, st.load, st.kept = sol.off.copy(), sol.load.copy(), np.full(len(sol.off), -1, dtype=np.int64)
    left = st.fill_existing(sol.unplaced)
    st.unplaced += st.open_new(left, np.ones(p.n_offerings, dtype=bool))
    st.downsize()
    st.spread_pools()
    return st


def _realise(
    p: Problem,
    cl: Classes,
    compat: np.ndarray,
    prices: np.ndarray,
    new_ok: np.ndarray,
    sel: np.ndarray,
    sol: LPResult,
    whole: bool = False,
    depth: int = 1,
    exact: bool = False,
    lp: _LPContext | None = None,
    big_first: bool | None = None,
) -> _Plan:
    """Turn pods-per-(class, offering) from a solve into nodes: round, pack, repair, consolidate, spread pools.

    With `whole` (an integer solve) every offering gets at least the nodes the solve chose."""
    st = _Plan(p, cl, compat, prices, new_ok)
    st.big_first = big_first if big_first is not None else (lp is not None and lp.many_pods and depth == 0)
    st.patterns = lp is not None and lp.many_pods
    placeable = (compat & new_ok[None, :]).any(axis=1)
    st.unplaced += np.where(placeable, 0, cl.count)
    counts = _round_rows(sol.y, np.round(sol.y.sum(axis=1)).astype(np.int64))
    counts[~placeable] = 0
    # (c) pack every chosen type, the most used first
    left = np.zeros(len(cl), dtype=np.int64)
    for k in np.argsort(-sol.x, kind="stable"):
        if counts[:, k].sum() > 0:
            if whole:
                nodes = round(float(sol.x[k]))
            elif depth < REPAIR_DEPTH:
                # round down: a partly used node of this offering is better replaced by what suits the leftovers
                nodes = math.floor(float(sol.x[k]) + 1e-6)
                if nodes == 0:
                    left += counts[:, k]
                    continue
            else:
                nodes = 0
            left += st.pack_type(int(sel[k]), counts[:, k], nodes, up=st.big_first and not whole)
    left += np.where(placeable, cl.count - counts.sum(axis=1), 0)
    # (d) repair: free room first, then the pods left over get a plan of their own (one level deep; below that, the
    # best-value new nodes)
    left = st.fill_existing(left)
    if depth < REPAIR_DEPTH and left.sum() > 0:
        rest = Classes(size=cl.size, count=left, must_od=cl.must_od, arch_ok=cl.arch_ok, members=[])
        sub = plan_fresh(p, rest, compat, prices, new_ok, exact=exact, depth=depth + 1, lp=lp)
        st.off = np.concatenate([st.off, sub.off])
        st.load = np.vstack([st.load, sub.load])
        st.kept = np.concatenate([st.kept, sub.kept])
        st.unplaced += sub.unplaced
    else:
        st.unplaced += st.open_new(left, np.ones(p.n_offerings, dtype=bool))
    # consolidation, then the pool cap (which consolidation may have broken)
    st.drop_underfilled()
    st.downsize()
    st.spread_pools()
    return st


def _round_rows(y: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of `y` to integers that sum to `totals` (largest remainder); rows with no mass stay zero."""
    y = np.maximum(y, 0.0)
    out = np.floor(y + 1e-9).astype(np.int64)
    for d in range(len(y)):
        short = int(totals[d] - out[d].sum())
        if short > 0 and y[d].sum() > 0:
            frac = np.where(y[d] > 0, y[d] - out[d], -1.0)
            top = np.argsort(-frac, kind="stable")[:short]
            out[d, top] += 1
            # if more was asked than there are columns, the rest goes to the biggest column
            extra = short - len(top)
            if extra > 0:
                out[d, int(np.argmax(y[d]))] += extra
        elif short < 0:
            for k in np.argsort(y[d] - out[d], kind="stable"):
                take = min(-short, int(out[d, k]))
                out[d, k] -= take
                short += take
                if short == 0:
                    break
    return out
