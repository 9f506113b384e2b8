"""The before/after diff of an entry's page."""

from __future__ import annotations

from audit.diff import diff


def test_nested_changes_are_dotted_paths_changed_rows_first():
    rows = diff({"spec": {"min": 1, "max": 3}, "name": "a"}, {"spec": {"min": 2, "max": 3}, "name": "a"})
    assert [(r.path, r.before, r.after, r.change) for r in rows] == [
        ("spec.min", "1", "2", "changed"),
        ("name", "a", "a", "unchanged"),
        ("spec.max", "3", "3", "unchanged"),
    ]


def test_creation_and_deletion():
    assert [(r.path, r.change) for r in diff(None, {"name": "x", "zones": ["a", "b"]})] == [
        ("name", "added"),
        ("zones", "added"),
    ]
    assert [(r.path, r.before, r.change) for r in diff({"enabled": True}, None)] == [("enabled", "true", "removed")]
    assert diff(None, None) == []
