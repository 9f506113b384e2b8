"""Parsing and checking of a format-version-1 problem (DESIGN.md §6).

`parse_problem` turns the JSON-shaped dict into a `Problem` of numpy arrays, or raises `ProblemError` with a message
that names the offending path (``workloads[3].cpu_m: must be >= 0``). Everything after this module may assume a
well-formed problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

__all__ = [
    "CAPACITY_TYPES",
    "DEFAULT_MIN_SAVING_PCT",
    "MONEY_PLACES",
    "STRATEGIES",
    "CurrentNode",
    "Problem",
    "ProblemError",
    "money",
    "parse_problem",
]

CAPACITY_TYPES = ("spot", "on-demand")
STRATEGIES = ("lowest-price", "price-capacity-optimized")
MONEY_PLACES = Decimal("0.000001")
#: Upper limits on the numbers of a problem, far above any real node or cluster (the largest EC2 instance has
#: 448 vCPU and 24 TiB; Kubernetes supports 150,000 pods a cluster): beyond them a problem is a mistake, and
#: numbers near 1e18 or past 2**63 would break the arithmetic (HiGHS takes ~1e20 for infinity; numpy's int64).
MAX_QUANTITY = 1_000_000_000  # millicores, MiB and pods per node
MAX_PODS = 1_000_000  # pods of a workload, of a current node, of the whole problem
MAX_PRICE = Decimal(1_000_000)  # USD per hour
#: Format version 2: a plan changes nothing unless it saves at least this share (percent) of the current cost.
DEFAULT_MIN_SAVING_PCT = 5.0


class ProblemError(ValueError):
    """A problem that is not well-formed; the message starts with the JSON path of the first fault found."""


def money(value: Decimal) -> Decimal:
    """Round a USD/hour amount to the product's 6 decimal places."""
    return value.quantize(MONEY_PLACES)


@dataclass
class CurrentNode:
    """A node the cluster runs now (format version 2).

    ``offering`` is the index of its (type, zone, capacity type) among the problem's offerings, or -1 when the
    problem no longer offers it; ``pods`` maps workload index to replicas, unknown workloads left out.
    """

    id: str
    instance_type: str
    zone: str
    capacity_type: str
    price: Decimal
    pods: dict[int, int]
    protected: bool
    offering: int


@dataclass
class Problem:
    """A checked problem as arrays; index i of every offering array is ``offerings[i]`` of the input.

    Sizes are the raw allocatable figures; the planner subtracts the daemonset itself (`free_*`).
    """

    # offerings
    instance_type: list[str]
    zone: list[str]
    spot: np.ndarray  # bool
    price: list[Decimal]  # rounded to 6 places, exactly what a plan must report
    price_f: np.ndarray  # float copy of `price` for the solvers
    cpu: np.ndarray  # int64 millicores
    mem: np.ndarray  # int64 MiB
    max_pods: np.ndarray  # int64
    arch: list[str]
    interruption_rate: np.ndarray  # float, 0 where not given
    # workloads
    names: list[str]
    count: np.ndarray  # int64
    w_cpu: np.ndarray
    w_mem: np.ndarray
    spot_ok: np.ndarray  # bool
    w_arch: list[frozenset[str] | None]  # None: any arch
    # daemonset and constraints
    ds_cpu: int
    ds_mem: int
    ds_pods: int
    on_demand_base: float
    max_pool_share: float
    max_interruption_rate: float | None
    strategy: str
    # format version 2 (defaults describe a version-1 problem: no current nodes, everything available)
    version: int = 1
    current: list[CurrentNode] | None = None
    available: np.ndarray | None = None  # bool per offering: may be used for new nodes
    max_nodes_replaced: int | None = None
    min_saving_pct: float = DEFAULT_MIN_SAVING_PCT
    # what the planner derives once per problem and reuses across its repair levels and candidate plans
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_offerings(self) -> int:
        return len(self.instance_type)

    @property
    def n_workloads(self) -> int:
        return len(self.names)

    def od_required(self) -> np.ndarray:
        """Replicas of each workload that must run on on-demand: all of a spot_ok=false workload, else the base."""
        base = np.array([_ceil_share(self.on_demand_base, int(c)) for c in self.count], dtype=np.int64)
        return np.where(self.spot_ok, base, self.count)

    def free_capacity(self) -> np.ndarray:
        """(n_offerings, 3) cpu, memory and pod slots left for workloads once the daemonset has taken its share."""
        return np.stack([self.cpu - self.ds_cpu, self.mem - self.ds_mem, self.max_pods - self.ds_pods], axis=1).astype(
            np.int64
        )

    def offering_index(self) -> dict[tuple[str, str, str], int]:
        """(instance_type, zone, capacity_type) -> offering index."""
        return {
            (self.instance_type[j], self.zone[j], "spot" if self.spot[j] else "on-demand"): j
            for j in range(self.n_offerings)
        }

    def arch_ok(self) -> np.ndarray:
        """(n_workloads, n_offerings) bool: the workload's arch list admits the offering's arch."""
        archs = np.array(self.arch, dtype=object)
        out = np.ones((self.n_workloads, self.n_offerings), dtype=bool)
        for i, allowed in enumerate(self.w_arch):
            if allowed is not None:
                out[i] = np.isin(archs, list(allowed))
        return out


