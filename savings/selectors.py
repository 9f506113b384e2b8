"""Tenancy-scoped reads of the cost history and the savings ledger: the API, the console pages, the reports.

Every function answers in a fixed number of queries whatever the number of clusters, hours and entries (noted on
each). Baseline figures (the on-demand equivalent, a ledger entry's baseline) carry the organization's on-demand
discount (:class:`~savings.models.SavingsSettings`); costs and ledger savings are as recorded.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Max, Q, QuerySet, Sum
from django.utils import timezone

from clusters.models import Cluster
from pricing.models import OnDemandPrice, SpotPricePoint
from pricing.models import Source as PriceSource

from . import intervals
from .models import CostRecord, LedgerEntry, SavingsSettings
from .services import day_start, month_start, next_month

ZERO = Decimal(0)
CENT = Decimal("0.01")
SIX = Decimal("0.000001")
Step = CostRecord.Step
SNAPSHOT_DATE = "2022-05-31"


def money(value: Decimal | None, places: Decimal = SIX) -> str:
    return str((value or ZERO).quantize(places))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def discount_of(user) -> Decimal:
    """The caller's organization's on-demand discount as a fraction (0 when none is set). One query."""
    if getattr(user, "organization_id", None) is None:
        return ZERO
    pct = (
        SavingsSettings.objects.filter(organization_id=user.organization_id)
        .values_list("on_demand_discount_pct", flat=True)
        .first()
    )
    return (pct or ZERO) / Decimal(100)


def settings_for(user) -> SavingsSettings:
    return SavingsSettings.objects.filter(organization_id=user.organization_id).first() or SavingsSettings(
        organization_id=user.organization_id
    )


def records_for(user, *, cluster: Cluster | None = None) -> QuerySet[CostRecord]:
    qs = CostRecord.objects.for_user(user)
    if cluster is not None:
        qs = qs.filter(cluster=cluster)
    return qs


def cost_history(
    user, *, step: str, cluster: Cluster | None = None, since: datetime | None = None, until: datetime | None = None
) -> QuerySet:
    """Buckets of ``step`` in [since, until), summed over the caller's clusters (or one): dicts with ``t`` and the
    sums. One query when evaluated (plus the count when paginated)."""
    qs = records_for(user, cluster=cluster).filter(step=step)
    if since is not None:
        qs = qs.filter(t__gte=since)
    if until is not None:
        qs = qs.filter(t__lt=until)
    return (
        qs.values("t")
        .annotate(
            cost=Sum("cost"),
            od=Sum("on_demand_equivalent"),
            hrs=Max("hours"),
            spot_nh=Sum("spot_node_hours"),
            od_nh=Sum("on_demand_node_hours"),
            hib=Sum("hibernated_hours"),
        )
        .order_by("t")
    )


def history_row(row: dict, discount: Decimal) -> dict:
    """One bucket as the API shows it: ``t`` (ISO 8601, Z), cost and on-demand equivalent (decimal strings, the
    latter discounted), spot share (0–1 of node-hours), nodes (average over the bucket)."""
    spot, od = row["spot_nh"] or 0, row["od_nh"] or 0
    hours = row["hrs"] or 1
    return {
        "t": iso(row["t"]),
        "cost": money(row["cost"]),
        "on_demand_equivalent": money((row["od"] or ZERO) * (1 - discount)),
        "spot_share": round(spot / (spot + od), 4) if spot + od else 0.0,
        "nodes": round((spot + od) / hours),
    }


def ledger_for(
    user,
    *,
    cluster: Cluster | None = None,
    sources: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The caller's ledger entries in force at some time within [since, until). One query when evaluated."""
    qs = LedgerEntry.objects.for_user(user).select_related("cluster")
    if cluster is not None:
        qs = qs.filter(cluster=cluster)
    if sources:
        qs = qs.filter(source__in=list(sources))
    if since is not None:
        qs = qs.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=since))
    if until is not None:
        qs = qs.filter(started_at__lt=until)
    return qs.order_by("-started_at", "-id")


