"""The validation's capacity check (``runner._approved_shortfall``): a plan the optimizer made holds its own
problem's pods, over many drawn problems; the same plan against more pods or bigger requests falls short by what the
room left cannot take."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from optimization.services.runner import _approved_shortfall, _offering_key
from optimizer import plan as run_planner
from optimizer.validate import validate
from tests.optimizer.bench import load_bench

CASES = [(mix, seed) for mix in ("web", "memory", "compute", "mixed", "big-pods", "constrained") for seed in (0, 1)]


def _fresh(problem: dict) -> SimpleNamespace:
    return SimpleNamespace(built=SimpleNamespace(problem=problem))


def _offerings(problem: dict) -> dict:
    return {_offering_key(o): o for o in problem["offerings"]}


@pytest.mark.parametrize(("mix", "seed"), CASES)
def test_a_plan_holds_its_own_problem_and_not_a_bigger_one(mix, seed):
    bench = load_bench()
    problem = bench.make_problem({m.name: m for m in bench.MIXES}[mix], 60, (4, 10), (150, 300), seed)
    plan = run_planner(problem)
    assert validate(problem, plan) == []
    assert _approved_shortfall(_fresh(problem), plan, _offerings(problem)) == {}

    # Every workload 40% bigger in count: what the plan's free room cannot take is short, and no more than that.
    grown = copy.deepcopy(problem)
    for w in grown["workloads"]:
        w["count"] = w["count"] + max(1, (w["count"] * 2) // 5)
    short = _approved_shortfall(_fresh(grown), plan, _offerings(grown))
    extra = {w["name"]: w["count"] - o["count"] for w, o in zip(grown["workloads"], problem["workloads"], strict=True)}
    assert short and all(0 < n <= extra[name] for name, n in short.items())

    # Pods asking for less: still held.
    smaller = copy.deepcopy(problem)
    for w in smaller["workloads"]:
        w["cpu_m"], w["memory_mib"] = w["cpu_m"] // 2, w["memory_mib"] // 2
    assert _approved_shortfall(_fresh(smaller), plan, _offerings(smaller)) == {}