def _ceil_share(share: float, count: int) -> int:
    """ceil(share * count) without float noise turning 0.3*10 into 4: round to 9 places first."""
    return math.ceil(round(share * count, 9))


# --- field readers -------------------------------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ProblemError(f"{path}.{key}: required field is missing")
    return obj[key]


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProblemError(f"{path}: must be an object")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProblemError(f"{path}: must be a non-empty string")
    return value


def _int(value: Any, path: str, minimum: int = 0, maximum: int = MAX_QUANTITY) -> int:
    # bool is an int subclass in Python; `true` as a CPU size is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProblemError(f"{path}: must be an integer")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ProblemError(f"{path}: must be an integer")
    if value < minimum:
        raise ProblemError(f"{path}: must be >= {minimum}")
    if value > maximum:
        raise ProblemError(f"{path}: must be <= {maximum}")
    return int(value)


def _fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProblemError(f"{path}: must be a number")
    if not 0.0 <= value <= 1.0:
        raise ProblemError(f"{path}: must be between 0 and 1")
    return float(value)


def _price(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProblemError(f"{path}: must be a number or a decimal string")
    try:
        # str() of a float is its shortest round-trip form, so 0.096 stays 0.096 rather than 0.0959999...
        price = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ProblemError(f"{path}: {value!r} is not a decimal number") from None
    if not price.is_finite():
        raise ProblemError(f"{path}: must be finite")
    if price < 0:
        raise ProblemError(f"{path}: must be >= 0")
    if price > MAX_PRICE:
        raise ProblemError(f"{path}: must be <= {MAX_PRICE}")
    return money(price)


# --- the parser ----------------------------------------------------------------------------------------------------


def parse_problem(problem: Any) -> Problem:
    """Check `problem` against format version 1 and return it as arrays; raise `ProblemError` on the first fault."""
    problem = _obj(problem, "problem")
    offerings = _get(problem, "offerings", "problem")
    workloads = _get(problem, "workloads", "problem")
    if not isinstance(offerings, list):
        raise ProblemError("offerings: must be a list")
    if not isinstance(workloads, list):
        raise ProblemError("workloads: must be a list")

    o_type: list[str] = []
    o_zone: list[str] = []
    o_spot: list[bool] = []
    o_price: list[Decimal] = []
    o_cpu: list[int] = []
    o_mem: list[int] = []
    o_pods: list[int] = []
    o_arch: list[str] = []
    o_rate: list[float] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, raw in enumerate(offerings):
        path = f"offerings[{i}]"
        o = _obj(raw, path)
        itype = _str(_get(o, "instance_type", path), f"{path}.instance_type")
        zone = _str(_get(o, "zone", path), f"{path}.zone")
        ctype = _get(o, "capacity_type", path)
        if ctype not in CAPACITY_TYPES:
            raise ProblemError(f"{path}.capacity_type: must be 'spot' or 'on-demand', got {ctype!r}")
        key = (itype, zone, ctype)
        if key in seen:
            raise ProblemError(f"{path}: duplicate of offerings[{seen[key]}] ({itype}, {zone}, {ctype})")
        seen[key] = i
        o_type.append(itype)
        o_zone.append(zone)
        o_spot.append(ctype == "spot")
        o_price.append(_price(_get(o, "price", path), f"{path}.price"))
        o_cpu.append(_int(_get(o, "allocatable_cpu_m", path), f"{path}.allocatable_cpu_m"))
        o_mem.append(_int(_get(o, "allocatable_memory_mib", path), f"{path}.allocatable_memory_mib"))
        o_pods.append(_int(_get(o, "max_pods", path), f"{path}.max_pods"))
        o_arch.append(_str(_get(o, "arch", path), f"{path}.arch"))
        rate = o.get("interruption_rate")
        o_rate.append(0.0 if rate is None else _fraction(rate, f"{path}.interruption_rate"))

    w_names: list[str] = []
    w_count: list[int] = []
    w_cpu: list[int] = []
    w_mem: list[int] = []
    w_spot: list[bool] = []
    w_arch: list[frozenset[str] | None] = []
    names_seen: dict[str, int] = {}
    for i, raw in enumerate(workloads):
        path = f"workloads[{i}]"
        w = _obj(raw, path)
        name = _str(_get(w, "name", path), f"{path}.name")
        if name in names_seen:
            raise ProblemError(f"{path}.name: duplicate of workloads[{names_seen[name]}] ({name!r})")
        names_seen[name] = i
        w_names.append(name)
        w_count.append(_int(_get(w, "count", path), f"{path}.count", maximum=MAX_PODS))
        w_cpu.append(_int(_get(w, "cpu_m", path), f"{path}.cpu_m"))
        w_mem.append(_int(_get(w, "memory_mib", path), f"{path}.memory_mib"))
        spot_ok = _get(w, "spot_ok", path)
        if not isinstance(spot_ok, bool):
            raise ProblemError(f"{path}.spot_ok: must be true or false")
        w_spot.append(spot_ok)
        arch = w.get("arch")
        if arch is None:
            w_arch.append(None)
        else:
            if not isinstance(arch, list) or not arch:
                raise ProblemError(f"{path}.arch: must be a non-empty list of strings")
            w_arch.append(frozenset(_str(a, f"{path}.arch[{k}]") for k, a in enumerate(arch)))

    if sum(w_count) > MAX_PODS:
        raise ProblemError(f"workloads: {sum(w_count)} pods in all, must be <= {MAX_PODS}")

    ds = _obj(problem.get("daemonset", {"cpu_m": 0, "memory_mib": 0, "pods": 0}), "daemonset")
    ds_cpu = _int(_get(ds, "cpu_m", "daemonset"), "daemonset.cpu_m")
    ds_mem = _int(_get(ds, "memory_mib", "daemonset"), "daemonset.memory_mib")
    ds_pods = _int(_get(ds, "pods", "daemonset"), "daemonset.pods")

    cons = _obj(problem.get("constraints", {}), "constraints")
    base = _fraction(cons.get("on_demand_base", 0.0), "constraints.on_demand_base")
    share = _fraction(cons.get("max_pool_share", 1.0), "constraints.max_pool_share")
    max_rate_raw = cons.get("max_interruption_rate")
    max_rate = None if max_rate_raw is None else _fraction(max_rate_raw, "constraints.max_interruption_rate")

    strategy = problem.get("strategy", "lowest-price")
    if strategy is None:
        strategy = "lowest-price"
    if strategy not in STRATEGIES:
        raise ProblemError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")

    p = Problem(
        instance_type=o_type,
        zone=o_zone,
        spot=np.array(o_spot, dtype=bool),
        price=o_price,
        price_f=np.array([float(x) for x in o_price], dtype=float),
        cpu=np.array(o_cpu, dtype=np.int64),
        mem=np.array(o_mem, dtype=np.int64),
        max_pods=np.array(o_pods, dtype=np.int64),
        arch=o_arch,
        interruption_rate=np.array(o_rate, dtype=float),
        names=w_names,
        count=np.array(w_count, dtype=np.int64),
        w_cpu=np.array(w_cpu, dtype=np.int64),
        w_mem=np.array(w_mem, dtype=np.int64),
        spot_ok=np.array(w_spot, dtype=bool),
        w_arch=w_arch,
        ds_cpu=ds_cpu,
        ds_mem=ds_mem,
        ds_pods=ds_pods,
        on_demand_base=base,
        max_pool_share=share,
        max_interruption_rate=max_rate,
        strategy=strategy,
    )
    _check_every_workload_fits_somewhere(p)
    version = problem.get("version", 1)
    if isinstance(version, bool) or version not in (1, 2):
        raise ProblemError(f"version: must be 1 or 2, got {version!r}")
    if version == 2:
        _parse_version_2(problem, p)
    return p


def _parse_version_2(problem: dict[str, Any], p: Problem) -> None:
    """Read ``current_nodes``, ``unavailable`` and ``disruption`` into `p` (all optional)."""
    p.version = 2
    index = p.offering_index()
    workload = {name: w for w, name in enumerate(p.names)}
    raw_nodes = problem.get("current_nodes", [])
    if not isinstance(raw_nodes, list):
        raise ProblemError("current_nodes: must be a list")
    current: list[CurrentNode] = []
    ids: dict[str, int] = {}
    for i, raw in enumerate(raw_nodes):
        path = f"current_nodes[{i}]"
        n = _obj(raw, path)
        node_id = _str(_get(n, "id", path), f"{path}.id")
        if node_id in ids:
            raise ProblemError(f"{path}.id: duplicate of current_nodes[{ids[node_id]}] ({node_id!r})")
        ids[node_id] = i
        itype = _str(_get(n, "instance_type", path), f"{path}.instance_type")
        zone = _str(_get(n, "zone", path), f"{path}.zone")
        ctype = _get(n, "capacity_type", path)
        if ctype not in CAPACITY_TYPES:
            raise ProblemError(f"{path}.capacity_type: must be 'spot' or 'on-demand', got {ctype!r}")
        price = _price(_get(n, "price", path), f"{path}.price")
        pods_raw = _obj(n.get("pods", {}), f"{path}.pods")
        pods: dict[int, int] = {}
        for name, count in pods_raw.items():
            k = _int(count, f"{path}.pods.{name}", maximum=MAX_PODS)
            if name not in workload:
                raise ProblemError(f"{path}.pods.{name}: unknown workload")
            if k:
                pods[workload[name]] = k
        protected = n.get("protected", False)
        if not isinstance(protected, bool):
            raise ProblemError(f"{path}.protected: must be true or false")
        current.append(
            CurrentNode(
                id=node_id,
                instance_type=itype,
                zone=zone,
                capacity_type=ctype,
                price=price,
                pods=pods,
                protected=protected,
                offering=index.get((itype, zone, ctype), -1),
            )
        )
    available = np.ones(p.n_offerings, dtype=bool)
    raw_un = problem.get("unavailable", [])
    if not isinstance(raw_un, list):
        raise ProblemError("unavailable: must be a list")
    for i, raw in enumerate(raw_un):
        path = f"unavailable[{i}]"
        u = _obj(raw, path)
        key = (
            _str(_get(u, "instance_type", path), f"{path}.instance_type"),
            _str(_get(u, "zone", path), f"{path}.zone"),
            _get(u, "capacity_type", path),
        )
        if key[2] not in CAPACITY_TYPES:
            raise ProblemError(f"{path}.capacity_type: must be 'spot' or 'on-demand', got {key[2]!r}")
        j = index.get(key)
        if j is not None:  # an offering the problem does not list is unusable anyway
            available[j] = False
    dis = problem.get("disruption")
    dis = {} if dis is None else _obj(dis, "disruption")
    cap = dis.get("max_nodes_replaced")
    min_pct = dis.get("min_saving_pct", DEFAULT_MIN_SAVING_PCT)
    if min_pct is None:
        min_pct = DEFAULT_MIN_SAVING_PCT
    if isinstance(min_pct, bool) or not isinstance(min_pct, (int, float)) or not math.isfinite(min_pct):
        raise ProblemError("disruption.min_saving_pct: must be a number")
    if not 0.0 <= min_pct <= 100.0:
        raise ProblemError("disruption.min_saving_pct: must be between 0 and 100")
    p.current = current
    p.available = available
    p.max_nodes_replaced = None if cap is None else _int(cap, "disruption.max_nodes_replaced")
    p.min_saving_pct = float(min_pct)


def _check_every_workload_fits_somewhere(p: Problem) -> None:
    """A workload whose single pod fits no offering of an allowed arch (whatever the capacity type and constraints)
    is a malformed problem, not an unplaced one: no cluster could ever run it."""
    if p.n_workloads == 0:
        return
    free = p.free_capacity()
    fits = (
        (p.w_cpu[:, None] <= free[None, :, 0])
        & (p.w_mem[:, None] <= free[None, :, 1])
        & (free[None, :, 2] >= 1)
        & p.arch_ok()
    )
    bad = np.flatnonzero((p.count > 0) & ~fits.any(axis=1))
    if bad.size:
        i = int(bad[0])
        arch = "any arch" if p.w_arch[i] is None else "arch " + "/".join(sorted(p.w_arch[i] or ()))
        raise ProblemError(
            f"workloads[{i}]: fits no offering ({p.names[i]!r} needs {p.w_cpu[i]}m CPU and {p.w_mem[i]} MiB per pod"
            f" on {arch}, after the daemonset's {p.ds_cpu}m / {p.ds_mem} MiB / {p.ds_pods} pods)"
        )