@dataclasses.dataclass(frozen=True, slots=True)
class EntryRow:
    """The fields of a ledger entry that the figures need (no model instance: thousands are read at once)."""

    cluster_id: int
    source: str
    started_at: datetime
    ended_at: datetime | None
    pauses: list
    projected_hourly: Decimal
    spot_hourly: Decimal
    counterfactual_hourly: Decimal
    baseline_hourly: Decimal

    @property
    def realized_hourly(self) -> Decimal:
        return self.spot_hourly + self.counterfactual_hourly


def entry_rows(qs: QuerySet[LedgerEntry]) -> list[EntryRow]:
    """One query."""
    fields = [f.name for f in dataclasses.fields(EntryRow)]
    return [EntryRow(*row) for row in qs.select_related(None).order_by().values_list(*fields)]


def _segments(entry, since: datetime | None, until: datetime) -> list[tuple[float, float]]:
    return intervals.segments(
        entry.started_at, entry.ended_at, entry.pauses, since=since or entry.started_at, until=until
    )


def _by_bucket(rows: list[EntryRow], since: datetime, until: datetime, edges: list[datetime], key) -> dict:
    """(key(entry), bucket index) -> realized and projected USD (floats: chart and group figures, 6 places)."""
    stamps = [e.timestamp() for e in edges]
    out: dict = defaultdict(lambda: [0.0, 0.0])
    for entry in rows:
        realized, projected = float(entry.realized_hourly) / 3600, float(entry.projected_hourly) / 3600
        k = key(entry)
        for i, secs in enumerate(intervals.seconds_by_bucket(_segments(entry, since, until), stamps)):
            if secs:
                cell = out[(k, i)]
                cell[0] += realized * secs
                cell[1] += projected * secs
    return out


def _usd(value: float, places: Decimal = SIX) -> Decimal:
    return Decimal(repr(value)).quantize(places)


def entry_figures(entry: LedgerEntry, *, since: datetime | None, until: datetime, discount: Decimal) -> dict:
    hours = Decimal(str(entry.in_force_seconds(since, until))) / Decimal(3600)
    return {
        "hours": hours,
        "realized": (entry.realized_hourly * hours).quantize(SIX),
        "projected": (entry.projected_hourly * hours).quantize(SIX),
        "spot": (entry.spot_hourly * hours).quantize(SIX),
        "counterfactual": (entry.counterfactual_hourly * hours).quantize(SIX),
        "baseline": (entry.baseline_hourly * (1 - discount) * hours).quantize(SIX),
    }


def _window(since: datetime, until: datetime) -> Q:
    """The cost rows that cover [since, until) once: the daily roll-ups of the whole days inside it, the hourly rows
    of the hours around them (a day's row is the sum of its hours, so the sum is the same, from a twenty-fourth of
    the rows)."""
    first = day_start(since)
    if first < since:
        first += timedelta(days=1)
    last = day_start(until)
    if first >= last:
        return Q(step=Step.HOUR, t__gte=since, t__lt=until)
    return (
        Q(step=Step.DAY, t__gte=first, t__lt=last)
        | Q(step=Step.HOUR, t__gte=since, t__lt=first)
        | Q(step=Step.HOUR, t__gte=last, t__lt=until)
    )


def _bucket_key(t: datetime, group_by: str) -> str:
    return t.strftime("%Y-%m-%d") if group_by == "day" else t.strftime("%Y-%m")


