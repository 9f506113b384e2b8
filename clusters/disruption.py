"""Disruption budgets and maintenance windows: parsing, validation and evaluation.

Pure Python over plain dicts (the JSON stored on ``ClusterPolicy``), so the optimizer's job runner and the tests can
use it without a database. Semantics follow Karpenter's NodePool budgets:

- A budget without ``schedule`` is always active. A budget with ``schedule`` (cron, UTC) and ``duration`` is active for
  ``duration`` after each time the schedule fires: at ``now`` it is active when the schedule fires in
  ``(now - duration, now]``.
- ``nodes`` is a count (``"3"``) or a percentage (``"10%"``) of the cluster's nodes, rounded *up* (5% of 10 nodes
  allows 1), as Kubernetes does for ``maxUnavailable``.
- A budget with ``reasons`` applies only to those disruption reasons; without, to all.
- The most restrictive active budget wins; with no active budget, disruptions are unbounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

REASONS = ("Empty", "Underutilized", "Drifted")
_NODES = re.compile(r"^(?:(?P<count>\d+)|(?P<pct>\d{1,3})%)$")
# Karpenter accepts only hours and minutes for budget durations ("8h", "30m", "1h30m").
_WINDOW_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?", re.ASCII)
# Go-style durations with seconds, for consolidate_after ("30s", "5m", "1h30m").
_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?", re.ASCII)
# The longest duration either accepts: a year. Longer is meaningless here and, in hours, soon past what a timedelta
# (and the schedule arithmetic done with it) can hold.
MAX_DURATION = timedelta(days=366)
_MACRO_CRON = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
UNBOUNDED = math.inf


def _bounded(hours: str | None, minutes: str | None, seconds: str | None = None) -> timedelta | None:
    # Each part is bounded before it becomes a timedelta: "99999999999h" overflows timedelta itself.
    if any(part and len(part) > 12 for part in (hours, minutes, seconds)):
        return None
    limit = MAX_DURATION.total_seconds()
    parts = [int(hours or 0) * 3600, int(minutes or 0) * 60, int(seconds or 0)]
    if any(part > limit for part in parts) or sum(parts) > limit:
        return None
    return timedelta(seconds=sum(parts))


def parse_window_duration(value: str) -> timedelta | None:
    """``"8h"``, ``"30m"``, ``"1h30m"`` → timedelta; None when malformed, zero or longer than a year."""
    match = _WINDOW_DURATION.fullmatch(value or "") if isinstance(value, str) else None
    if not match or not value:
        return None
    delta = _bounded(match["h"], match["m"])
    return delta if delta is not None and delta > timedelta(0) else None


def parse_duration(value: str) -> timedelta | None:
    """A Go-style duration (``"30s"``, ``"5m"``, ``"1h30m"``, ``"0s"``) → timedelta; None when malformed or longer
    than a year."""
    match = _DURATION.fullmatch(value or "") if isinstance(value, str) else None
    if not match or not value:
        return None
    return _bounded(match["h"], match["m"], match["s"])


def normalize_cron(schedule: str) -> str:
    schedule = " ".join((schedule or "").split())
    return _MACRO_CRON.get(schedule.lower(), schedule)


def cron_error(schedule: str) -> str | None:
    """Why ``schedule`` is not a standard 5-field cron expression (or macro), or None when it is."""
    if not isinstance(schedule, str) or not schedule.strip():
        return "A cron schedule is required."
    expr = normalize_cron(schedule)
    if len(expr.split()) != 5:
        return f'"{schedule}" is not a 5-field cron expression (minute hour day-of-month month day-of-week).'
    if not croniter.is_valid(expr):
        return f'"{schedule}" is not a valid cron expression.'
    return None


def nodes_error(nodes) -> str | None:
    if not isinstance(nodes, str):
        return 'nodes must be a string: a count ("3") or a percentage ("10%").'
    match = _NODES.match(nodes.strip())
    if not match:
        return f'"{nodes}" is neither a count ("3") nor a percentage ("10%").'
    if match["pct"] is not None and int(match["pct"]) > 100:
        return "A percentage must be between 0% and 100%."
    return None


def _window_errors(item, *, schedule_required: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    schedule, duration = item.get("schedule"), item.get("duration")
    if schedule is None and duration is None and not schedule_required:
        return errors
    if schedule is None or duration is None:
        msg = "schedule and duration go together: set both or neither."
        errors.setdefault("schedule" if schedule is None else "duration", []).append(msg)
        return errors
    if (problem := cron_error(schedule)) is not None:
        errors["schedule"] = [problem]
    if not isinstance(duration, str) or parse_window_duration(duration) is None:
        errors["duration"] = [
            f'"{duration}" is not a duration in hours and minutes ("8h", "30m", "1h30m"), at most a year.'
        ]
    return errors


def budget_errors(budgets) -> list[dict[str, list[str]]] | str | None:
    """Per-item field errors of a ``disruption_budgets`` list (index-aligned), a message, or None when valid."""
    if not isinstance(budgets, list):
        return "Expected a list of budgets."
    if len(budgets) > 50:
        return "At most 50 budgets."
    result: list[dict[str, list[str]]] = []
    for item in budgets:
        if not isinstance(item, dict):
            result.append({"non_field_errors": ["Expected an object with nodes, schedule, duration, reasons."]})
            continue
        errors: dict[str, list[str]] = {}
        unknown = set(item) - {"nodes", "schedule", "duration", "reasons"}
        if unknown:
            errors["non_field_errors"] = [f"Unknown keys: {', '.join(sorted(unknown))}."]
        if "nodes" not in item:
            errors["nodes"] = ["This field is required."]
        elif (problem := nodes_error(item["nodes"])) is not None:
            errors["nodes"] = [problem]
        errors |= _window_errors(item, schedule_required=False)
        reasons = item.get("reasons")
        if reasons is not None:
            if not isinstance(reasons, list) or not reasons or any(r not in REASONS for r in reasons):
                errors["reasons"] = [f"A non-empty list of: {', '.join(REASONS)}."]
            elif len(set(reasons)) != len(reasons):
                errors["reasons"] = ["Reasons must not repeat."]
        result.append(errors)
    return result if any(result) else None


def window_errors(windows) -> list[dict[str, list[str]]] | str | None:
    """Per-item field errors of a ``maintenance_windows`` list, a message, or None when valid."""
    if not isinstance(windows, list):
        return "Expected a list of windows."
    if len(windows) > 50:
        return "At most 50 maintenance windows."
    result: list[dict[str, list[str]]] = []
    for item in windows:
        if not isinstance(item, dict):
            result.append({"non_field_errors": ["Expected an object with schedule and duration."]})
            continue
        errors: dict[str, list[str]] = {}
        unknown = set(item) - {"schedule", "duration"}
        if unknown:
            errors["non_field_errors"] = [f"Unknown keys: {', '.join(sorted(unknown))}."]
        errors |= _window_errors(item, schedule_required=True)
        result.append(errors)
    return result if any(result) else None


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return at.astimezone(UTC)


def window_is_active(schedule: str | None, duration: str | None, at: datetime) -> bool:
    """Whether a (schedule, duration) window covers ``at``; no schedule means always. Times are UTC, as Karpenter's."""
    if not schedule and not duration:
        return True
    length = parse_window_duration(duration or "")
    if not schedule or length is None:
        return False  # misconfigured: fail closed (validation keeps these out of the database)
    now = _as_utc(at)
    # The first firing strictly after (now - duration); active when it is not after now.
    next_hit = croniter(normalize_cron(schedule), now - length).get_next(datetime)
    return next_hit <= now


