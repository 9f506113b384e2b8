"""``/api/v1/hibernation/schedules``: list (``?cluster=``), create, detail, change, delete, override, preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.selectors import cluster_for_user
from spotopt.errors import ValidationFailed

from . import selectors, services
from .filters import ScheduleFilter
from .serializers import (
    OverrideInputSerializer,
    PeriodSerializer,
    PreviewSerializer,
    ScheduleSerializer,
    ScheduleWriteSerializer,
)

MAX_PREVIEW_DAYS = 31


def parse_instant(value: Any, field: str) -> datetime:
    """An ISO 8601 date-time with an offset or Z, as aware UTC; a naive or malformed one is a 400 naming ``field``."""
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValidationFailed(f"{field}: An ISO 8601 date-time.", fields={field: ["An ISO 8601 date-time."]})
    if timezone.is_naive(parsed):
        raise ValidationFailed(
            f"{field}: The time needs an offset or Z (a naive time is ambiguous).",
            fields={field: ["Needs an offset or Z."]},
        )
    return parsed.astimezone(UTC)


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("The body must be a JSON object.", fields={"non_field_errors": ["Not an object."]})
    return dict(request.data)


class ScheduleListView(generics.ListAPIView):
    """GET: the caller's schedules with each cluster's state and next transition. POST: a new schedule."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter

    def get_queryset(self):
        return selectors.schedules_for(self.request.user)

    @extend_schema(request=ScheduleWriteSerializer, responses={201: ScheduleSerializer})
    def post(self, request):
        values = _body(request)
        cluster_id = values.pop("cluster", None)
        cluster = None
        if isinstance(cluster_id, int) and not isinstance(cluster_id, bool):
            try:
                cluster = cluster_for_user(request.user, cluster_id)
            except Http404:
                cluster = None
        if cluster is None:
            raise ValidationFailed("cluster: No such cluster.", fields={"cluster": ["No such cluster."]})
        schedule = services.schedule_create(cluster=cluster, values=values, actor=request.user)
        schedule = selectors.get_schedule(request.user, schedule.pk)
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: ScheduleSerializer})
    def get(self, request, pk: int):
        schedule = selectors.get_schedule(request.user, pk)
        body = ScheduleSerializer(schedule).data
        body["periods"] = PeriodSerializer(selectors.periods_of(schedule), many=True).data
        return Response(body)

    @extend_schema(request=ScheduleWriteSerializer, responses={200: ScheduleSerializer})
    def patch(self, request, pk: int):
        schedule = selectors.get_schedule(request.user, pk)
        values = _body(request)
        if "cluster" in values:
            if values.pop("cluster") != schedule.cluster_id:
                raise ValidationFailed(
                    "cluster: A schedule cannot move to another cluster.", fields={"cluster": ["Cannot be changed."]}
                )
        services.schedule_update(schedule=schedule, values=values, actor=request.user)
        return Response(ScheduleSerializer(selectors.get_schedule(request.user, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.schedule_delete(schedule=selectors.get_schedule(request.user, pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleOverrideView(APIView):
    """POST: "keep awake until T" / "sleep now until T" with a reason; DELETE: back to the timetable."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=OverrideInputSerializer, responses={200: ScheduleSerializer})
    def post(self, request, pk: int):
        schedule = selectors.get_schedule(request.user, pk)
        values = _body(request)
        until = parse_instant(values.get("until"), "until")
        services.schedule_set_override(
            schedule=schedule,
            state=values.get("state"),
            until=until,
            reason=values.get("reason", ""),
            actor=request.user,
        )
        return Response(ScheduleSerializer(selectors.get_schedule(request.user, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.schedule_clear_override(schedule=selectors.get_schedule(request.user, pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SchedulePreviewView(APIView):
    """The transitions from ``from`` (default now) for ``days`` days (1-31, default 7), with the active override."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("from", str), OpenApiParameter("days", int)],
        responses={200: PreviewSerializer},
    )
    def get(self, request, pk: int):
        schedule = selectors.get_schedule(request.user, pk)
        raw_from = request.query_params.get("from")
        start = parse_instant(raw_from, "from") if raw_from is not None else timezone.now()
        raw_days = request.query_params.get("days", "7")
        if not raw_days.isdigit() or not 1 <= int(raw_days) <= MAX_PREVIEW_DAYS:
            raise ValidationFailed(
                f"days: An integer from 1 to {MAX_PREVIEW_DAYS}.", fields={"days": [f"1 to {MAX_PREVIEW_DAYS}."]}
            )
        days = int(raw_days)
        found = selectors.preview(schedule, start, days)
        return Response(
            {
                "time_zone": schedule.time_zone,
                "from": start.isoformat().replace("+00:00", "Z"),
                "days": days,
                "transitions": [t.as_json() for t in found],
            }
        )