def savings_summary(
    user,
    *,
    group_by: str,
    cluster: Cluster | None = None,
    since: datetime,
    until: datetime,
) -> dict:
    """``{totals: {realized, projected, baseline, cost}, rows: [{key, realized, projected}]}`` over [since, until).

    realized / projected: the ledger's entries, each over the time it was in force within the window; baseline and
    cost: the cost history's on-demand equivalent (discounted) and cost over the window. Three queries (discount,
    ledger entries, cost sums)."""
    discount = discount_of(user)
    rows = entry_rows(ledger_for(user, cluster=cluster, since=since, until=until))
    sums = (
        records_for(user, cluster=cluster)
        .filter(_window(since, until))
        .aggregate(cost=Sum("cost"), od=Sum("on_demand_equivalent"))
    )
    realized = projected = ZERO
    grouped: dict[str, list] = defaultdict(lambda: [ZERO, ZERO])
    for entry in rows:
        hours = Decimal(repr(sum(b - a for a, b in _segments(entry, since, until)))) / Decimal(3600)
        r, p = entry.realized_hourly * hours, entry.projected_hourly * hours
        realized += r
        projected += p
        if group_by in ("source", "cluster"):
            key = entry.source if group_by == "source" else str(entry.cluster_id)
            grouped[key][0] += r
            grouped[key][1] += p
    if group_by in ("day", "month"):
        edges = _edges(since, until, group_by)
        cells = _by_bucket(rows, since, until, edges, key=lambda e: "")
        out = [
            {"key": _bucket_key(edges[i], group_by), "realized": money(_usd(v[0])), "projected": money(_usd(v[1]))}
            for (_, i), v in sorted(cells.items(), key=lambda kv: kv[0][1])
        ]
    else:
        out = [{"key": k, "realized": money(v[0]), "projected": money(v[1])} for k, v in sorted(grouped.items())]
    return {
        "totals": {
            "realized": money(realized),
            "projected": money(projected),
            "baseline": money((sums["od"] or ZERO) * (1 - discount)),
            "cost": money(sums["cost"]),
        },
        "rows": out,
    }


def _edges(since: datetime, until: datetime, group_by: str) -> list[datetime]:
    edges = []
    t = day_start(since) if group_by == "day" else month_start(since)
    while t < until:
        edges.append(t)
        t = t + timedelta(days=1) if group_by == "day" else next_month(t)
    edges.append(t)
    return edges


def reconciliation(
    user, *, cluster: Cluster | None = None, since: datetime, until: datetime, tolerance: Decimal = CENT
) -> dict:
    """Does the ledger explain the cost history? Over [since, until):

    - the history's spot gap: Σ hourly (on-demand equivalent − cost), at list prices;
    - the ledger's spot part: Σ entries' ``spot_hourly`` × hours in force (jobs, fallbacks, restores, interruption
      replacements), against which the gap reconciles; ``unexplained`` = gap − spot part (spot capacity the
      platform did not buy, price moves, actions between hourly snapshots);
    - beside it, the counterfactual parts by source (nodes removed, nights asleep), priced at their baseline.
    Two queries."""
    entries = list(ledger_for(user, cluster=cluster, since=since, until=until))
    sums = (
        records_for(user, cluster=cluster)
        .filter(step=Step.HOUR, t__gte=since, t__lt=until)
        .aggregate(cost=Sum("cost"), od=Sum("on_demand_equivalent"))
    )
    gap = (sums["od"] or ZERO) - (sums["cost"] or ZERO)
    spot = ZERO
    by_source: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"spot": ZERO, "counterfactual": ZERO})
    for entry in entries:
        f = entry_figures(entry, since=since, until=until, discount=ZERO)
        spot += f["spot"]
        by_source[entry.source]["spot"] += f["spot"]
        by_source[entry.source]["counterfactual"] += f["counterfactual"]
    unexplained = gap - spot
    return {
        "since": iso(since),
        "until": iso(until),
        "history": {"cost": money(sums["cost"]), "on_demand_equivalent": money(sums["od"]), "spot_gap": money(gap)},
        "ledger_spot": money(spot),
        "unexplained": money(unexplained),
        "reconciled": abs(unexplained) <= tolerance,
        "by_source": {
            source: {"spot": money(v["spot"]), "counterfactual": money(v["counterfactual"])}
            for source, v in sorted(by_source.items())
        },
        "counterfactual": money(sum((v["counterfactual"] for v in by_source.values()), ZERO)),
    }


