"""`plan`: the entry point for both format versions, and the version-2 planner that starts from the current nodes.

Version 1 plans from scratch (`planner.plan_fresh`). Version 2 weighs *candidate plans* that each keep a different
set of current nodes: every kept node is filled first (its current pods where they still fit, then free room), the
remaining pods are planned from scratch on available offerings, and new nodes that land on the offering of a
removed current node keep that node instead. Candidates are the plan from scratch (only protected nodes forced) and
plans that remove the first r current nodes of a priority order (drift first, then the nodes the plan from scratch
drops, then the nodes that cost most beyond the value of their pods). Among admissible candidates (at most
``max_nodes_replaced`` removals), the one that removes fewest nodes within 0.5% of the cheapest wins; then
hysteresis decides between it and the current nodes as they are (see `plan`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from .model import PCO_K, Classes, build_classes, compatibility, effective_prices, usable_offerings
from .planner import _Plan, plan_fresh
from .problem import CurrentNode, Problem, money, parse_problem

__all__ = ["NEAR_CHEAPEST", "plan"]

#: Among candidate plans within this share of the cheapest, the one that removes fewest current nodes wins.
NEAR_CHEAPEST = 0.005
#: Candidate removal counts tried between none and the most allowed (more for small clusters: all of them).
REMOVAL_STEPS = 12


def plan(problem: dict[str, Any]) -> dict[str, Any]:
    """Plan the cheapest node set for `problem` (format version 1 or 2); raise `ProblemError` if it is malformed.

    Version 2 returns a version-1 plan plus ``keep``/``new`` on every node, ``remove``, ``current_hourly_cost``,
    ``saving`` and ``notes``."""
    p = parse_problem(problem)
    cl = build_classes(p)
    prices = effective_prices(p)
    compat = compatibility(p, cl)
    if p.version == 1:
        st = plan_fresh(p, cl, compat, prices, thorough=True)
        order = np.lexsort((-st.used()[:, 2] if len(st.off) else np.zeros(0), st.off))
        pods, unplaced = _assign(p, cl, st, order, [], [])
        nodes = [_node_json(p, int(st.off[i]), pods[k]) for k, i in enumerate(order.tolist())]
        total = sum((p.price[int(j)] for j in st.off), Decimal(0))
        return {"nodes": nodes, "hourly_cost": format(money(total), "f"), "unplaced": unplaced}
    return _Incremental(p, cl, compat, prices).run()


def _node_json(p: Problem, j: int, pods: dict[str, int]) -> dict[str, Any]:
    return {
        "instance_type": p.instance_type[j],
        "zone": p.zone[j],
        "capacity_type": "spot" if p.spot[j] else "on-demand",
        "price": format(p.price[j], "f"),
        "pods": dict(sorted(pods.items())),
    }


def _assign(
    p: Problem,
    cl: Classes,
    st: _Plan,
    order: np.ndarray,
    preferred: list[dict[int, int]],
    members: list[list[list[int]]],
) -> tuple[list[dict[str, int]], dict[str, int]]:
    """Turn class counts per node (nodes in `order`) into pods per workload; a class's pods go to its member
    workloads in order, but a kept node first takes the workloads it runs now (`preferred[k]` for the k-th node of
    `order`, workload index -> pods). `members` (per class, [workload, pods] lists) defaults to the classes' own."""
    queues = members or [[[w, n] for w, n in m] for m in cl.members]
    heads = [0] * len(cl)
    node_pods: list[dict[str, int]] = [{} for _ in range(len(order))]
    load = st.load[order] if len(order) else np.zeros((0, len(cl)), dtype=np.int64)
    need = load.copy()
    for k, pref in enumerate(preferred):
        if not pref:
            continue
        for d in np.flatnonzero(need[k]).tolist():
            for entry in queues[d]:
                w, n = entry
                want = pref.get(w, 0) - node_pods[k].get(p.names[w], 0)
                take = int(min(n, need[k, d], want))
                if take > 0:
                    entry[1] -= take
                    need[k, d] -= take
                    node_pods[k][p.names[w]] = node_pods[k].get(p.names[w], 0) + take
    nz_classes, nz_nodes = np.nonzero(need.T)  # class-major so each class's queue is consumed in one sweep
    for d, k in zip(nz_classes.tolist(), nz_nodes.tolist(), strict=True):
        left = int(need[k, d])
        q = queues[d]
        pods = node_pods[k]
        while left > 0:
            w, n = q[heads[d]]
            take = min(n, left)
            if take:
                name = p.names[w]
                pods[name] = pods.get(name, 0) + take
                left -= take
            if take == n:
                heads[d] += 1
            else:
                q[heads[d]][1] = n - take
    unplaced: dict[str, int] = {}
    for d in range(len(cl)):
        for w, n in queues[d][heads[d] :]:
            if n:
                unplaced[p.names[w]] = unplaced.get(p.names[w], 0) + n
    return node_pods, dict(sorted(unplaced.items()))


