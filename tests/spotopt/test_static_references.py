"""Every source map a static file names is shipped beside it: the production static build (whitenoise's manifest
storage) refuses a reference to a missing file, so a vendored library copied with its map comment breaks the image."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"
MAP_REFERENCE = re.compile(r"sourceMappingURL=([^\s*]+)")


def test_every_source_map_a_static_file_names_exists():
    files = [p for p in STATIC.rglob("*") if p.suffix in {".js", ".css"}]
    assert any(p.name == "chart.umd.min.js" for p in files)
    missing = [
        f"{p.relative_to(STATIC)} -> {name}"
        for p in files
        for name in MAP_REFERENCE.findall(p.read_text(encoding="utf-8", errors="replace"))
        if not name.startswith("data:") and not (p.parent / name).exists()
    ]
    assert missing == []
