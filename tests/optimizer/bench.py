"""The optimizer benchmark (`bench/optimizer.py`, a script outside any package) loaded once as a module, for the tests
that draw problems from its catalog and mixes or check its bounds."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@cache
def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_optimizer", ROOT / "bench" / "optimizer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module