class _Candidate:
    """A candidate version-2 plan: the node set, which current nodes it removes, and its list-price cost."""

    def __init__(self, st: _Plan, removed: list[int], list_cost: Decimal, label: str) -> None:
        self.st = st
        self.removed = removed
        self.list_cost = list_cost
        self.label = label

    @property
    def unplaced(self) -> int:
        return int(self.st.unplaced.sum())


class _Incremental:
    """The version-2 planner for one problem (see the module docstring)."""

    def __init__(self, p: Problem, cl: Classes, compat: np.ndarray, prices: np.ndarray) -> None:
        self.p = p
        self.compat = compat
        self.prices = prices
        self.cur: list[CurrentNode] = p.current or []
        self.available = p.available if p.available is not None else np.ones(p.n_offerings, dtype=bool)
        usable = usable_offerings(p)
        self.drift = [c.offering < 0 or not usable[c.offering] for c in self.cur]
        self.cap = p.max_nodes_replaced
        self.notes: list[str] = []
        factor = np.where(p.spot, 1.0 + PCO_K * p.interruption_rate, 1.0)
        pco = p.strategy == "price-capacity-optimized"
        self.cur_eff = np.array(
            [float(c.price) * (float(factor[c.offering]) if pco and c.offering >= 0 else 1.0) for c in self.cur],
            dtype=float,
        )
        # each workload's classes: [on-demand share class or -1, flexible class or -1]
        self.wclass = [[-1, -1] for _ in range(p.n_workloads)]
        for d, mem in enumerate(cl.members):
            for w, _ in mem:
                self.wclass[w][0 if cl.must_od[d] else 1] = d
        # drifted nodes go first; those beyond the removal cap, and protected ones, stay as they are ("held")
        budget = len(self.cur) if self.cap is None else self.cap
        self.drift_removed: list[int] = []
        self.held: list[int] = []
        for k, c in enumerate(self.cur):
            if not self.drift[k]:
                continue
            if not c.protected and len(self.drift_removed) < budget:
                self.drift_removed.append(k)
                self.notes.append(f"node {c.id}: {self._offering_gone(c)}; removed")
            else:
                self.held.append(k)
                why = "protected" if c.protected else "max_nodes_replaced reached"
                self.notes.append(f"node {c.id}: {self._offering_gone(c)}; kept as it is ({why})")
        self.budget = budget - len(self.drift_removed)
        self.members = [[[w, n] for w, n in m] for m in cl.members]
        self.held_pods = [self._pin_held(k) for k in self.held]
        count = np.array([sum(n for _, n in m) for m in self.members], dtype=np.int64)
        self.cl = Classes(size=cl.size, count=count, must_od=cl.must_od, arch_ok=cl.arch_ok, members=cl.members)
        self.forced = [k for k, c in enumerate(self.cur) if c.protected and not self.drift[k]]
        self.removable = [k for k, c in enumerate(self.cur) if not c.protected and not self.drift[k]]

    def _offering_gone(self, c: CurrentNode) -> str:
        if c.offering < 0:
            return f"{c.instance_type}/{c.zone}/{c.capacity_type} is no longer among the offerings (drift)"
        return f"{c.instance_type}/{c.zone}/{c.capacity_type} is no longer allowed by the constraints (drift)"

    def _pin_held(self, k: int) -> dict[int, int]:
        """A held node keeps the pods it runs (those its capacity type still allows); take them off the classes."""
        c = self.cur[k]
        out: dict[int, int] = {}
        for w, n in c.pods.items():
            for d in self.wclass[w] if c.capacity_type == "on-demand" else self.wclass[w][1:]:
                if d < 0 or n <= 0:
                    continue
                for entry in self.members[d]:
                    if entry[0] == w and entry[1] > 0:
                        take = min(n, entry[1])
                        entry[1] -= take
                        n -= take
                        out[w] = out.get(w, 0) + take
        return out

    # --- candidates ------------------------------------------------------------------------------------------------

    def _list_cost(self, st: _Plan) -> Decimal:
        total = sum((self.cur[int(k)].price for k in st.kept[st.kept >= 0]), Decimal(0))
        total += sum((self.p.price[int(j)] for j in st.off[st.kept < 0]), Decimal(0))
        total += sum((self.cur[k].price for k in self.held), Decimal(0))
        return total

    def _fill_kept(self, keep: list[int]) -> tuple[_Plan, np.ndarray]:
        """The kept nodes with their current pods where they still fit, then free room filled; return what is left."""
        p, cl = self.p, self.cl
        st = _Plan(p, cl, self.compat, self.prices, self.available)
        st.kept_price = self.cur_eff
        left = cl.count.copy()
        size = cl.size
        for k in keep:
            c = self.cur[k]
            j = c.offering
            load = np.zeros((1, len(cl)), dtype=np.int64)
            room = st.free[j].copy()
            for w, n in sorted(c.pods.items()):
                for d in self.wclass[w] if c.capacity_type == "on-demand" else self.wclass[w][1:]:
                    if d < 0 or n <= 0 or not self.compat[d, j]:
                        continue
                    t = int(min(n, left[d], (room // np.maximum(size[d], 1)).min()))
                    if t > 0:
                        load[0, d] += t
                        left[d] -= t
                        room -= t * size[d]
                        n -= t
            st.add_nodes(j, load, kept=k)
        left = st.fill_existing(left)
        return st, left

    def _complete(self, keep: list[int], exact: bool, label: str, thorough: bool = False) -> _Candidate:
        """Keep `keep`, plan the pods they do not hold on new nodes, then keep removed nodes new ones would copy."""
        st, left = self._fill_kept(keep)
        sub = Classes(size=self.cl.size, count=left, must_od=self.cl.must_od, arch_ok=self.cl.arch_ok, members=[])
        new = plan_fresh(
            self.p, sub, self.compat, self.prices, self.available, exact=exact and left.sum() > 0, thorough=thorough
        )
        st.off = np.concatenate([st.off, new.off])
        st.load = np.vstack([st.load, new.load])
        st.kept = np.concatenate([st.kept, new.kept])
        st.unplaced = new.unplaced.copy()
        st.spread_pools()
        self._adopt(st, keep, free_only=False)
        removed = [k for k in self.removable if k not in set(st.kept.tolist())]
        return _Candidate(st, removed, self._list_cost(st), label)

    def _adopt(self, st: _Plan, keep: list[int], free_only: bool) -> None:
        """A new node on the offering of a current node the plan removes keeps that node instead (cheapest first);
        with `free_only`, only where the current node costs no more than the offering."""
        kept = set(st.kept.tolist())
        spare: dict[int, list[int]] = {}
        for k in sorted(self.removable, key=lambda k: self.cur_eff[k]):
            if k not in kept:
                spare.setdefault(self.cur[k].offering, []).append(k)
        for i in np.flatnonzero(st.kept < 0).tolist():
            j = int(st.off[i])
            if spare.get(j) and (not free_only or self.cur_eff[spare[j][0]] <= self.prices[j] + 1e-12):
                st.kept[i] = spare[j].pop(0)

    def _status_quo(self) -> tuple[_Candidate, np.ndarray]:
        keep = [k for k in range(len(self.cur)) if not self.drift[k]]
        st, left = self._fill_kept(keep)
        st.unplaced = left
        return _Candidate(st, [], self._list_cost(st), "current"), left

    def _priority(self, scratch: _Candidate, quo: _Candidate) -> list[int]:
        """Removable current nodes, most worth removing first: those the plan from scratch drops, then by how much
        more each costs than the value of the pods it holds now."""
        st = quo.st
        worth = {
            int(st.kept[i]): self.cur_eff[int(st.kept[i])] - float(st.load[i] @ st.value) for i in range(len(st.off))
        }
        # nodes in spot pools above the pool cap first, then those the plan from scratch drops
        over = set(self._over_pools(st).tolist())
        dropped = set(scratch.removed)
        return sorted(
            self.removable,
            key=lambda k: (self.cur[k].offering not in over, k not in dropped, -worth.get(k, self.cur_eff[k]), k),
        )

    def run(self) -> dict[str, Any]:
        p = self.p
        quo, quo_left = self._status_quo()
        placeable = (self.compat & self.available[None, :]).any(axis=1)
        missing = np.where(placeable | quo.st.compat[:, quo.st.off].any(axis=1), quo_left, 0)
        quo_ok = not self.drift_removed and missing.sum() == 0 and self._pools_ok(quo.st)

        cands: list[_Candidate] = []
        scratch = self._complete(self.forced, True, "from scratch", thorough=True)
        cands.append(scratch)
        order = self._priority(scratch, quo)
        top = min(self.budget, len(order))
        steps = (
            list(range(top + 1))
            if top <= REMOVAL_STEPS
            else sorted(
                {round(top * s / REMOVAL_STEPS) for s in range(REMOVAL_STEPS + 1)} | {min(top, len(scratch.removed))}
            )
        )
        for r in steps:
            keep = [k for k in range(len(self.cur)) if not self.drift[k] and k not in set(order[:r])]
            cands.append(self._complete(keep, False, f"remove {r}"))
        ok = [c for c in cands if (self.cap is None or len(c.removed) + len(self.drift_removed) <= self.cap)]
        ok = [c for c in ok if self._pools_ok(c.st, len(c.removed))] or ok
        fewest = min(c.unplaced for c in ok)
        ok = [c for c in ok if c.unplaced == fewest]
        low = min(c.st.cost() for c in ok)
        best = min(
            (c for c in ok if c.st.cost() <= low * (1 + NEAR_CHEAPEST) + 1e-9),
            key=lambda c: (len(c.removed), c.st.cost()),
        )
        repair = min(ok, key=lambda c: (len(c.removed), c.st.cost()))  # the least change that makes a valid plan
        current = sum((c.price for c in self.cur), Decimal(0))
        need = Decimal(str(p.min_saving_pct)) / 100
        if quo_ok:
            saving = current - best.list_cost
            if saving <= 0 or saving < need * current:
                pct = float(saving / current * 100) if current else 0.0
                self.notes.append(
                    f"no change: the best plan saves {max(pct, 0):.2f}% of the current cost, below min_saving_pct "
                    f"{p.min_saving_pct:g}"
                )
                best = quo
        else:
            self.notes += self._why_repair(quo_left, missing, quo)
            if best is not repair and best.list_cost > repair.list_cost * (1 - need):
                best = repair
        if best is not quo and self.cap is not None and len(best.removed) + len(self.drift_removed) >= self.cap:
            if any(len(c.removed) + len(self.drift_removed) > self.cap and c.st.cost() < best.st.cost() for c in cands):
                self.notes.append(f"max_nodes_replaced {self.cap} limits the plan")
        return self._render(best, current)

    def _over_pools(self, st: _Plan, removed: int | None = None) -> np.ndarray:
        """Spot pools above ``ceil(max_pool_share x spot nodes)`` that the plan could have avoided: they hold a new
        node, or a kept unprotected one while the removal cap left room (`removed`: the plan's removals; None for
        the current nodes as they are)."""
        p = self.p
        spot = p.spot[st.off]
        n = int(spot.sum())
        if p.max_pool_share >= 1.0 or n == 0:
            return np.zeros(0, dtype=np.int64)
        cap = int(np.ceil(round(p.max_pool_share * n, 9)))
        over = np.bincount(st.off[spot], minlength=p.n_offerings) > cap
        room = self.cap is None or (removed or 0) + len(self.drift_removed) < self.cap
        movable = np.array([k < 0 or (room and not self.cur[k].protected) for k in st.kept.tolist()], dtype=bool)
        fixable = np.bincount(st.off[spot & movable], minlength=p.n_offerings) > 0
        return np.flatnonzero(over & fixable)

    def _pools_ok(self, st: _Plan, removed: int | None = None) -> bool:
        return len(self._over_pools(st, removed)) == 0

    def _why_repair(self, left: np.ndarray, missing: np.ndarray, quo: _Candidate) -> list[str]:
        cl = self.cl
        out = []
        for d in np.flatnonzero(missing).tolist():
            names = sorted({self.p.names[w] for w, _ in cl.members[d]})
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            what = "on-demand replicas" if cl.must_od[d] else "replicas"
            out.append(f"{int(missing[d])} {what} of {shown} fit on no current node: adding capacity")
        if not self._pools_ok(quo.st):
            out.append(f"the current spot nodes break max_pool_share {self.p.max_pool_share:g}: spreading pools")
        if out or self.drift_removed:
            out.append("the current nodes cannot hold a valid plan, so it changes whatever min_saving_pct says")
        return out

    # --- output ----------------------------------------------------------------------------------------------------

    def _render(self, best: _Candidate, current: Decimal) -> dict[str, Any]:
        p, st = self.p, best.st
        kept_nodes = np.flatnonzero(st.kept >= 0)
        kept_nodes = kept_nodes[np.argsort(st.kept[kept_nodes], kind="stable")]
        new_nodes = np.flatnonzero(st.kept < 0)
        new_nodes = new_nodes[
            np.lexsort((-st.used(new_nodes)[:, 2] if len(new_nodes) else np.zeros(0), st.off[new_nodes]))
        ]
        order = np.concatenate([kept_nodes, new_nodes]).astype(np.int64)
        preferred = [self.cur[int(st.kept[i])].pods for i in kept_nodes.tolist()]
        members = [[list(e) for e in m] for m in self.members]
        pods, unplaced = _assign(p, self.cl, st, order, preferred, members)
        by_id: dict[int, dict[str, Any]] = {}
        for k, i in enumerate(kept_nodes.tolist()):
            c = self.cur[int(st.kept[i])]
            by_id[int(st.kept[i])] = {**self._current_json(c, pods[k]), "keep": c.id}
        for k, held in zip(self.held, self.held_pods, strict=True):
            c = self.cur[k]
            by_id[k] = {**self._current_json(c, {p.names[w]: n for w, n in held.items()}), "keep": c.id}
        nodes = [by_id[k] for k in sorted(by_id)]
        for k, i in enumerate(new_nodes.tolist(), start=len(kept_nodes)):
            nodes.append({**_node_json(p, int(st.off[i]), pods[k]), "new": True})
        total = money(sum((Decimal(n["price"]) for n in nodes), Decimal(0)))
        kept_ids = {n["keep"] for n in nodes if "keep" in n}
        remove = [c.id for c in self.cur if c.id not in kept_ids]
        saving = money(current) - total
        return {
            "version": 2,
            "nodes": nodes,
            "hourly_cost": format(total, "f"),
            "unplaced": unplaced,
            "remove": remove,
            "current_hourly_cost": format(money(current), "f"),
            "saving": {
                "hourly": format(saving, "f"),
                "pct": round(float(saving / current * 100), 2) if current else 0.0,
            },
            "notes": self.notes,
        }

    @staticmethod
    def _current_json(c: CurrentNode, pods: dict[str, int]) -> dict[str, Any]:
        return {
            "instance_type": c.instance_type,
            "zone": c.zone,
            "capacity_type": c.capacity_type,
            "price": format(c.price, "f"),
            "pods": dict(sorted(pods.items())),
        }
