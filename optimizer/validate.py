"""An independent checker of plans: it re-derives every rule of DESIGN.md §6 from the problem with plain loops and
shares nothing with the planner but the problem parser."""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from .problem import parse_problem

__all__ = ["validate"]


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        d = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def validate(problem: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    """Return every rule `plan` breaks for `problem` (empty list: the plan is valid).

    On-demand base: a workload needs ``ceil(on_demand_base * count)`` replicas on on-demand, less any replicas the
    plan reports unplaced (an unplaced replica is reported, not hidden). Raises `ProblemError` if the problem itself
    is malformed.
    """
    p = parse_problem(problem)
    errors: list[str] = []
    if not isinstance(plan, dict):
        return ["plan: must be an object"]
    nodes = plan.get("nodes")
    unplaced = plan.get("unplaced")
    if not isinstance(nodes, list):
        return ["plan.nodes: must be a list"]
    if not isinstance(unplaced, dict):
        return ["plan.unplaced: must be an object"]

    offering = {(p.instance_type[i], p.zone[i], "spot" if p.spot[i] else "on-demand"): i for i in range(p.n_offerings)}
    workload = {name: i for i, name in enumerate(p.names)}
    current = {c.id: c for c in p.current or []}
    held: set[int] = set()  # nodes kept as they are although their offering drifted: checked against their pods
    # Version 2: a pool above the cap is the plan's fault only if it could have avoided it: a new node in it, or a kept
    # unprotected node while the removal cap left room to remove it.
    removals = plan.get("remove") if isinstance(plan.get("remove"), list) else []
    room_to_remove = p.max_nodes_replaced is None or len(removals) < p.max_nodes_replaced
    if p.version == 2:
        errors += _check_version_2(p, plan, nodes, current, offering, held)
    placed: Counter[str] = Counter()
    on_demand: Counter[str] = Counter()
    pools: Counter[tuple[str, str]] = Counter()
    movable: Counter[tuple[str, str]] = Counter()  # spot nodes per pool other than protected kept ones
    total = Decimal(0)
    n_spot = 0
    for k, node in enumerate(nodes):
        where = f"nodes[{k}]"
        if not isinstance(node, dict):
            errors.append(f"{where}: must be an object")
            continue
        key = (node.get("instance_type"), node.get("zone"), node.get("capacity_type"))
        j = offering.get(key)  # type: ignore[arg-type]
        if k in held:
            pods = node.get("pods")
            price = _dec(node.get("price"))
            total += price if price is not None else 0
            before = current[node["keep"]].pods
            for name, n in (pods if isinstance(pods, dict) else {}).items():
                w = workload.get(name)
                if w is None or isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n > before.get(w, 0):
                    errors.append(f"{where}.pods.{name}: a node kept on a drifted offering may only keep its own pods")
                    continue
                placed[name] += n
                if key[2] == "spot" and not p.spot_ok[w]:
                    errors.append(f"{where}.pods.{name}: spot_ok is false but the node is spot")
                if key[2] == "on-demand":
                    on_demand[name] += n
            continue
        if j is None:
            errors.append(f"{where}: {key} is not an offering of the problem")
            continue
        price = _dec(node.get("price"))
        kept = current.get(node.get("keep")) if p.version == 2 else None  # type: ignore[arg-type]
        if price is None:
            errors.append(f"{where}.price: not a decimal amount")
        elif kept is not None:
            total += price
        else:
            total += price
            if price != p.price[j]:
                errors.append(f"{where}.price: {price} differs from the offering's {p.price[j]}")
        is_spot = key[2] == "spot"
        if is_spot:
            n_spot += 1
            pools[(key[0], key[1])] += 1
            if p.version != 2 or kept is None or (not kept.protected and room_to_remove):
                movable[(key[0], key[1])] += 1
            if p.max_interruption_rate is not None and p.interruption_rate[j] > p.max_interruption_rate:
                errors.append(
                    f"{where}: spot pool {key[0]}/{key[1]} interruption rate {p.interruption_rate[j]} is above "
                    f"max_interruption_rate {p.max_interruption_rate}"
                )
        pods = node.get("pods")
        if not isinstance(pods, dict):
            errors.append(f"{where}.pods: must be an object")
            continue
        cpu, mem, n_pods = p.ds_cpu, p.ds_mem, p.ds_pods
        for name, n in pods.items():
            w = workload.get(name)
            if w is None:
                errors.append(f"{where}.pods: unknown workload {name!r}")
                continue
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                errors.append(f"{where}.pods.{name}: must be a positive integer")
                continue
            cpu += n * int(p.w_cpu[w])
            mem += n * int(p.w_mem[w])
            n_pods += n
            placed[name] += n
            if p.w_arch[w] is not None and p.arch[j] not in p.w_arch[w]:  # type: ignore[operator]
                errors.append(f"{where}.pods.{name}: arch {p.arch[j]} not in {sorted(p.w_arch[w] or ())}")
            if is_spot and not p.spot_ok[w]:
                errors.append(f"{where}.pods.{name}: spot_ok is false but the node is spot")
            if not is_spot:
                on_demand[name] += n
        if cpu > p.cpu[j]:
            errors.append(f"{where}: CPU {cpu}m (daemonset included) exceeds allocatable {p.cpu[j]}m")
        if mem > p.mem[j]:
            errors.append(f"{where}: memory {mem} MiB (daemonset included) exceeds allocatable {p.mem[j]} MiB")
        if n_pods > p.max_pods[j]:
            errors.append(f"{where}: {n_pods} pods (daemonset included) exceed max_pods {p.max_pods[j]}")

    cost = _dec(plan.get("hourly_cost"))
    if cost is None:
        errors.append("plan.hourly_cost: not a decimal amount")
    elif cost != total:
        errors.append(f"plan.hourly_cost: {cost} is not the sum of node prices {total}")

    if p.max_pool_share < 1.0 and n_spot:
        cap = math.ceil(round(p.max_pool_share * n_spot, 9))
        for (itype, zone), n in sorted(pools.items()):
            if n > cap and movable[(itype, zone)]:
                errors.append(
                    f"spot pool {itype}/{zone}: {n} of {n_spot} spot nodes, above ceil({p.max_pool_share} x {n_spot})"
                    f" = {cap}"
                )

    for name in unplaced:
        if name not in workload:
            errors.append(f"plan.unplaced: unknown workload {name!r}")
    for w, name in enumerate(p.names):
        miss = unplaced.get(name, 0)
        if isinstance(miss, bool) or not isinstance(miss, int) or miss < 0:
            errors.append(f"plan.unplaced.{name}: must be a non-negative integer")
            continue
        count = int(p.count[w])
        if placed[name] + miss != count:
            errors.append(f"workload {name}: {placed[name]} placed + {miss} unplaced != count {count}")
        need = count if not p.spot_ok[w] else math.ceil(round(p.on_demand_base * count, 9))
        if on_demand[name] + miss < need:
            errors.append(f"workload {name}: {on_demand[name]} replicas on on-demand, needs {need}")
    return errors


def _check_version_2(
    p: Any,
    plan: dict[str, Any],
    nodes: list[Any],
    current: dict[str, Any],
    offering: dict[tuple[str, str, str], int],
    held: set[int],
) -> list[str]:
    """Version-2 rules: keep/new on every node, kept ids exist once with their offering and price, every current
    node kept or removed, protected ones kept, at most max_nodes_replaced removed, no new node on an unavailable
    offering, and current cost and saving adding up. Fills `held` with the nodes kept on a drifted offering."""
    errors: list[str] = []
    usable = _usable(p)
    seen: set[str] = set()
    for k, node in enumerate(nodes):
        where = f"nodes[{k}]"
        if not isinstance(node, dict):
            continue
        keep, new = node.get("keep"), node.get("new")
        if (keep is None) == (new is None) or (new is not None and new is not True):
            errors.append(f"{where}: needs exactly one of keep (a current node id) or new: true")
            continue
        key = (node.get("instance_type"), node.get("zone"), node.get("capacity_type"))
        if new:
            j = offering.get(key)  # type: ignore[arg-type]
            if j is not None and p.available is not None and not p.available[j]:
                errors.append(f"{where}: new node on unavailable offering {key}")
            continue
        c = current.get(keep)  # type: ignore[arg-type]
        if c is None:
            errors.append(f"{where}.keep: {keep!r} is not a current node")
            continue
        if keep in seen:
            errors.append(f"{where}.keep: {keep!r} is kept twice")
        seen.add(keep)
        if key != (c.instance_type, c.zone, c.capacity_type):
            errors.append(
                f"{where}: kept node {keep} changes offering from {(c.instance_type, c.zone, c.capacity_type)}"
            )
            continue
        if _dec(node.get("price")) != c.price:
            errors.append(f"{where}.price: kept node {keep} costs {c.price}")
        if c.offering < 0 or not usable[c.offering]:
            held.add(k)
    remove = plan.get("remove")
    if not isinstance(remove, list):
        return errors + ["plan.remove: must be a list"]
    removed: set[str] = set()
    for i, rid in enumerate(remove):
        if rid not in current:
            errors.append(f"plan.remove[{i}]: {rid!r} is not a current node")
        elif rid in removed or rid in seen:
            errors.append(f"plan.remove[{i}]: {rid!r} is removed twice or also kept")
        elif current[rid].protected:
            errors.append(f"plan.remove[{i}]: {rid!r} is protected")
        removed.add(rid)
    for cid in current:
        if cid not in seen and cid not in removed:
            errors.append(f"current node {cid}: neither kept nor removed")
    if p.max_nodes_replaced is not None and len(removed) > p.max_nodes_replaced:
        errors.append(f"plan.remove: {len(removed)} nodes, above max_nodes_replaced {p.max_nodes_replaced}")
    cur_cost = sum((c.price for c in current.values()), Decimal(0))
    stated = _dec(plan.get("current_hourly_cost"))
    if stated != cur_cost:
        errors.append(f"plan.current_hourly_cost: {stated} is not the sum of current node prices {cur_cost}")
    saving = plan.get("saving")
    cost = _dec(plan.get("hourly_cost"))
    if not isinstance(saving, dict):
        errors.append("plan.saving: must be an object")
    elif cost is not None:
        hourly = _dec(saving.get("hourly"))
        if hourly != cur_cost - cost:
            errors.append(f"plan.saving.hourly: {hourly} is not {cur_cost} - {cost}")
        pct = saving.get("pct")
        want = float((cur_cost - cost) / cur_cost * 100) if cur_cost else 0.0
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or abs(pct - want) > 0.01:
            errors.append(f"plan.saving.pct: {pct!r} is not {want:.2f}")
    if not isinstance(plan.get("notes"), list) or not all(isinstance(n, str) for n in plan["notes"]):
        errors.append("plan.notes: must be a list of strings")
    return errors


def _usable(p: Any) -> list[bool]:
    """Offerings a node may still sit on: room for the daemonset and a pod, and for spot the interruption limit and
    a pool share above 0."""
    out = []
    for j in range(p.n_offerings):
        ok = bool(
            p.cpu[j] >= p.ds_cpu and p.mem[j] >= p.ds_mem and p.max_pods[j] >= p.ds_pods + 1
        )  # room for the daemonset and one pod
        if ok and p.spot[j]:
            ok = p.max_pool_share > 0 and (
                p.max_interruption_rate is None or p.interruption_rate[j] <= p.max_interruption_rate
            )
        out.append(ok)
    return out
