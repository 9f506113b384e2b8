"""Writes of the savings app: the hourly cost history and its roll-ups, the ledger, the organization's settings.

The ledger is the one store of realized savings. Jobs, hibernation and interruption handling call
:func:`ledger_open` (and :func:`ledger_close`, :func:`ledger_pause_cluster`, :func:`ledger_resume_cluster`) inside
the transaction of their own state change, so an entry exists exactly when the change does. Every ledger write is
audited.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.services import record
from clusters.models import Cluster, Instance
from clusters.selectors import ACTIVE_STATES, price_instances
from pricing.models import InstanceType
from spotopt.errors import ValidationFailed

from . import actions
from .models import CostRecord, LedgerEntry, SavingsSettings

ZERO = Decimal(0)
SIX = Decimal("0.000001")
ACTOR = "system:savings"
Step = CostRecord.Step
Source = LedgerEntry.Source
SUMMED = (
    "hours",
    "cost",
    "on_demand_equivalent",
    "spot_node_hours",
    "on_demand_node_hours",
    "spot_vcpu_hours",
    "on_demand_vcpu_hours",
    "spot_memory_mib_hours",
    "on_demand_memory_mib_hours",
    "hibernated_hours",
    "unpriced_node_hours",
)
ASLEEP_STATES = (Cluster.HibernationState.ASLEEP,)


def hour_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(at: datetime) -> datetime:
    return day_start(at).replace(day=1)


def next_month(at: datetime) -> datetime:
    start = month_start(at)
    return (start + timedelta(days=32)).replace(day=1)


# --- Cost history ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RecordReport:
    hour: datetime
    clusters: int
    instances: int
    pruned: int


def record_costs(*, at: datetime | None = None) -> RecordReport:
    """Write the hour's cost row of every cluster, then its day's and month's roll-ups, and prune hourly rows older
    than ``SAVINGS_HOURLY_RETENTION_DAYS``. Idempotent within an hour: a second run rewrites the same rows.

    Queries, whatever the number of clusters: clusters, running instances, on-demand and spot prices (the one cost
    rule, :func:`clusters.selectors.price_instances`), instance types, the hourly upsert, then for the day and the
    month a grouped sum and an upsert, and the prune — eleven, inside one transaction.
    """
    at = at or timezone.now()
    hour = hour_start(at)
    clusters = list(Cluster.objects.values_list("id", "organization_id", "hibernation_state"))
    instances = list(
        Instance.objects.running()
        .filter(state__in=ACTIVE_STATES, cluster__missing_since__isnull=True)
        .annotate(region=F("cluster__region"))
        .only("cluster_id", "instance_type", "zone", "lifecycle", "state", "terminated_at", "hourly_price")
    )
    price_instances(instances, at=hour)
    shapes = dict(
        (name, (vcpu, mem))
        for name, vcpu, mem in InstanceType.objects.filter(name__in={i.instance_type for i in instances}).values_list(
            "name", "vcpu", "memory_mib"
        )
    )
    by_cluster: dict[int, list[Instance]] = defaultdict(list)
    for instance in instances:
        by_cluster[instance.cluster_id].append(instance)
    rows = []
    for cluster_id, organization_id, hibernation_state in clusters:
        row = CostRecord(
            organization_id=organization_id,
            cluster_id=cluster_id,
            step=Step.HOUR,
            t=hour,
            hours=1,
            recorded_at=at,
            hibernated_hours=1 if hibernation_state in ASLEEP_STATES else 0,
        )
        cost = od = ZERO
        for i in by_cluster.get(cluster_id, ()):
            vcpu, mem = shapes.get(i.instance_type, (0, 0))
            spot = i.lifecycle == Instance.Lifecycle.SPOT
            if i.price is None:
                row.unpriced_node_hours += 1
            cost += i.price or ZERO
            od += i.on_demand_price or i.price or ZERO
            if spot:
                row.spot_node_hours += 1
                row.spot_vcpu_hours += vcpu
                row.spot_memory_mib_hours += mem
            else:
                row.on_demand_node_hours += 1
                row.on_demand_vcpu_hours += vcpu
                row.on_demand_memory_mib_hours += mem
        row.cost, row.on_demand_equivalent = cost.quantize(SIX), od.quantize(SIX)
        rows.append(row)
    retention = timedelta(days=settings.SAVINGS_HOURLY_RETENTION_DAYS)
    with transaction.atomic():
        _upsert(rows)
        day = day_start(hour)
        _roll_up(Step.HOUR, Step.DAY, day, day + timedelta(days=1))
        _roll_up(Step.DAY, Step.MONTH, month_start(hour), next_month(hour))
        pruned, _ = CostRecord.objects.filter(step=Step.HOUR, t__lt=hour - retention).delete()
    return RecordReport(hour=hour, clusters=len(rows), instances=len(instances), pruned=pruned)


def _upsert(rows: list[CostRecord]) -> None:
    if rows:
        CostRecord.objects.bulk_create(
            rows,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["cluster", "step", "t"],
            update_fields=[*SUMMED, "recorded_at", "organization"],
        )


def _roll_up(source: str, target: str, start: datetime, end: datetime) -> None:
    """The ``target`` row of [start, end) per cluster = the sum of its ``source`` rows. Two queries."""
    sums = (
        CostRecord.objects.filter(step=source, t__gte=start, t__lt=end)
        .values("cluster_id", "organization_id")
        .annotate(**{f"s_{name}": Sum(name) for name in SUMMED})
        .order_by("cluster_id")
    )
    now = timezone.now()
    rows = [
        CostRecord(
            organization_id=s["organization_id"],
            cluster_id=s["cluster_id"],
            step=target,
            t=start,
            recorded_at=now,
            **{name: s[f"s_{name}"] or 0 for name in SUMMED},
        )
        for s in sums
    ]
    _upsert(rows)


def roll_up_range(*, since: datetime, until: datetime) -> None:
    """Rebuild the daily and monthly rows over [since, until) from the hourly rows (after a backfill)."""
    day = day_start(since)
    while day < until:
        _roll_up(Step.HOUR, Step.DAY, day, day + timedelta(days=1))
        day += timedelta(days=1)
    month = month_start(since)
    while month < until:
        _roll_up(Step.DAY, Step.MONTH, month, next_month(month))
        month = next_month(month)


# --- Settings --------------------------------------------------------------------------------------------------------


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field}: A decimal number.", fields={field: ["A decimal number."]})
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{field}: A decimal number.", fields={field: ["A decimal number."]}) from exc
    if not result.is_finite():
        raise ValidationFailed(f"{field}: A finite number.", fields={field: ["A finite number."]})
    return result


def savings_settings_update(*, organization: Any, values: dict[str, Any], actor: Any = None) -> SavingsSettings:
    """Set the organization's on-demand discount (0 to below 100 percent); audited."""
    unknown = sorted(set(values) - set(SavingsSettings.EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed("Unknown fields.", fields={name: ["Unknown field."] for name in unknown})
    pct = _decimal(values.get("on_demand_discount_pct"), "on_demand_discount_pct")
    if not ZERO <= pct < 100 or pct != pct.quantize(Decimal("0.01")):
        raise ValidationFailed(
            "on_demand_discount_pct: From 0 to below 100, two decimals at most.",
            fields={"on_demand_discount_pct": ["From 0 to below 100, two decimals at most."]},
        )
    with transaction.atomic():
        row, _ = SavingsSettings.objects.select_for_update().get_or_create(organization_id=organization.pk)
        before = {"on_demand_discount_pct": row.on_demand_discount_pct}
        row.on_demand_discount_pct = pct
        row.save()
        record(
            action=actions.SETTINGS_UPDATED,
            organization_id=organization.pk,
            resource=row,
            before=before,
            after={"on_demand_discount_pct": pct},
            actor=actor,
        )
    return row


# --- Ledger ----------------------------------------------------------------------------------------------------------


def _entry_summary(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "cluster_id": entry.cluster_id,
        "source": entry.source,
        "action_type": entry.action_type,
        "action_id": entry.action_id,
        "projected_hourly": entry.projected_hourly,
        "spot_hourly": entry.spot_hourly,
        "counterfactual_hourly": entry.counterfactual_hourly,
        "baseline_hourly": entry.baseline_hourly,
        "started_at": entry.started_at.isoformat() if entry.started_at else None,
        "ended_at": entry.ended_at.isoformat() if entry.ended_at else None,
        "superseded_by": entry.superseded_by_id,
    }


def _money(value: Any, field: str) -> Decimal:
    result = _decimal(value, field)
    if abs(result) >= Decimal("1e8"):
        raise ValidationFailed(f"{field}: Out of range.", fields={field: ["Out of range."]})
    return result.quantize(SIX)


def ledger_open(
    *,
    cluster: Cluster,
    source: str,
    action_type: str,
    action_id: Any,
    projected_hourly: Any,
    spot_hourly: Any = ZERO,
    counterfactual_hourly: Any = ZERO,
    baseline_hourly: Any = ZERO,
    at: datetime | None = None,
    ended_at: datetime | None = None,
    supersedes: Iterable[LedgerEntry] = (),
    price_source: str = "",
    detail: dict | None = None,
    actor: Any = ACTOR,
) -> LedgerEntry:
    """Write the ledger entry of one action that changed ``cluster``'s cost, in force from ``at`` (default now)
    until ``ended_at`` (None: until closed). Its realized saving per hour is ``spot_hourly + counterfactual_hourly``
    (see :class:`LedgerEntry`); ``projected_hourly`` is what the action promised. Entries in ``supersedes`` close at
    ``at``. An entry opened while the cluster sleeps starts paused. Idempotent: the same action (source, type, id)
    returns its existing entry. Audited. Runs in the caller's transaction.

    This is the function the apps that act on clusters call (jobs, hibernation, interruption replacement)."""
    at = at or timezone.now()
    if source not in Source.values:
        raise ValidationFailed("Unknown ledger source.", fields={"source": [f"One of {', '.join(Source.values)}."]})
    if not action_type or str(action_id) == "":
        raise ValidationFailed("An action type and id are needed.", fields={"action_id": ["Required."]})
    if ended_at is not None and ended_at < at:
        raise ValidationFailed("An entry cannot end before it starts.", fields={"ended_at": ["Before started_at."]})
    values = {
        "projected_hourly": _money(projected_hourly, "projected_hourly"),
        "spot_hourly": _money(spot_hourly, "spot_hourly"),
        "counterfactual_hourly": _money(counterfactual_hourly, "counterfactual_hourly"),
        "baseline_hourly": _money(baseline_hourly, "baseline_hourly"),
    }
    existing = LedgerEntry.objects.filter(source=source, action_type=action_type, action_id=str(action_id)).first()
    if existing is not None:
        return existing
    discount = (
        SavingsSettings.objects.filter(organization_id=cluster.organization_id)
        .values_list("on_demand_discount_pct", flat=True)
        .first()
    )
    pauses = []
    if source != Source.HIBERNATION and ended_at is None and cluster.hibernation_state in ASLEEP_STATES:
        pauses = [[at.isoformat(), None]]
    with transaction.atomic():
        entry = LedgerEntry.objects.create(
            organization_id=cluster.organization_id,
            cluster=cluster,
            source=source,
            action_type=action_type,
            action_id=str(action_id),
            started_at=at,
            ended_at=ended_at,
            pauses=pauses,
            discount_pct=discount or ZERO,
            price_source=price_source[:80],
            detail=detail or {},
            **values,
        )
        record(
            action=actions.LEDGER_OPENED,
            organization_id=cluster.organization_id,
            resource=entry,
            after=_entry_summary(entry),
            actor=actor,
        )
        for old in supersedes:
            ledger_close(entry=old, at=at, superseded_by=entry, actor=actor)
    return entry


def ledger_close(
    *, entry: LedgerEntry, at: datetime | None = None, superseded_by: LedgerEntry | None = None, actor: Any = ACTOR
) -> LedgerEntry:
    """End ``entry`` at ``at`` (a paused entry's pause ends there too). Closing a closed entry changes nothing."""
    at = at or timezone.now()
    if entry.ended_at is not None:
        return entry
    before = _entry_summary(entry)
    entry.ended_at = max(at, entry.started_at)
    if entry.paused:
        entry.pauses = [*entry.pauses[:-1], [entry.pauses[-1][0], entry.ended_at.isoformat()]]
    entry.superseded_by = superseded_by
    entry.save(update_fields=["ended_at", "pauses", "superseded_by"])
    record(
        action=actions.LEDGER_CLOSED,
        organization_id=entry.organization_id,
        resource=entry,
        before=before,
        after=_entry_summary(entry),
        actor=actor,
    )
    return entry


def open_entries(cluster: Cluster, *, sources: Iterable[str] | None = None) -> list[LedgerEntry]:
    qs = LedgerEntry.objects.filter(cluster=cluster, ended_at__isnull=True)
    if sources is not None:
        qs = qs.filter(source__in=list(sources))
    return list(qs.order_by("started_at", "id"))


def _pause_or_resume(cluster: Cluster, at: datetime, *, pause: bool, actor: Any) -> list[int]:
    changed = []
    with transaction.atomic():
        entries = (
            LedgerEntry.objects.select_for_update()
            .filter(cluster=cluster, ended_at__isnull=True)
            .exclude(source=Source.HIBERNATION)
            .order_by("id")
        )
        for entry in entries:
            if pause and not entry.paused:
                entry.pauses = [*entry.pauses, [at.isoformat(), None]]
            elif not pause and entry.paused:
                entry.pauses = [*entry.pauses[:-1], [entry.pauses[-1][0], at.isoformat()]]
            else:
                continue
            entry.save(update_fields=["pauses"])
            changed.append(entry.pk)
        if changed:
            record(
                action=actions.LEDGER_PAUSED if pause else actions.LEDGER_RESUMED,
                organization_id=cluster.organization_id,
                resource=cluster,
                after={"entries": changed, "at": at.isoformat()},
                actor=actor,
            )
    return changed


def ledger_pause_cluster(*, cluster: Cluster, at: datetime | None = None, actor: Any = ACTOR) -> list[int]:
    """The cluster goes to sleep: its open entries stop counting (the night is the hibernation entry's)."""
    return _pause_or_resume(cluster, at or timezone.now(), pause=True, actor=actor)


def ledger_resume_cluster(*, cluster: Cluster, at: datetime | None = None, actor: Any = ACTOR) -> list[int]:
    """The cluster is awake again: its paused entries count again."""
    return _pause_or_resume(cluster, at or timezone.now(), pause=False, actor=actor)


def hibernation_entry(
    *,
    cluster: Cluster,
    period_id: Any,
    asleep_at: datetime,
    waking_at: datetime,
    hourly_cost: Decimal,
    node_count: int,
    actor: Any = ACTOR,
) -> LedgerEntry:
    """The ledger entry of one night asleep: the node-hours avoided, priced at what the nodes cost per hour when
    they went to sleep, in force from capacity at zero until capacity was asked back."""
    return ledger_open(
        cluster=cluster,
        source=Source.HIBERNATION,
        action_type="hibernation_period",
        action_id=period_id,
        projected_hourly=hourly_cost,
        counterfactual_hourly=hourly_cost,
        baseline_hourly=hourly_cost,
        at=asleep_at,
        ended_at=max(waking_at, asleep_at),
        price_source="inventory price when the nodes went to sleep",
        detail={"node_count": node_count},
        actor=actor,
    )
