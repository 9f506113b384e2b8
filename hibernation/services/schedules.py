"""Writes of hibernation schedules: create, update, delete, and manual overrides. Each validates everything first,
saves, and records one audit entry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record
from clusters.models import Cluster
from spotopt.errors import Conflict, ValidationFailed

from .. import timetable
from ..actions import Audit
from ..models import HibernationSchedule

MAX_OVERRIDE = timedelta(days=14)


def schedule_snapshot(schedule: HibernationSchedule) -> dict[str, Any]:
    """The schedule's editable values and override, as audited."""
    return {
        "cluster_id": schedule.cluster_id,
        **{name: getattr(schedule, name) for name in HibernationSchedule.EDITABLE_FIELDS},
        "override": override_snapshot(schedule),
    }


def override_snapshot(schedule: HibernationSchedule) -> dict[str, Any] | None:
    if not schedule.override_state:
        return None
    return {
        "state": schedule.override_state,
        "since": schedule.override_since,
        "until": schedule.override_until,
        "reason": schedule.override_reason,
        "by": schedule.override_by,
    }


def _fail(fields: dict[str, list[str]]) -> ValidationFailed:
    path, messages = next(iter(fields.items()))
    return ValidationFailed(f"{path}: {messages[0]}", fields=fields)


def _clean_keep(raw: Any) -> dict:
    if raw is None:
        return {"node_groups": [], "labels": {}}
    if not isinstance(raw, dict) or set(raw) - {"node_groups", "labels"}:
        raise _fail({"keep": ['An object {"node_groups": [...], "labels": {...}}.']})
    groups = raw.get("node_groups") or []
    if (
        not isinstance(groups, list)
        or len(groups) > 100
        or not all(isinstance(g, str) and 0 < len(g) <= 255 for g in groups)
    ):
        raise _fail({"keep.node_groups": ["A list of node group or Auto Scaling group names."]})
    labels = raw.get("labels") or {}
    if (
        not isinstance(labels, dict)
        or len(labels) > 50
        or not all(isinstance(k, str) and k and isinstance(v, str) and len(k) <= 317 for k, v in labels.items())
    ):
        raise _fail({"keep.labels": ["An object of label keys and values (strings)."]})
    return {"node_groups": sorted(set(groups)), "labels": labels}


