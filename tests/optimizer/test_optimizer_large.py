"""Problems above the small size class: the node patterns' dive (column generation, patterns used whole fixed, the
rest by a short integer program), also under a pool cap; valid, deterministic, within reach of the LP bound."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer import plan, planner, validate
from optimizer.model import build_classes, compatibility, undominated
from optimizer.patterns import solve_patterns
from optimizer.problem import _ceil_share, parse_problem

ROOT = Path(__file__).resolve().parents[2]


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_optimizer_large", ROOT / "bench" / "optimizer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def catalog_problem(mix: str, pods: int, seed: int) -> dict[str, Any]:
    bench = load_bench()
    return bench.make_problem(next(m for m in bench.MIXES if m.name == mix), pods, (20, 40), (1_500, 1_500), seed)


@pytest.mark.parametrize(("mix", "dive_up"), [("constrained", 0.5), ("memory", None)])
def test_dive_gives_nodes_that_fit_and_account_for_every_pod(mix: str, dive_up: float | None) -> None:
    pr = catalog_problem(mix, 600, 51)
    p = parse_problem(pr)
    cl = build_classes(p)
    compat = compatibility(p, cl)
    cmask = compat & undominated(p, p.price_f, compat.any(axis=0))[None, :]
    cols = np.flatnonzero(cmask.any(axis=0))
    res = solve_patterns(
        p,
        cl,
        cmask,
        p.price_f,
        cols,
        dynamic=False,
        mip_nodes=50,
        dive=True,
        dive_up=dive_up,
        s_form=True,
        mip_pool=False,
    )
    assert res is not None
    used = res.load @ cl.size
    assert (used <= p.free_capacity()[res.off]).all()  # every node holds its pods
    assert (res.load.sum(axis=0) + res.unplaced == cl.count).all()  # no pod lost, none invented
    assert (res.load >= 0).all() and (res.unplaced >= 0).all()
    assert cmask[:, res.off][res.load.T > 0].all()  # pods only where they may run
    assert res.cost == pytest.approx(float(p.price_f[res.off].sum()))


@pytest.mark.parametrize(("mix", "pods", "seed"), [("constrained", 1_200, 52), ("big-pods", 1_000, 53)])
def test_mid_sized_plans_are_valid_deterministic_and_cheaper_with_node_patterns(
    mix: str, pods: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_bench()
    pr = catalog_problem(mix, pods, seed)
    result = plan(pr)
    assert validate(pr, result) == []
    assert result["unplaced"] == {}
    assert plan(json.loads(json.dumps(pr))) == result
    p = parse_problem(pr)
    if p.max_pool_share < 1.0:  # the pool cap holds
        spot = [(n["instance_type"], n["zone"]) for n in result["nodes"] if n["capacity_type"] == "spot"]
        cap = _ceil_share(p.max_pool_share, len(spot))
        assert max(spot.count(k) for k in set(spot)) <= cap
    cost = float(result["hourly_cost"])
    bound, _ = bench.whole_node_bound(pr, 60, relax=True)
    assert cost <= 1.08 * bound
    # the node patterns beat what the LP and the whole-node integer program give alone
    monkeypatch.setattr(planner, "PATTERN_PODS", 0)
    without = plan(pr)
    assert validate(pr, without) == []
    assert cost < float(without["hourly_cost"]) - 1e-6