@dataclass(frozen=True)
class BudgetDecision:
    """How many nodes may be disrupted now, and which budgets decided it."""

    allowed: float  # an int, or math.inf when no active budget limits it
    active: list[dict]

    @property
    def limited(self) -> bool:
        return self.allowed != UNBOUNDED


def budget_nodes(nodes: str, node_count: int) -> int:
    """A budget's ``nodes`` for a cluster of ``node_count`` nodes; percentages round up (Karpenter, PDBs)."""
    nodes = nodes.strip()
    if nodes.endswith("%"):
        return math.ceil(int(nodes[:-1]) * node_count / 100)
    return int(nodes)


def active_budgets(budgets: Iterable[dict], at: datetime, *, reason: str | None = None) -> list[dict]:
    """The budgets that are active at ``at`` and apply to ``reason`` (a budget without reasons applies to all)."""
    return [
        b
        for b in budgets
        if (reason is None or not b.get("reasons") or reason in b["reasons"])
        and window_is_active(b.get("schedule"), b.get("duration"), at)
    ]


def allowed_disruptions(
    budgets: Iterable[dict], *, node_count: int, at: datetime, reason: str | None = None, disrupting: int = 0
) -> BudgetDecision:
    """How many more nodes may be disrupted at ``at``: the minimum over the active budgets (most restrictive wins),
    less the nodes already being disrupted; ``math.inf`` when no budget is active."""
    active = active_budgets(list(budgets), at, reason=reason)
    if not active:
        return BudgetDecision(allowed=UNBOUNDED, active=[])
    allowed = min(budget_nodes(b["nodes"], node_count) for b in active)
    return BudgetDecision(allowed=max(allowed - disrupting, 0), active=active)


def in_maintenance_window(windows: Iterable[dict], at: datetime) -> bool:
    """Whether disruptive work may run at ``at``: always when no window is configured, else inside one of them."""
    windows = list(windows)
    if not windows:
        return True
    return any(window_is_active(w.get("schedule"), w.get("duration"), at) for w in windows)
