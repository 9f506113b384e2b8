"""``/api/v1/costs/history``, ``/api/v1/savings`` and ``/api/v1/savings/ledger``; each also as CSV
(``?format=csv``, streamed). Another organization's cluster is a 404; malformed filters are a 400 naming the field."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.selectors import cluster_for_user
from spotopt.api.pagination import PagePagination
from spotopt.errors import ValidationFailed

from . import selectors
from .models import CostRecord, LedgerEntry

MAX_SPAN = timedelta(days=3660)
DEFAULT_SPAN = {"hour": timedelta(days=7), "day": timedelta(days=90), "month": timedelta(days=730)}


class CSVRenderer(renderers.BaseRenderer):
    """Named so that ``?format=csv`` is accepted; the views stream the CSV themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only
        return str(data).encode()


class _Echo:
    def write(self, value: str) -> str:
        return value


def stream_csv(filename: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _instant(raw: str, field: str) -> datetime:
    """An ISO 8601 date-time with an offset or Z, or a date (its midnight, UTC)."""
    value = raw.strip()
    try:
        day = parse_date(value) if len(value) == 10 else None
        parsed = datetime.combine(day, time(), tzinfo=UTC) if day else parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationFailed(f"{field}: An ISO 8601 date or date-time.", fields={field: ["An ISO 8601 date."]})
    if timezone.is_naive(parsed):
        raise ValidationFailed(f"{field}: The time needs an offset or Z.", fields={field: ["Needs an offset or Z."]})
    if not 1970 <= parsed.year < 2100:
        raise ValidationFailed(f"{field}: From 1970 to 2099.", fields={field: ["From 1970 to 2099."]})
    return parsed.astimezone(UTC)


class Params:
    """The query string of these endpoints, validated: anything unknown in a known parameter is a 400."""

    def __init__(self, request, *, allowed: set[str]) -> None:
        self.request = request
        self.query = request.query_params
        unknown = sorted(set(self.query) - allowed - {"format", "page", "page_size"})
        if unknown:
            raise ValidationFailed(
                f"Unknown parameter: {', '.join(unknown)}.", fields={name: ["Unknown parameter."] for name in unknown}
            )

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        value = self.query.get(name, default) or default
        choices = list(choices)
        if value not in choices:
            raise ValidationFailed(f"{name}: One of {', '.join(choices)}.", fields={name: [f"One of {choices}."]})
        return value

    def cluster(self):
        raw = self.query.get("cluster")
        if raw in (None, ""):
            return None
        if not (raw.isascii() and raw.isdigit()):
            raise ValidationFailed("cluster: A cluster id.", fields={"cluster": ["A cluster id."]})
        return cluster_for_user(self.request.user, int(raw))  # another organization's: 404

    def window(self, default_span: timedelta) -> tuple[datetime, datetime]:
        until = _instant(self.query["until"], "until") if self.query.get("until") else timezone.now()
        since = _instant(self.query["since"], "since") if self.query.get("since") else until - default_span
        if since >= until:
            raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
        if until - since > MAX_SPAN:
            raise ValidationFailed("The window is at most ten years.", fields={"since": ["Too far back."]})
        return since, until

    def sources(self) -> list[str]:
        raw = [s for value in self.query.getlist("source") for s in value.split(",") if s]
        bad = sorted(set(raw) - set(LedgerEntry.Source.values))
        if bad:
            raise ValidationFailed(
                f"source: One of {', '.join(LedgerEntry.Source.values)}.", fields={"source": ["Unknown source."]}
            )
        return raw


def _wants_csv(request) -> bool:
    return getattr(request.accepted_renderer, "format", "") == "csv"


COMMON = [
    OpenApiParameter("cluster", int, description="One of the caller's clusters."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 (offset or Z) or a date; inclusive."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="ISO 8601 (offset or Z) or a date; exclusive."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the whole result, streamed."),
]

HistoryRows = inline_serializer(
    "CostHistoryRow",
    {
        "t": serializers.CharField(help_text="Bucket start, ISO 8601 UTC with Z."),
        "cost": serializers.DecimalField(max_digits=16, decimal_places=6),
        "on_demand_equivalent": serializers.DecimalField(max_digits=16, decimal_places=6),
        "spot_share": serializers.FloatField(help_text="0–1, of node-hours."),
        "nodes": serializers.IntegerField(help_text="Average over the bucket."),
    },
    many=True,
)


class CostHistoryView(APIView):
    """GET: the caller's cost per bucket (UTC), all clusters summed or one, with the on-demand equivalent."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]
    pagination_class = PagePagination

    @extend_schema(
        parameters=[*COMMON, OpenApiParameter("step", str, enum=CostRecord.Step.values)],
        responses={
            200: inline_serializer(
                name="CostHistoryPage",
                fields={
                    "count": serializers.IntegerField(),
                    "next": serializers.CharField(allow_null=True),
                    "previous": serializers.CharField(allow_null=True),
                    "results": HistoryRows,
                },
            )
        },
    )
    def get(self, request):
        params = Params(request, allowed={"cluster", "since", "until", "step"})
        step = params.choice("step", CostRecord.Step.values, "hour")
        cluster = params.cluster()
        since, until = params.window(DEFAULT_SPAN[step])
        discount = selectors.discount_of(request.user)
        rows = selectors.cost_history(request.user, step=step, cluster=cluster, since=since, until=until)
        if _wants_csv(request):
            fields = ["t", "cost", "on_demand_equivalent", "spot_share", "nodes"]
            formatted = (selectors.history_row(r, discount) for r in rows.iterator(chunk_size=2000))
            return stream_csv(f"cost-history-{step}.csv", fields, ([r[f] for f in fields] for r in formatted))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([selectors.history_row(r, discount) for r in page])


class SavingsView(APIView):
    """GET: realized and projected savings (the ledger) and cost and baseline (the cost history) over a window."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[*COMMON, OpenApiParameter("group_by", str, enum=["day", "month", "source", "cluster"])],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        params = Params(request, allowed={"cluster", "since", "until", "group_by"})
        group_by = params.choice("group_by", ["day", "month", "source", "cluster"], "day")
        cluster = params.cluster()
        since, until = params.window(timedelta(days=30))
        body = selectors.savings_summary(request.user, group_by=group_by, cluster=cluster, since=since, until=until)
        if _wants_csv(request):
            rows = ([r["key"], r["realized"], r["projected"]] for r in body["rows"])
            return stream_csv(f"savings-by-{group_by}.csv", [group_by, "realized", "projected"], rows)
        return Response(body)


def entry_row(entry: LedgerEntry, *, now: datetime, discount) -> dict[str, Any]:
    figures = selectors.entry_figures(entry, since=None, until=now, discount=discount)
    return {
        "id": entry.pk,
        "cluster": entry.cluster_id,
        "cluster_name": entry.cluster.name,
        "source": entry.source,
        "action_type": entry.action_type,
        "action_id": entry.action_id,
        "projected_hourly": str(entry.projected_hourly),
        "realized_hourly": str(entry.realized_hourly),
        "spot_hourly": str(entry.spot_hourly),
        "counterfactual_hourly": str(entry.counterfactual_hourly),
        "baseline_hourly": str(entry.baseline_hourly),
        "discount_pct": str(entry.discount_pct),
        "price_source": entry.price_source,
        "started_at": selectors.iso(entry.started_at),
        "ended_at": selectors.iso(entry.ended_at) if entry.ended_at else None,
        "paused": entry.paused,
        "superseded_by": entry.superseded_by_id,
        "hours_in_force": str(figures["hours"].quantize(selectors.SIX)),
        "realized": str(figures["realized"]),
        "projected": str(figures["projected"]),
    }


LEDGER_FIELDS = [
    "id",
    "cluster",
    "cluster_name",
    "source",
    "action_type",
    "action_id",
    "projected_hourly",
    "realized_hourly",
    "spot_hourly",
    "counterfactual_hourly",
    "baseline_hourly",
    "discount_pct",
    "price_source",
    "started_at",
    "ended_at",
    "paused",
    "superseded_by",
    "hours_in_force",
    "realized",
    "projected",
]


class LedgerView(APIView):
    """GET: the ledger entries in force at some time in the window, newest first; each with what it realized."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]
    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            *COMMON,
            OpenApiParameter("source", str, enum=LedgerEntry.Source.values, description="Comma-separated."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        params = Params(request, allowed={"cluster", "since", "until", "source"})
        cluster = params.cluster()
        sources = params.sources()
        since = _instant(request.query_params["since"], "since") if request.query_params.get("since") else None
        until = _instant(request.query_params["until"], "until") if request.query_params.get("until") else None
        if since and until and since >= until:
            raise ValidationFailed("since must be before until.", fields={"since": ["Must be before until."]})
        discount = selectors.discount_of(request.user)
        now = timezone.now()
        entries = selectors.ledger_for(request.user, cluster=cluster, sources=sources, since=since, until=until)
        if _wants_csv(request):
            rows = (entry_row(e, now=now, discount=discount) for e in entries.iterator(chunk_size=1000))
            return stream_csv("savings-ledger.csv", LEDGER_FIELDS, ([r[f] for f in LEDGER_FIELDS] for r in rows))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response([entry_row(e, now=now, discount=discount) for e in page])
