"""Tenancy-scoped reads of hibernation schedules and sleep periods, and the evaluated view of a schedule (its state
now and next transitions) shared by the API and the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from spotopt.tenancy import get_for_user

from . import timetable
from .models import HibernationPeriod, HibernationSchedule


def schedules_for(user) -> QuerySet[HibernationSchedule]:
    """The caller's schedules with their clusters (one query)."""
    return HibernationSchedule.objects.for_user(user).select_related("cluster").order_by("cluster__name", "name", "id")


def get_schedule(user, pk) -> HibernationSchedule:
    """One of the caller's schedules with its cluster, or 404: the one way API and console fetch a schedule."""
    return get_for_user(HibernationSchedule.objects.select_related("cluster"), user, pk=pk)


def periods_of(schedule: HibernationSchedule, *, limit: int = 10) -> list[HibernationPeriod]:
    """The schedule's cluster's latest sleeps (one query)."""
    return list(HibernationPeriod.objects.filter(cluster_id=schedule.cluster_id).order_by("-started_at", "-id")[:limit])


@dataclass(frozen=True)
class TransitionView:
    at: datetime
    local: datetime
    action: str

    def as_json(self) -> dict:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "local": self.local.isoformat(),
            "action": self.action,
        }


def preview(schedule: HibernationSchedule, start: datetime, days: int) -> list[TransitionView]:
    """Transitions in [start, start + days), with the active override; each with its local time and offset."""
    table = schedule.timetable(now=start)
    return [
        TransitionView(t.at, t.local(table.zone), t.action)
        for t in timetable.transitions(table, start, start + timedelta(days=days))
    ]


def next_transition(schedule: HibernationSchedule, now: datetime | None = None) -> TransitionView | None:
    """The schedule's next transition within a week, or None (also when disabled)."""
    if not schedule.enabled:
        return None
    now = now or timezone.now()
    found = preview(schedule, now, 8)
    return found[0] if found else None


def desired_state(schedule: HibernationSchedule, now: datetime | None = None) -> str:
    """What the timetable (with its override) says now: "awake" or "asleep"."""
    if not schedule.enabled:
        return timetable.AWAKE
    now = now or timezone.now()
    return timetable.state_at(schedule.timetable(now=now), now)