def clean_schedule(values: dict[str, Any], *, base: dict[str, Any]) -> dict[str, Any]:
    """Validate ``values`` (a full or partial set of editable fields) over ``base``; returns the complete cleaned
    set. Raises ValidationFailed naming the field."""
    unknown = set(values) - set(HibernationSchedule.EDITABLE_FIELDS)
    if unknown:
        raise _fail({sorted(unknown)[0]: ["Unknown field."]})
    merged = {**base, **values}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise _fail({"name": ["1-200 characters."]})
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail({"enabled": ["true or false."]})
    for key in ("windows", "holidays", "exceptions"):
        if merged.get(key) is None:
            merged[key] = []
    try:
        built = timetable.build(
            time_zone=merged.get("time_zone"),
            windows=merged["windows"] if isinstance(merged["windows"], list) else _not_list("windows"),
            pre_warm_minutes=merged.get("pre_warm_minutes", 0),
            holidays=merged["holidays"] if isinstance(merged["holidays"], list) else _not_list("holidays"),
            exceptions=merged["exceptions"] if isinstance(merged["exceptions"], list) else _not_list("exceptions"),
        )
    except timetable.TimetableError as exc:
        raise _fail(exc.fields)
    return {
        "name": name.strip(),
        "time_zone": built.zone.key,
        "windows": [_window_json(w) for w in built.windows],
        "pre_warm_minutes": int(built.pre_warm.total_seconds() // 60),
        "holidays": [d.isoformat() for d in built.holidays],
        "exceptions": [d.isoformat() for d in built.exceptions],
        "keep": _clean_keep(merged.get("keep")),
        "enabled": enabled,
    }


def _not_list(name: str):
    raise timetable.TimetableError({name: ["Must be a list."]})


def _window_json(window: timetable.Window) -> dict[str, Any]:
    return {
        "days": [timetable.DAYS[d] for d in window.days],
        "sleep_at": window.sleep_at.strftime("%H:%M"),
        "wake_at": window.wake_at.strftime("%H:%M"),
        "wake_after_days": window.wake_after_days,
    }


def _check_one_enabled(cluster: Cluster, *, exclude: int | None = None) -> None:
    others = HibernationSchedule.objects.filter(cluster=cluster, enabled=True)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if others.exists():
        raise Conflict(
            "The cluster already has an enabled schedule; disable it first.",
            code="schedule_conflict",
            fields={"enabled": ["Another schedule of this cluster is enabled."]},
        )


def _save(schedule: HibernationSchedule, **kwargs) -> None:
    try:
        with transaction.atomic():
            schedule.save(**kwargs)
    except IntegrityError:
        # A concurrent writer enabled another schedule of the cluster between our check and our save.
        raise Conflict(
            "The cluster already has an enabled schedule; disable it first.",
            code="schedule_conflict",
            fields={"enabled": ["Another schedule of this cluster is enabled."]},
        )


def schedule_draft(*, cluster: Cluster, values: dict[str, Any], base: HibernationSchedule | None = None):
    """An unsaved, validated schedule built from ``values`` (the console's live preview)."""
    start = {name: getattr(base, name) for name in HibernationSchedule.EDITABLE_FIELDS} if base else {}
    start.setdefault("time_zone", cluster.time_zone or "UTC")
    cleaned = clean_schedule(values, base=start)
    return HibernationSchedule(cluster=cluster, **cleaned)


def schedule_create(*, cluster: Cluster, values: dict[str, Any], actor: Any = None) -> HibernationSchedule:
    """A new schedule for ``cluster``; the zone defaults to the cluster's. At most one enabled schedule per cluster."""
    cleaned = clean_schedule(values, base={"time_zone": cluster.time_zone or "UTC", "enabled": True})
    with transaction.atomic():
        if cleaned["enabled"]:
            _check_one_enabled(cluster)
        schedule = HibernationSchedule(cluster=cluster, **cleaned)
        _save(schedule, force_insert=True)
        record(
            action=Audit.SCHEDULE_CREATED,
            organization_id=cluster.organization_id,
            actor=actor,
            resource=schedule,
            after=schedule_snapshot(schedule),
        )
    return schedule


def schedule_update(*, schedule: HibernationSchedule, values: dict[str, Any], actor: Any = None) -> HibernationSchedule:
    """Change some editable fields. Disabling a sleeping schedule wakes the cluster at the next tick."""
    base = {name: getattr(schedule, name) for name in HibernationSchedule.EDITABLE_FIELDS}
    cleaned = clean_schedule(values, base=base)
    before = schedule_snapshot(schedule)
    with transaction.atomic():
        if cleaned["enabled"] and not schedule.enabled:
            _check_one_enabled(schedule.cluster, exclude=schedule.pk)
        for name, value in cleaned.items():
            setattr(schedule, name, value)
        _save(schedule, update_fields=[*cleaned, "updated_at"])
        after = schedule_snapshot(schedule)
        record(
            action=Audit.SCHEDULE_UPDATED,
            organization_id=schedule.cluster.organization_id,
            actor=actor,
            resource=schedule,
            before={k: v for k, v in before.items() if after.get(k) != v},
            after={k: v for k, v in after.items() if before.get(k) != v},
        )
    return schedule


def schedule_delete(*, schedule: HibernationSchedule, actor: Any = None) -> None:
    """Delete a schedule. Refused while its cluster is not awake: what waking restores lives on the schedule."""
    with transaction.atomic():
        locked = HibernationSchedule.objects.select_for_update().select_related("cluster").get(pk=schedule.pk)
        if locked.progress or locked.cluster.hibernation_state != Cluster.HibernationState.AWAKE:
            raise Conflict(
                "The cluster is asleep or changing state; disable the schedule (it wakes the cluster) and delete it "
                "once the cluster is awake.",
                code="cluster_not_awake",
            )
        snapshot = schedule_snapshot(locked)
        record(
            action=Audit.SCHEDULE_DELETED,
            organization_id=locked.cluster.organization_id,
            actor=actor,
            resource=locked,
            before=snapshot,
        )
        locked.delete()


def _actor_label(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return getattr(actor, "email", "") or str(actor)


def schedule_set_override(
    *,
    schedule: HibernationSchedule,
    state: Any,
    until: Any,
    reason: Any = "",
    actor: Any = None,
    now: datetime | None = None,
) -> HibernationSchedule:
    """ "Keep awake until T" / "sleep now until T": replaces any override; expires by itself at ``until``."""
    now = now or timezone.now()
    fields: dict[str, list[str]] = {}
    if state not in HibernationSchedule.Override.values:
        fields["state"] = ['"awake" or "asleep".']
    if not isinstance(until, datetime) or until.tzinfo is None:
        fields["until"] = ["An ISO 8601 date-time with an offset or Z."]
    elif until <= now:
        fields["until"] = ["Must be in the future."]
    elif until - now > MAX_OVERRIDE:
        fields["until"] = [f"At most {MAX_OVERRIDE.days} days ahead."]
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > 255:
        fields["reason"] = ["At most 255 characters."]
    if fields:
        raise _fail(fields)
    with transaction.atomic():
        locked = HibernationSchedule.objects.select_for_update().get(pk=schedule.pk)
        before = override_snapshot(locked)
        locked.override_state = state
        locked.override_since = now
        locked.override_until = until
        locked.override_reason = reason.strip()
        locked.override_by = _actor_label(actor)
        locked.save(
            update_fields=[
                "override_state",
                "override_since",
                "override_until",
                "override_reason",
                "override_by",
                "updated_at",
            ]
        )
        record(
            action=Audit.OVERRIDE_SET,
            organization_id=schedule.cluster.organization_id,
            actor=actor,
            resource=locked,
            before={"override": before},
            after={"override": override_snapshot(locked)},
        )
    _copy_override(locked, schedule)
    return schedule


def _copy_override(source: HibernationSchedule, target: HibernationSchedule) -> None:
    for name in ("override_state", "override_since", "override_until", "override_reason", "override_by"):
        setattr(target, name, getattr(source, name))


def _clear(schedule: HibernationSchedule) -> None:
    schedule.override_state = ""
    schedule.override_since = None
    schedule.override_until = None
    schedule.override_reason = ""
    schedule.override_by = ""
    schedule.save(
        update_fields=["override_state", "override_since", "override_until", "override_reason", "override_by"]
    )


def schedule_clear_override(*, schedule: HibernationSchedule, actor: Any = None) -> bool:
    """Remove the override (the timetable applies again at the next tick). False when there was none."""
    with transaction.atomic():
        locked = HibernationSchedule.objects.select_for_update().get(pk=schedule.pk)
        before = override_snapshot(locked)
        if before is None:
            return False
        _clear(locked)
        record(
            action=Audit.OVERRIDE_CLEARED,
            organization_id=schedule.cluster.organization_id,
            actor=actor,
            resource=locked,
            before={"override": before},
            after={"override": None},
        )
    _copy_override(locked, schedule)
    return True


def override_expire(*, schedule: HibernationSchedule, now: datetime) -> bool:
    """Clear an override whose time is up (the tick calls this with the row locked); audited as expired."""
    if not schedule.override_state or schedule.override_until is None or schedule.override_until > now:
        return False
    before = override_snapshot(schedule)
    _clear(schedule)
    record(
        action=Audit.OVERRIDE_EXPIRED,
        organization_id=schedule.cluster.organization_id,
        actor="system:hibernation",
        resource=schedule,
        before={"override": before},
        after={"override": None},
    )
    return True
