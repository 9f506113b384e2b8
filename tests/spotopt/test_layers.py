"""The apps stand in layers (README, "App layers"): each imports only the apps to its left, never in a circle.
Checked on the source with ``ast`` (every ``import`` anywhere in a module, functions included; migrations excluded)."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

LAYERS = (
    "accounts",
    "pricing",
    "templates_app",
    "clusters",
    "agentapi",
    "savings",
    "optimization",
    "hibernation",
    "interruptions",
    "lab",
)
#: Packages that import no app at all.
FOUNDATIONS = ("optimizer", "cloud")


def imported_apps(path: pathlib.Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names]
    return found


def sources(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.relative_to(ROOT).parts:
            yield path


def test_apps_import_only_the_layers_below_them() -> None:
    rank = {app: i for i, app in enumerate(LAYERS)}
    upward = []
    for app in LAYERS:
        if not (ROOT / app).is_dir():
            continue
        for path in sources(app):
            where = path.relative_to(ROOT).as_posix()
            for lineno, target in imported_apps(path):
                if target in rank and rank[target] > rank[app]:
                    upward.append(f"{where}:{lineno}: {app} imports {target}")
    assert upward == []


def test_the_planner_and_the_aws_layer_import_no_app() -> None:
    apps = set(LAYERS) | {"audit", "spotopt"}
    offenders = [
        f"{path.relative_to(ROOT)}:{lineno}: imports {target}"
        for package in FOUNDATIONS
        for path in sources(package)
        for lineno, target in imported_apps(path)
        if target in apps
    ]
    assert offenders == []


def test_the_check_sees_an_upward_import(tmp_path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from agentapi.models import KubeNode\nimport clusters.models as m\n")
    assert sorted(imported_apps(module)) == [(2, "agentapi"), (3, "clusters")]
