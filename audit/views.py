"""Console pages of the audit log: the filtered list (htmx), an entry with its diff, and the CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import selectors
from .diff import diff
from .filters import AuditLogFilter
from .models import ENTRY_FIELDS, AuditLog
from .services import record

PAGE_SIZE = 50
# Rows fetched per round trip while streaming the export: big enough to be quick, small enough that a million-row
# export holds only this many model instances at a time (a server-side cursor on PostgreSQL).
EXPORT_CHUNK_SIZE = 2000
CSV_COLUMNS = ("id", *ENTRY_FIELDS)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _encode_cursor(entry: AuditLog) -> str:
    return f"{entry.created_at.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%f')}_{entry.pk}"


def _after_cursor(queryset: QuerySet[AuditLog], cursor: str) -> QuerySet[AuditLog]:
    """Keyset pagination on (created_at, id) descending: no OFFSET and no COUNT, however long the log is. A cursor
    that does not parse is ignored (the first page), never a 500."""
    try:
        stamp, pk = cursor.split("_", 1)
        created_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=dt.UTC)
        pk_value = int(pk)
    except ValueError:
        return queryset
    return queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk_value))


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """The Audit page. An htmx request (a filter changed, "Older entries") gets only the rows partial."""
    filterset = AuditLogFilter(request.GET, queryset=selectors.audit_entries_for(request.user))
    entries_qs = filterset.qs
    if request.user.is_super_admin:
        entries_qs = entries_qs.select_related("organization")  # the Organization column, in the same query
    cursor = request.GET.get("cursor", "")
    if cursor:
        entries_qs = _after_cursor(entries_qs, cursor)
    entries = list(entries_qs[: PAGE_SIZE + 1])
    next_query = ""
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        params = request.GET.copy()
        params["cursor"] = _encode_cursor(entries[-1])
        next_query = params.urlencode()
    filter_params = request.GET.copy()
    filter_params.pop("cursor", None)
    context = {
        "nav": "audit",
        "filter": filterset,
        "entries": entries,
        "cursor": cursor,
        "next_query": next_query,
        "filter_query": filter_params.urlencode(),
        "show_org": request.user.is_super_admin,
    }
    template = "audit/_rows.html" if request.htmx else "audit/list.html"
    return render(request, template, context)


@login_required
@require_GET
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One entry: who, what, from where, the before/after diff and its place in the chain."""
    entry = selectors.audit_entry_for(request.user, pk)
    return render(
        request,
        "audit/detail.html",
        {
            "nav": "audit",
            "entry": entry,
            "diff": diff(entry.before, entry.after),
            "before_json": json.dumps(entry.before, indent=2, ensure_ascii=False, sort_keys=True),
            "after_json": json.dumps(entry.after, indent=2, ensure_ascii=False, sort_keys=True),
        },
    )


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        # A spreadsheet would run "=HYPERLINK(...)" typed into a user agent; a leading quote keeps it text.
        return "'" + value
    return "" if value is None else value


def _csv_lines(queryset: QuerySet[AuditLog]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in queryset.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield writer.writerow([_cell(getattr(entry, column)) for column in CSV_COLUMNS])


@login_required
@require_GET
def audit_export_csv(request: HttpRequest) -> HttpResponse:
    """The filtered entries as CSV, streamed row by row: memory stays flat whatever the number of rows."""
    filterset = AuditLogFilter(request.GET, queryset=selectors.audit_entries_for(request.user))
    if not filterset.is_valid():
        return HttpResponse(f"Invalid filter: {filterset.errors.as_text()}", status=400, content_type="text/plain")
    filters = {k: v for k, v in filterset.form.cleaned_data.items() if v not in (None, "")}
    # Who took a copy of the log, and of which part, is itself worth knowing.
    record(
        action="audit.export",
        organization_id=request.user.organization_id,
        actor=request.user,
        resource_type="audit_log",
        after={"format": "csv", "filters": filters},
    )
    response = StreamingHttpResponse(_csv_lines(filterset.qs), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
