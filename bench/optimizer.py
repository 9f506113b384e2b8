"""Benchmark of the planner on problems built from the bundled AWS catalog (``python bench/optimizer.py``).

Offerings come from ``pricing/data/aws``: instance specs (vCPU, memory, arch, ENIs) sized with the EKS reservations
of `optimizer.catalog`, us-east-1 on-demand prices, us-east-1 spot prices of 2022-05-31 per AZ id mapped to zone
names, and interruption rates from the spot advisor bucket midpoints. Workloads are drawn with fixed seeds. Every plan
is checked with `optimizer.validate` and compared with `optimizer.lower_bound`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from optimizer import lower_bound, plan, validate
from optimizer.catalog import INTERRUPTION_MIDPOINTS, offering

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
class Shape:
    """One benchmark problem family."""

    name: str
    pods: int
    workloads: int
    offerings: int
    seed: int
    spot_ok_share: float = 0.8
    arm_only_share: float = 0.1
    on_demand_base: float = 0.0
    max_pool_share: float = 1.0
    max_interruption_rate: float | None = None
    strategy: str = "lowest-price"


SHAPES = [
    Shape("small", 100, 10, 50, seed=1),
    Shape("small-constrained", 100, 10, 50, seed=2, on_demand_base=0.2, max_pool_share=0.3),
    Shape("medium", 1_000, 50, 200, seed=3, on_demand_base=0.2, max_pool_share=0.3),
    Shape("large", 5_000, 100, 1_000, seed=4, on_demand_base=0.2, max_pool_share=0.3),
    Shape("xl", 20_000, 200, 2_000, seed=5, on_demand_base=0.2, max_pool_share=0.3),
    Shape("xl-unconstrained", 20_000, 200, 2_000, seed=6, spot_ok_share=1.0, arm_only_share=0.0),
    Shape(
        "xl-interruption",
        20_000,
        200,
        2_000,
        seed=7,
        on_demand_base=0.2,
        max_pool_share=0.3,
        max_interruption_rate=0.15,
    ),
    Shape(
        "xl-pco",
        20_000,
        200,
        2_000,
        seed=8,
        on_demand_base=0.2,
        max_pool_share=0.3,
        strategy="price-capacity-optimized",
    ),
]


def make_problem(shape: Shape) -> dict[str, Any]:
    """A deterministic problem of `shape`: offerings sampled from the catalog, workloads drawn from common sizes."""
    rng = np.random.default_rng(shape.seed)
    cat = catalog()
    pick = rng.choice(len(cat), size=min(shape.offerings, len(cat)), replace=False)
    offerings = [cat[i] for i in sorted(pick)]
    # pods per workload: a skewed split (a few big deployments, many small ones), each at least 1
    weights = rng.pareto(1.5, size=shape.workloads) + 0.1
    counts = np.maximum(1, np.floor(weights / weights.sum() * shape.pods)).astype(int)
    counts[np.argmax(counts)] += shape.pods - counts.sum()
    cpu_sizes = np.array([50, 100, 250, 500, 750, 1000, 1500, 2000, 4000])
    workloads = []
    for i in range(shape.workloads):
        cpu = int(rng.choice(cpu_sizes, p=[0.08, 0.15, 0.2, 0.2, 0.08, 0.12, 0.07, 0.06, 0.04]))
        mem = int(cpu * float(rng.choice([0.5, 1, 2, 4, 8])) * 1.024)
        w: dict[str, Any] = {
            "name": f"w{i:03d}",
            "count": int(counts[i]),
            "cpu_m": cpu,
            "memory_mib": max(mem, 32),
            "spot_ok": bool(rng.random() < shape.spot_ok_share),
        }
        if rng.random() < shape.arm_only_share:
            w["arch"] = ["arm64"]
        workloads.append(w)
    constraints: dict[str, Any] = {"on_demand_base": shape.on_demand_base, "max_pool_share": shape.max_pool_share}
    if shape.max_interruption_rate is not None:
        constraints["max_interruption_rate"] = shape.max_interruption_rate
    return {
        "offerings": offerings,
        "workloads": workloads,
        "daemonset": {"cpu_m": 150, "memory_mib": 300, "pods": 3},
        "constraints": constraints,
        "strategy": shape.strategy,
    }


def run(shape: Shape, repeat: int = 3) -> dict[str, Any]:
    """Plan `shape` `repeat` times (best time counts), validate, and compare with the LP bound."""
    problem = make_problem(shape)
    best = float("inf")
    result: dict[str, Any] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = plan(problem)
        best = min(best, time.perf_counter() - t0)
    errors = validate(problem, result)
    bound = lower_bound(problem)
    cost = Decimal(result["hourly_cost"])
    return {
        "shape": shape.name,
        "strategy": shape.strategy,
        "pods": sum(w["count"] for w in problem["workloads"]),
        "workloads": len(problem["workloads"]),
        "offerings": len(problem["offerings"]),
        "nodes": len(result["nodes"]),
        "unplaced": sum(result["unplaced"].values()),
        "time_ms": round(best * 1000, 1),
        "cost": str(cost),
        "lower_bound": f"{bound:.6f}",
        "ratio": round(float(cost) / bound, 4) if bound > 0 else None,
        "valid": not errors,
        "errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    """Print the table (or JSON with --json); exit 1 if any plan is invalid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--repeat", type=int, default=3, help="plans per problem; the best time is reported")
    parser.add_argument("--only", help="run only the shape with this name")
    args = parser.parse_args(argv)
    rows = [run(s, args.repeat) for s in SHAPES if not args.only or s.name == args.only]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        head = (
            f"{'shape':<18}{'pods':>7}{'wl':>5}{'offers':>7}{'nodes':>7}{'time ms':>9}{'cost $/h':>12}"
            f"{'LP bound':>12}{'ratio':>8}  valid"
        )
        print(head)
        print("-" * len(head))
        for r in rows:
            print(
                f"{r['shape']:<18}{r['pods']:>7}{r['workloads']:>5}{r['offerings']:>7}{r['nodes']:>7}"
                f"{r['time_ms']:>9}{r['cost']:>12}{r['lower_bound']:>12}{r['ratio']!s:>8}  "
                f"{'yes' if r['valid'] else 'NO: ' + '; '.join(r['errors'])}"
            )
    return 0 if all(r["valid"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
