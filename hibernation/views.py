"""Console pages of hibernation: the schedules with each cluster's state and next transition; a schedule's week
grid, next transitions, holidays, overrides and sleeps; the edit form with its live week-grid preview (htmx)."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters.models import Cluster
from clusters.selectors import clusters_for_user
from spotopt.errors import ApplicationError

from . import selectors, services, timetable
from .filters import ScheduleFilter
from .forms import ScheduleForm
from .models import HibernationSchedule

KEEP_AWAKE = timedelta(hours=2)
SLEEP_NOW = timedelta(hours=8)


def _grid_context(table: timetable.Timetable, week_of: date | None = None) -> dict:
    week_of = week_of or timezone.now().astimezone(table.zone).date()
    return {
        "grid": timetable.week_grid(table, week_of),
        "hours": range(24),
        "zone": table.zone.key,
    }


@login_required
@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    filterset = ScheduleFilter(request.GET or None, queryset=selectors.schedules_for(request.user))
    now = timezone.now()
    rows = [{"schedule": s, "next": selectors.next_transition(s, now)} for s in filterset.qs]
    return render(
        request, "hibernation/list.html", {"nav": "hibernation", "rows": rows, "filter": filterset, "now": now}
    )


@login_required
@require_GET
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = selectors.get_schedule(request.user, pk)
    now = timezone.now()
    table = schedule.timetable(now=now)
    week_of = None
    if request.GET.get("week"):
        try:
            week_of = date.fromisoformat(request.GET["week"])
        except ValueError:
            week_of = None
    context = {
        "nav": "hibernation",
        "schedule": schedule,
        "override": schedule.active_override(now),
        "upcoming": selectors.preview(schedule, now, 7)[:9],
        "periods": selectors.periods_of(schedule),
        **_grid_context(table, week_of),
    }
    monday = context["grid"][0][0]
    context |= {"prev_week": monday - timedelta(days=7), "next_week": monday + timedelta(days=7)}
    return render(request, "hibernation/detail.html", context)


def _clusters(request: HttpRequest):
    return clusters_for_user(request.user).order_by("name")


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    schedule = selectors.get_schedule(request.user, pk) if pk else None
    initial = ScheduleForm.initial_from(schedule) if schedule else {"pre_warm_minutes": 30, "enabled": True}
    form = ScheduleForm(request.POST or None, initial=initial, clusters=None if schedule else _clusters(request))
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            if schedule is None:
                cluster = form.cleaned_data.get("cluster")
                if cluster is None:
                    form.add_error("cluster", "Choose a cluster.")
                    raise _Invalid
                schedule = services.schedule_create(cluster=cluster, values=form.to_values(), actor=request.user)
                messages.success(request, f'Schedule "{schedule.name}" created.')
            else:
                services.schedule_update(schedule=schedule, values=form.to_values(), actor=request.user)
                messages.success(request, f'Schedule "{schedule.name}" saved.')
            return redirect("hibernation:detail", schedule.pk)
        except ApplicationError as exc:
            form.apply_errors(exc.fields, exc.message)
            status = exc.status_code
        except _Invalid:
            status = 400
    elif request.method == "POST":
        status = 400
    context = {"nav": "hibernation", "form": form, "schedule": schedule} | _preview_context(request, form, schedule)
    return render(request, "hibernation/form.html", context, status=status)


class _Invalid(Exception):
    pass


def _preview_context(request: HttpRequest, form: ScheduleForm, schedule: HibernationSchedule | None) -> dict:
    """The week grid of what the form says now (or of the saved schedule before any edit); problems instead when
    the form is not valid."""
    if not form.is_bound:
        if schedule is None:
            return {"problems": ["Add a window to see the week."]}
        return _grid_context(schedule.timetable(with_override=False))
    if not form.is_valid():
        return {"problems": ["Fix the highlighted fields to see the week."]}
    cluster = schedule.cluster if schedule else form.cleaned_data.get("cluster")
    if cluster is None:
        cluster = Cluster(time_zone="UTC")
    try:
        draft = services.schedule_draft(cluster=cluster, values=form.to_values(), base=schedule)
    except ApplicationError as exc:
        return {"problems": [f"{path}: {m[0]}" for path, m in (exc.fields or {"": [exc.message]}).items()]}
    return _grid_context(draft.timetable(with_override=False))


@login_required
@require_GET
def schedule_preview(request: HttpRequest) -> HttpResponse:
    """The htmx partial of the form's live week grid."""
    schedule = selectors.get_schedule(request.user, request.GET["schedule"]) if request.GET.get("schedule") else None
    form = ScheduleForm(request.GET, clusters=None if schedule else _clusters(request))
    return render(request, "hibernation/_week.html", _preview_context(request, form, schedule))


@login_required
@require_POST
def schedule_override(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Keep awake for 2 h" / "Sleep now" (for 8 h)."""
    schedule = selectors.get_schedule(request.user, pk)
    state = request.POST.get("state")
    span = KEEP_AWAKE if state == HibernationSchedule.Override.AWAKE else SLEEP_NOW
    try:
        services.schedule_set_override(
            schedule=schedule,
            state=state,
            until=timezone.now() + span,
            reason=request.POST.get("reason") or "set from the console",
            actor=request.user,
        )
        verb = "kept awake" if state == "awake" else "asleep"
        messages.success(request, f"{schedule.cluster.name} {verb} until {schedule.override_until:%H:%M} UTC.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("hibernation:detail", pk)


@login_required
@require_POST
def schedule_override_clear(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = selectors.get_schedule(request.user, pk)
    services.schedule_clear_override(schedule=schedule, actor=request.user)
    messages.success(request, "Override cleared: the timetable applies again.")
    return redirect("hibernation:detail", pk)


@login_required
@require_POST
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = selectors.get_schedule(request.user, pk)
    try:
        services.schedule_delete(schedule=schedule, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("hibernation:detail", pk)
    messages.success(request, f'Schedule "{schedule.name}" deleted.')
    return redirect("hibernation:list")
