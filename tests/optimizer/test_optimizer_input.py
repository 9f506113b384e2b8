"""Malformed problems are rejected with a message naming the path; the command's exit codes and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optimizer import ProblemError, lower_bound, plan, validate

ROOT = Path(__file__).resolve().parents[2]


def good() -> dict[str, Any]:
    return {
        "offerings": [
            {
                "instance_type": "m5.large",
                "zone": "us-east-1a",
                "capacity_type": "spot",
                "price": "0.035",
                "allocatable_cpu_m": 1930,
                "allocatable_memory_mib": 7000,
                "max_pods": 29,
                "arch": "x86_64",
                "interruption_rate": 0.05,
            },
            {
                "instance_type": "m5.large",
                "zone": "us-east-1a",
                "capacity_type": "on-demand",
                "price": 0.096,
                "allocatable_cpu_m": 1930,
                "allocatable_memory_mib": 7000,
                "max_pods": 29,
                "arch": "x86_64",
            },
        ],
        "workloads": [
            {"name": "web", "count": 4, "cpu_m": 250, "memory_mib": 512, "spot_ok": True},
            {"name": "db", "count": 1, "cpu_m": 1000, "memory_mib": 2048, "spot_ok": False, "arch": ["x86_64"]},
            {"name": "jobs", "count": 2, "cpu_m": 100, "memory_mib": 128, "spot_ok": True},
            {"name": "cache", "count": 1, "cpu_m": 500, "memory_mib": 1024, "spot_ok": True},
        ],
        "daemonset": {"cpu_m": 100, "memory_mib": 200, "pods": 2},
        "constraints": {"on_demand_base": 0.0, "max_pool_share": 1.0},
    }


def broken(path: str, value: Any) -> dict[str, Any]:
    """`good()` with the field at `path` (dots and [i]) set to `value`, or removed when value is `...`."""
    pr = good()
    parts = path.replace("[", ".").replace("]", "").split(".")
    obj: Any = pr
    for part in parts[:-1]:
        obj = obj[int(part)] if part.isdigit() else obj[part]
    last = parts[-1]
    if value is ...:
        del obj[last]
    else:
        obj[int(last) if last.isdigit() else last] = value
    return pr


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("workloads[3].cpu_m", -1, "workloads[3].cpu_m: must be >= 0"),
        ("workloads[1].memory_mib", ..., "workloads[1].memory_mib: required field is missing"),
        ("workloads[0].count", 2.5, "workloads[0].count: must be an integer"),
        ("workloads[2].spot_ok", "yes", "workloads[2].spot_ok: must be true or false"),
        ("workloads[1].arch", [], "workloads[1].arch: must be a non-empty list of strings"),
        ("workloads[2].name", "web", "workloads[2].name: duplicate of workloads[0] ('web')"),
        ("offerings[1].capacity_type", "reserved", "offerings[1].capacity_type: must be 'spot' or 'on-demand', got"),
        ("offerings[0].price", "cheap", "offerings[0].price: 'cheap' is not a decimal number"),
        ("offerings[0].price", -0.01, "offerings[0].price: must be >= 0"),
        ("offerings[0].max_pods", True, "offerings[0].max_pods: must be an integer"),
        # numbers past what any node or cluster has: 1e18 made HiGHS find its LP empty, 2**70 overflowed int64, and a
        # price of 1e308 or "1e400" could not be rounded to cents (decimal.InvalidOperation)
        ("offerings[0].allocatable_cpu_m", 1e18, "offerings[0].allocatable_cpu_m: must be <= 1000000000"),
        ("offerings[1].allocatable_memory_mib", 2**70, "offerings[1].allocatable_memory_mib: must be <= 1000000000"),
        ("offerings[0].max_pods", 10**12, "offerings[0].max_pods: must be <= 1000000000"),
        ("offerings[0].price", 1e308, "offerings[0].price: must be <= 1000000"),
        ("offerings[1].price", "1e400", "offerings[1].price: must be <= 1000000"),
        ("workloads[0].count", 10**9, "workloads[0].count: must be <= 1000000"),
        ("daemonset.cpu_m", 2**63, "daemonset.cpu_m: must be <= 1000000000"),
        ("offerings[1].allocatable_cpu_m", ..., "offerings[1].allocatable_cpu_m: required field is missing"),
        ("offerings[0].interruption_rate", 1.5, "offerings[0].interruption_rate: must be between 0 and 1"),
        ("daemonset.pods", -2, "daemonset.pods: must be >= 0"),
        ("constraints.on_demand_base", 2, "constraints.on_demand_base: must be between 0 and 1"),
        ("constraints.max_pool_share", "half", "constraints.max_pool_share: must be a number"),
        ("strategy", "cheapest", "strategy: must be one of lowest-price, price-capacity-optimized"),
        ("workloads", {}, "workloads: must be a list"),
        ("offerings", ..., "problem.offerings: required field is missing"),
    ],
)
def test_malformed_problem_names_the_path(path: str, value: Any, message: str) -> None:
    pr = broken(path, value)
    for fn in (plan, lower_bound, lambda p: validate(p, {"nodes": [], "hourly_cost": "0", "unplaced": {}})):
        with pytest.raises(ProblemError) as exc:
            fn(pr)
        assert str(exc.value).startswith(message)


def test_more_pods_in_all_than_any_cluster_runs_is_rejected() -> None:
    pr = good()
    others = sum(w["count"] for w in pr["workloads"][2:])
    pr["workloads"][0]["count"] = 600_000
    pr["workloads"][1]["count"] = 400_000 - others
    assert plan(pr)["unplaced"] == {}  # a million pods in all is still a problem
    pr["workloads"][1]["count"] += 1
    with pytest.raises(ProblemError, match=r"^workloads: 1000001 pods in all, must be <= 1000000"):
        plan(pr)


def test_duplicate_offering_is_rejected() -> None:
    pr = good()
    pr["offerings"].append(dict(pr["offerings"][0], price="0.04"))
    expected = r"^offerings\[2\]: duplicate of offerings\[0\] \(m5.large, us-east-1a, spot\)"
    with pytest.raises(ProblemError, match=expected):
        plan(pr)


def test_workload_that_fits_no_offering_is_rejected() -> None:
    pr = broken("workloads[3].memory_mib", 7000)  # 7000 + daemonset 200 > 7000 allocatable
    with pytest.raises(ProblemError, match=r"^workloads\[3\]: fits no offering \('cache' needs 500m CPU and 7000 MiB"):
        plan(pr)


def test_workload_whose_arch_has_no_offering_is_rejected() -> None:
    pr = broken("workloads[2].arch", ["arm64"])
    with pytest.raises(ProblemError, match=r"^workloads\[2\]: fits no offering .* on arch arm64"):
        plan(pr)


def test_missing_daemonset_and_constraints_default_to_nothing() -> None:
    pr = good()
    del pr["daemonset"], pr["constraints"]
    result = plan(pr)
    assert validate(pr, result) == []


def run_cli(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optimizer", "plan"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_writes_the_plan_as_json() -> None:
    proc = run_cli(json.dumps(good()))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == plan(good())
    assert validate(good(), result) == []
    assert isinstance(result["hourly_cost"], str)


def test_cli_exits_2_with_the_message_on_stderr() -> None:
    proc = run_cli(json.dumps(broken("workloads[3].cpu_m", -1)))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "workloads[3].cpu_m: must be >= 0" in proc.stderr


def test_cli_exits_2_on_invalid_json() -> None:
    proc = run_cli("{not json")
    assert proc.returncode == 2
    assert "invalid JSON" in proc.stderr


def test_cli_stdout_is_the_plan_alone_when_the_solver_prints() -> None:
    # HiGHS (inside scipy) may print a diagnostic line straight to file descriptor 1 while planning; the command
    # sends it to stderr so stdout stays one JSON document. A planner that writes to descriptor 1 stands in for it.
    chatty = (
        "import os, sys\n"
        "import optimizer.__main__ as cli\n"
        "real = cli.plan\n"
        "def plan(problem):\n"
        "    os.write(1, b'Running HiGHS 1.x: solver chatter\\n')\n"
        "    return real(problem)\n"
        "cli.plan = plan\n"
        "sys.exit(cli.main(['plan']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", chatty],
        input=json.dumps(good()),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "solver chatter" in proc.stderr
    result = json.loads(proc.stdout)
    assert validate(good(), result) == []
