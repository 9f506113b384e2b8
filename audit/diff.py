"""The before/after diff shown on an entry's page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class DiffRow:
    path: str
    before: str
    after: str
    change: str  # "added", "removed", "changed" or "unchanged"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted paths; lists and scalars are leaves (a list is compared as a whole)."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if value is None and not prefix:
        return {}
    return {prefix or "(value)": value}


def _show(value: Any) -> str:
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def diff(before: Any, after: Any) -> list[DiffRow]:
    """One row per leaf path present in ``before`` or ``after``, in a stable order, changed rows first."""
    old, new = _flatten(before), _flatten(after)
    rows = []
    for path in sorted(old.keys() | new.keys()):
        b, a = old.get(path, _MISSING), new.get(path, _MISSING)
        if b is _MISSING:
            change = "added"
        elif a is _MISSING:
            change = "removed"
        elif a != b:
            change = "changed"
        else:
            change = "unchanged"
        rows.append(DiffRow(path=path, before=_show(b), after=_show(a), change=change))
    rows.sort(key=lambda r: r.change == "unchanged")
    return rows