# --- Console figures -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CatalogAge:
    on_demand_updated_at: datetime | None
    on_demand_source: str
    spot_latest_at: datetime | None
    spot_source: str

    @property
    def on_demand_label(self) -> str:
        labels = dict(PriceSource.choices)
        return labels.get(self.on_demand_source, self.on_demand_source)

    @property
    def spot_label(self) -> str:
        if self.spot_source == PriceSource.AWS:
            return "spot price history of the linked accounts"
        return f"bundled snapshot of {SNAPSHOT_DATE}"


def catalog_age() -> CatalogAge:
    """When the catalog's prices were last refreshed, and from where. Two queries."""
    od = OnDemandPrice.objects.order_by("-updated_at").values("updated_at", "source").first() or {}
    spot = SpotPricePoint.objects.order_by("-timestamp").values("timestamp", "source").first() or {}
    return CatalogAge(
        on_demand_updated_at=od.get("updated_at"),
        on_demand_source=od.get("source", ""),
        spot_latest_at=spot.get("timestamp"),
        spot_source=spot.get("source", ""),
    )


def overview(user, *, cluster: Cluster | None = None, now: datetime | None = None, days: int = 30) -> dict:
    """The dashboard's (or one cluster's) figures: daily cost vs the on-demand baseline over the last ``days``
    days, realized savings by source per day, spot share per day, month to date, the month's forecast (month to date
    + the daily average of the last 7 whole days with history, for the days left), and the catalog's age.

    Queries: discount, daily rows, ledger entries, month-to-date sum, catalog (2) — six, whatever the number of
    clusters and hours."""
    now = now or timezone.now()
    today = day_start(now)
    since = today - timedelta(days=days - 1)
    until = today + timedelta(days=1)
    discount = discount_of(user)
    daily = {row["t"]: row for row in cost_history(user, step=Step.DAY, cluster=cluster, since=since, until=until)}
    edges = _edges(since, until, "day")
    cells = _by_bucket(
        entry_rows(ledger_for(user, cluster=cluster, since=since, until=now)), since, now, edges, key=lambda e: e.source
    )
    by_source: dict[str, list[Decimal]] = {}
    for (source, i), (realized, _) in cells.items():
        by_source.setdefault(source, [ZERO] * (len(edges) - 1))[i] = _usd(realized, CENT)
    days_rows = []
    for i, t in enumerate(edges[:-1]):
        row = daily.get(t)
        formatted = history_row(row, discount) if row else None
        days_rows.append(
            {
                "t": iso(t),
                "day": t.strftime("%Y-%m-%d"),
                "cost": formatted["cost"] if formatted else money(ZERO),
                "baseline": formatted["on_demand_equivalent"] if formatted else money(ZERO),
                "spot_share": formatted["spot_share"] if formatted else 0.0,
                "savings": {s: str(v[i]) for s, v in by_source.items()},
            }
        )
    month = (
        records_for(user, cluster=cluster)
        .filter(step=Step.MONTH, t=month_start(now))
        .aggregate(cost=Sum("cost"), od=Sum("on_demand_equivalent"))
    )
    mtd = month["cost"] or ZERO
    # The seven whole days before today, counting only days that have history (a new installation or cluster has
    # none before its first hour); with no day before today yet, today's hours so far are scaled to a day.
    # A day's cost is scaled by the hours it recorded, so the first, partial day counts at its rate.
    last7 = [daily[t] for t in edges[-9:-2] if t in daily]
    recorded = sum(int(row["hrs"] or 0) for row in last7)
    if last7 and recorded:
        average = sum((Decimal(row["cost"]) for row in last7), ZERO) * 24 / recorded
        basis = f"the last {len(last7)} whole day{'s' if len(last7) > 1 else ''}' average"
    elif today in daily:
        hours = int(daily[today]["hrs"] or 0) or max(1, math.ceil((now - today).total_seconds() / 3600))
        average = Decimal(daily[today]["cost"]) * 24 / hours
        basis = f"today's first {hours} hour{'s' if hours > 1 else ''} scaled to a day"
    else:
        average, basis = ZERO, "no history yet"
    days_left = (next_month(now) - now).total_seconds() / 86400
    forecast = mtd + average * Decimal(str(round(days_left, 4)))
    sources = [s for s in LedgerEntry.Source.values if s in by_source]
    return {
        "days": days_rows,
        "sources": [(s, LedgerEntry.Source(s).label) for s in sources],
        "month_to_date": money(mtd, CENT),
        "month_to_date_baseline": money((month["od"] or ZERO) * (1 - discount), CENT),
        "forecast": money(forecast, CENT),
        "seven_day_average": money(average, CENT),
        "forecast_basis": basis,
        "discount_pct": money(discount * 100, CENT),
        "catalog": catalog_age(),
        "now": now,
    }


