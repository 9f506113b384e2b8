"""The bundled price data's README lists exactly the files that are there; build artifacts are not in git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "pricing" / "data" / "aws"


def _table_entries() -> list[str]:
    """The first column of the README's file table (``| `path` | what | rows | size |``)."""
    text = (DATA / "README.md").read_text()
    table = text[text.index("| file | what |") :].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def _as_pattern(entry: str) -> re.Pattern[str]:
    # `spot_price_history/2022-05-31/<region>.csv` stands for one file per region.
    parts = re.split(r"<[^>]+>", entry)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")


def test_readme_lists_the_files_that_are_there() -> None:
    entries = _table_entries()
    files = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file() and p.name != "README.md")
    patterns = [_as_pattern(entry) for entry in entries]
    unlisted = [f for f in files if not any(p.match(f) for p in patterns)]
    missing = [e for e, p in zip(entries, patterns, strict=True) if not any(p.match(f) for f in files)]
    assert (unlisted, missing) == ([], [])
    assert len(entries) >= 8


def test_build_artifacts_are_not_tracked() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    artifacts = [
        path
        for path in tracked.splitlines()
        if ".egg-info/" in path or path.endswith((".exchange", ".pyc")) or path.startswith("control/")
    ]
    assert artifacts == []
    ignored = subprocess.run(
        ["git", "check-ignore", "spot_optimizer.egg-info/PKG-INFO", "control/celery.exchange"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == ["spot_optimizer.egg-info/PKG-INFO", "control/celery.exchange"]
