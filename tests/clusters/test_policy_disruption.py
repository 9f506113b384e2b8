"""Disruption budgets and maintenance windows: which budget is active when, and the most restrictive one wins."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import timezone

from clusters import disruption
from clusters.models import ClusterPolicy
from clusters.policy_services import disruption_allowance

# Karpenter's documented example: no disruption on weekdays 09:00-17:00 UTC, at most 10% otherwise.
BUSINESS_HOURS = [
    {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"},
    {"nodes": "10%"},
]
WED = datetime(2026, 11, 25, tzinfo=UTC)  # a Wednesday


def at(hour: int, minute: int = 0, day: datetime = WED) -> datetime:
    return day.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(
    ("when", "active"),
    [
        (at(8, 59), False),
        (at(9, 0), True),  # the firing itself counts
        (at(12, 0), True),
        (at(16, 59), True),
        (at(17, 0), False),  # duration ends: [09:00, 17:00)
        (at(12, 0, datetime(2026, 11, 28, tzinfo=UTC)), False),  # Saturday
    ],
)
def test_scheduled_budget_is_active_for_duration_after_each_firing(when, active):
    assert disruption.window_is_active("0 9 * * mon-fri", "8h", when) is active


def test_window_crossing_midnight():
    # Fires Friday 22:00 and lasts 4h: still active Saturday 01:30.
    saturday = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
    assert disruption.window_is_active("0 22 * * fri", "4h", saturday)
    assert not disruption.window_is_active("0 22 * * fri", "4h", saturday.replace(hour=2))


def test_budget_without_schedule_is_always_active():
    assert disruption.active_budgets([{"nodes": "3"}], at(3)) == [{"nodes": "3"}]


def test_times_in_other_zones_are_compared_in_utc():
    from zoneinfo import ZoneInfo

    # 10:00 in New York is 15:00 UTC: inside the 09:00-17:00 UTC window.
    assert disruption.window_is_active("0 9 * * mon-fri", "8h", at(10).replace(tzinfo=ZoneInfo("America/New_York")))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        disruption.window_is_active("0 9 * * *", "1h", datetime(2026, 1, 1, 9))


def test_most_restrictive_active_budget_wins():
    during = disruption.allowed_disruptions(BUSINESS_HOURS, node_count=50, at=at(10))
    assert during.allowed == 0
    assert during.active == BUSINESS_HOURS  # both active; "0" is the most restrictive
    after = disruption.allowed_disruptions(BUSINESS_HOURS, node_count=50, at=at(18))
    assert after.allowed == 5
    assert after.active == [{"nodes": "10%"}]


@pytest.mark.parametrize(
    ("nodes", "count", "expected"),
    [
        ("10%", 50, 5),
        ("10%", 10, 1),
        ("10%", 11, 2),
        ("5%", 10, 1),
        ("10%", 1, 1),
        ("10%", 0, 0),
        ("0%", 10, 0),
        ("100%", 7, 7),
        ("3", 100, 3),
        ("3", 2, 3),
    ],
)
def test_percentages_round_up_like_karpenter(nodes, count, expected):
    assert disruption.budget_nodes(nodes, count) == expected


def test_no_active_budget_means_unbounded():
    decision = disruption.allowed_disruptions([BUSINESS_HOURS[0]], node_count=10, at=at(20))
    assert decision.allowed == math.inf and not decision.limited
    assert disruption.allowed_disruptions([], node_count=10, at=at(20)).allowed == math.inf


def test_budgets_by_reason():
    budgets = [
        {"nodes": "0", "reasons": ["Drifted"]},  # no upgrades at all
        {"nodes": "20%", "reasons": ["Underutilized", "Empty"]},
        {"nodes": "50%"},
    ]
    kwargs = {"node_count": 10, "at": at(10)}
    assert disruption.allowed_disruptions(budgets, reason="Drifted", **kwargs).allowed == 0
    assert disruption.allowed_disruptions(budgets, reason="Empty", **kwargs).allowed == 2
    assert disruption.allowed_disruptions(budgets, reason=None, **kwargs).allowed == 0


def test_nodes_already_disrupting_count_against_the_budget():
    decision = disruption.allowed_disruptions([{"nodes": "5"}], node_count=20, at=at(10), disrupting=3)
    assert decision.allowed == 2
    assert disruption.allowed_disruptions([{"nodes": "5"}], node_count=20, at=at(10), disrupting=9).allowed == 0


def test_cron_macros_are_understood():
    assert disruption.window_is_active("@daily", "1h", at(0, 30))
    assert not disruption.window_is_active("@daily", "1h", at(1, 30))


def test_maintenance_windows_gate_disruption():
    policy = ClusterPolicy(
        disruption_budgets=[{"nodes": "2"}], maintenance_windows=[{"schedule": "0 2 * * sun", "duration": "4h"}]
    )
    sunday = datetime(2026, 11, 29, tzinfo=UTC)
    assert disruption_allowance(policy, node_count=10, at=at(3, day=sunday)).allowed == 2
    assert disruption_allowance(policy, node_count=10, at=at(7, day=sunday)).allowed == 0
    assert disruption_allowance(policy, node_count=10, at=at(3)).allowed == 0  # Wednesday
    policy.maintenance_windows = []
    assert disruption_allowance(policy, node_count=10, at=at(3)).allowed == 2


def test_default_policy_budget_is_ten_percent_now():
    with time_machine.travel(datetime(2026, 11, 25, 12, tzinfo=UTC), tick=False):
        decision = disruption_allowance(ClusterPolicy(), node_count=25, at=timezone.now())
    assert decision.allowed == 3  # ceil(2.5)


# --- Validation of the JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({"nodes": "ten"}, "nodes"),
        ({"nodes": "150%"}, "nodes"),
        ({"nodes": 3}, "nodes"),
        ({}, "nodes"),
        ({"nodes": "1", "schedule": "0 9 * * mon-fri"}, "duration"),  # schedule without duration
        ({"nodes": "1", "duration": "8h"}, "schedule"),
        ({"nodes": "1", "schedule": "every morning", "duration": "8h"}, "schedule"),
        ({"nodes": "1", "schedule": "0 9 * *", "duration": "8h"}, "schedule"),  # 4 fields
        ({"nodes": "1", "schedule": "61 9 * * *", "duration": "8h"}, "schedule"),
        ({"nodes": "1", "schedule": "0 9 * * *", "duration": "30s"}, "duration"),  # minutes and hours only
        ({"nodes": "1", "schedule": "0 9 * * *", "duration": "0m"}, "duration"),
        ({"nodes": "1", "reasons": ["Expired"]}, "reasons"),
        ({"nodes": "1", "reasons": []}, "reasons"),
        ({"nodes": "1", "when": "always"}, "non_field_errors"),
    ],
)
def test_invalid_budgets(budget, field):
    errors = disruption.budget_errors([{"nodes": "10%"}, budget])
    assert errors[0] == {}
    assert field in errors[1]


def test_valid_budgets():
    assert disruption.budget_errors(BUSINESS_HOURS + [{"nodes": "1", "reasons": ["Drifted", "Empty"]}]) is None
    assert disruption.budget_errors([]) is None
    assert disruption.budget_errors("10%") == "Expected a list of budgets."