def monthly_report(user, *, months: int = 12, now: datetime | None = None, month: str | None = None) -> dict:
    """Cost, on-demand baseline (discounted) and saving per month over the last ``months`` months, and per cluster
    for ``month`` ("YYYY-MM", default the newest). Three queries (discount, monthly totals, the month's clusters)."""
    now = now or timezone.now()
    start = month_start(now)
    for _ in range(months - 1):
        start = month_start(start - timedelta(days=1))
    discount = discount_of(user)
    base = CostRecord.objects.for_user(user).filter(step=Step.MONTH, t__gte=start)
    totals = base.values("t").annotate(cost=Sum("cost"), od=Sum("on_demand_equivalent")).order_by("-t")
    out = []
    for row in totals:
        baseline = (row["od"] or ZERO) * (1 - discount)
        out.append(
            {
                "t": iso(row["t"]),
                "month": row["t"].strftime("%Y-%m"),
                "cost": money(row["cost"], CENT),
                "baseline": money(baseline, CENT),
                "saving": money(baseline - (row["cost"] or ZERO), CENT),
                "start": row["t"],
            }
        )
    selected = next((m for m in out if m["month"] == month), out[0] if out else None)
    if selected is not None:
        rows = (
            base.filter(t=selected["start"])
            .order_by("cluster__name", "cluster_id")
            .values_list(
                "cost",
                "on_demand_equivalent",
                "spot_node_hours",
                "on_demand_node_hours",
                "hibernated_hours",
                "cluster_id",
                "cluster__name",
                "cluster__region",
            )
        )
        selected["clusters"] = []
        for cost, od, spot_nh, od_nh, hibernated, cluster_id, name, region in rows:
            baseline = od * (1 - discount)
            nh = spot_nh + od_nh
            selected["clusters"].append(
                {
                    "cluster": {"pk": cluster_id, "name": name, "region": region},
                    "cost": money(cost, CENT),
                    "baseline": money(baseline, CENT),
                    "saving": money(baseline - cost, CENT),
                    "spot_share": round(spot_nh / nh, 4) if nh else 0.0,
                    "spot_pct": round(100 * spot_nh / nh) if nh else 0,
                    "hibernated_hours": hibernated,
                }
            )
    return {"months": out, "selected": selected, "discount_pct": money(discount * 100, CENT)}


def realized(entry: LedgerEntry, *, since: datetime | None = None, until: datetime | None = None) -> Decimal:
    """USD the entry realized within [since, until) (default: all of it up to now)."""
    hours = Decimal(str(entry.in_force_seconds(since, until))) / Decimal(3600)
    return (entry.realized_hourly * hours).quantize(SIX)
