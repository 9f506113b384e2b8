"""Hand-made problems: each constraint of DESIGN.md §6 is honoured by `plan` and caught by `validate`."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from optimizer import plan, validate


def offer(
    itype: str,
    zone: str = "a",
    ctype: str = "spot",
    price: str = "0.1",
    cpu: int = 4000,
    mem: int = 16000,
    pods: int = 30,
    arch: str = "x86_64",
    rate: float | None = None,
) -> dict[str, Any]:
    o: dict[str, Any] = {
        "instance_type": itype,
        "zone": zone,
        "capacity_type": ctype,
        "price": price,
        "allocatable_cpu_m": cpu,
        "allocatable_memory_mib": mem,
        "max_pods": pods,
        "arch": arch,
    }
    if rate is not None:
        o["interruption_rate"] = rate
    return o


def work(
    name: str, count: int, cpu: int = 500, mem: int = 1000, spot_ok: bool = True, arch: list[str] | None = None
) -> dict[str, Any]:
    w: dict[str, Any] = {"name": name, "count": count, "cpu_m": cpu, "memory_mib": mem, "spot_ok": spot_ok}
    if arch is not None:
        w["arch"] = arch
    return w


def problem(
    offerings: list[dict[str, Any]],
    workloads: list[dict[str, Any]],
    ds: tuple[int, int, int] = (0, 0, 0),
    **constraints: Any,
) -> dict[str, Any]:
    return {
        "offerings": offerings,
        "workloads": workloads,
        "daemonset": {"cpu_m": ds[0], "memory_mib": ds[1], "pods": ds[2]},
        "constraints": {"on_demand_base": 0.0, "max_pool_share": 1.0, **constraints},
    }


def placed(result: dict[str, Any], name: str, ctype: str | None = None) -> int:
    return sum(n["pods"].get(name, 0) for n in result["nodes"] if ctype is None or n["capacity_type"] == ctype)


def test_arm_only_workload_lands_on_arm_nodes_even_when_x86_is_cheaper() -> None:
    pr = problem(
        [offer("m5.xlarge", price="0.05"), offer("m6g.xlarge", price="0.08", arch="arm64")],
        [work("api", 6, arch=["arm64"]), work("web", 6)],
    )
    result = plan(pr)
    assert validate(pr, result) == []
    for node in result["nodes"]:
        if "api" in node["pods"]:
            assert node["instance_type"] == "m6g.xlarge"
    assert placed(result, "api") == 6 and result["unplaced"] == {}


def test_on_demand_base_puts_ceil_share_on_on_demand() -> None:
    pr = problem(
        [offer("m5.xlarge", price="0.04"), offer("m5.xlarge", ctype="on-demand", price="0.19")],
        [work("web", 10)],
        on_demand_base=0.25,
    )
    result = plan(pr)
    assert validate(pr, result) == []
    assert placed(result, "web", "on-demand") >= 3  # ceil(0.25 * 10)
    assert placed(result, "web", "spot") >= 1  # the rest is free to use the cheap spot capacity


def test_spot_ok_false_runs_only_on_on_demand() -> None:
    pr = problem(
        [offer("m5.xlarge", price="0.04"), offer("m5.xlarge", ctype="on-demand", price="0.19")],
        [work("db", 3, spot_ok=False), work("web", 3)],
    )
    result = plan(pr)
    assert validate(pr, result) == []
    assert placed(result, "db", "on-demand") == 3
    # web would go to spot on its own, but it fits in the room the on-demand node has anyway
    assert result["hourly_cost"] == "0.190000"


def test_pool_share_spreads_spot_nodes_over_pools() -> None:
    # each node holds exactly one pod, so 6 pods need 6 spot nodes; at most ceil(0.34 * 6) = 3 per pool
    offs = [
        offer("m5.large", zone=z, price=p, cpu=1000, mem=2000) for z, p in (("a", "0.02"), ("b", "0.03"), ("c", "0.04"))
    ]
    pr = problem(offs, [work("web", 6, cpu=800)], max_pool_share=0.34)
    result = plan(pr)
    assert validate(pr, result) == []
    zones = sorted(n["zone"] for n in result["nodes"])
    assert len(zones) == 6 and zones.count("a") <= 3 and len(set(zones)) >= 2


def test_pool_share_falls_back_to_on_demand_when_pools_run_out() -> None:
    # one spot pool and a 50% cap: with S spot nodes at most ceil(S/2) in it, so the pool alone can hold only one
    pr = problem(
        [
            offer("m5.large", price="0.02", cpu=1000, mem=2000),
            offer("m5.large", ctype="on-demand", price="0.09", cpu=1000, mem=2000),
        ],
        [work("web", 4, cpu=800)],
        max_pool_share=0.5,
    )
    result = plan(pr)
    assert validate(pr, result) == []
    assert placed(result, "web") == 4
    assert placed(result, "web", "on-demand") >= 3


def test_pools_above_max_interruption_rate_are_not_used() -> None:
    pr = problem(
        [offer("c5.xlarge", price="0.03", rate=0.3), offer("m5.xlarge", price="0.05", rate=0.05)],
        [work("web", 8)],
        max_interruption_rate=0.1,
    )
    result = plan(pr)
    assert validate(pr, result) == []
    assert {n["instance_type"] for n in result["nodes"]} == {"m5.xlarge"}


def test_daemonset_overhead_is_reserved_on_every_node() -> None:
    # 4000m node, daemonset 1000m: three 1000m pods per node, not four
    pr = problem([offer("m5.xlarge", cpu=4000, mem=64000)], [work("web", 6, cpu=1000, mem=100)], ds=(1000, 0, 0))
    result = plan(pr)
    assert validate(pr, result) == []
    assert len(result["nodes"]) == 2
    assert all(sum(n["pods"].values()) == 3 for n in result["nodes"])


def test_max_pods_limits_pods_per_node_with_daemonset_pods() -> None:
    pr = problem([offer("m5.xlarge", pods=10)], [work("tiny", 20, cpu=10, mem=10)], ds=(0, 0, 2))
    result = plan(pr)
    assert validate(pr, result) == []
    assert len(result["nodes"]) == 3  # 8 pods per node after 2 daemonset pods
    assert max(sum(n["pods"].values()) for n in result["nodes"]) <= 8


def test_unplaced_reports_spot_ok_false_without_on_demand_offering() -> None:
    pr = problem(
        [offer("m5.xlarge"), offer("m6g.xlarge", ctype="on-demand", arch="arm64")],
        [work("db", 2, spot_ok=False, arch=["x86_64"]), work("web", 3)],
    )
    result = plan(pr)
    assert result["unplaced"] == {"db": 2}
    assert placed(result, "web") == 3
    assert validate(pr, result) == []


def test_unplaced_reports_on_demand_base_share_that_cannot_be_on_demand() -> None:
    pr = problem([offer("m5.xlarge")], [work("web", 5)], on_demand_base=0.5)
    result = plan(pr)
    assert result["unplaced"] == {"web": 3}
    assert placed(result, "web", "spot") == 2
    assert validate(pr, result) == []


def test_money_is_six_place_decimal_strings_summed_exactly() -> None:
    pr = problem(
        [
            offer("m5.large", price="0.1", cpu=1000, mem=1000),
            offer("m5.large", zone="b", price=0.2, cpu=1000, mem=1000),
        ],
        [work("web", 3, cpu=900, mem=100)],
        max_pool_share=0.5,
    )
    result = plan(pr)
    assert validate(pr, result) == []
    assert all(n["price"] in ("0.100000", "0.200000") for n in result["nodes"])
    assert Decimal(result["hourly_cost"]) == sum(Decimal(n["price"]) for n in result["nodes"])
    assert result["hourly_cost"] in ("0.400000", "0.500000")


def test_empty_workloads_give_an_empty_plan() -> None:
    result = plan(problem([offer("m5.large")], []))
    assert result == {"nodes": [], "hourly_cost": "0.000000", "unplaced": {}}


# --- the validator catches broken plans (so the checks above can fail) ------------------------------------------


def _good() -> tuple[dict[str, Any], dict[str, Any]]:
    pr = problem(
        [
            offer("m5.xlarge", price="0.04"),
            offer("m5.xlarge", ctype="on-demand", price="0.19"),
            offer("m6g.xlarge", ctype="on-demand", price="0.15", arch="arm64"),
        ],
        [work("db", 2, spot_ok=False), work("web", 4), work("arm", 2, arch=["arm64"])],
        ds=(100, 100, 1),
        on_demand_base=0.5,
    )
    result = plan(pr)
    assert validate(pr, result) == []
    return pr, result


def _node_with(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in result["nodes"] if name in n["pods"])


def test_validate_flags_overfull_node() -> None:
    pr, result = _good()
    _node_with(result, "web")["pods"]["web"] += 100
    assert any("exceeds allocatable" in e for e in validate(pr, result))


def test_validate_flags_wrong_arch_and_spot_for_spot_ok_false() -> None:
    pr, result = _good()
    bad = copy.deepcopy(result)
    node = _node_with(bad, "arm")
    node.update(instance_type="m5.xlarge", capacity_type="spot", price="0.040000")
    node["pods"]["db"] = 1
    bad["hourly_cost"] = str(sum(Decimal(n["price"]) for n in bad["nodes"]))
    errors = validate(pr, bad)
    assert any("arch arm64" not in e and "arch x86_64 not in ['arm64']" in e for e in errors)
    assert any("spot_ok is false" in e for e in errors)


def test_validate_flags_cost_mismatch_unknown_offering_and_lost_pods() -> None:
    pr, result = _good()
    result["hourly_cost"] = "0.000001"
    result["nodes"][0]["zone"] = "nowhere"
    errors = validate(pr, result)
    assert any(e.startswith("plan.hourly_cost") for e in errors)
    assert any("is not an offering" in e for e in errors)
    assert any("placed +" in e for e in errors)


def test_validate_flags_on_demand_base_and_pool_share_and_interruption() -> None:
    pr = problem(
        [offer("m5.xlarge", price="0.04", rate=0.5), offer("m5.xlarge", ctype="on-demand", price="0.19")],
        [work("web", 4)],
        on_demand_base=0.5,
        max_pool_share=0.5,
        max_interruption_rate=0.2,
    )
    everything_on_spot = {
        "nodes": [
            {
                "instance_type": "m5.xlarge",
                "zone": "a",
                "capacity_type": "spot",
                "price": "0.040000",
                "pods": {"web": 2},
            }
        ]
        * 2,
        "hourly_cost": "0.080000",
        "unplaced": {},
    }
    errors = validate(pr, everything_on_spot)
    assert any("needs 2" in e for e in errors)
    assert any("above ceil(0.5 x 2)" in e for e in errors)
    assert any("max_interruption_rate" in e for e in errors)
