"""Checks of single values shared by the API, the agent intake and the console filters, so that a value no column
or library can hold is a 400 with a clear message instead of an overflow deep inside a query."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

# Aware datetimes are accepted within these bounds (after conversion to UTC): wide enough for any real timestamp or
# filter, far enough from datetime's own limits (years 1 and 9999) that adding an offset or a duration cannot overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1


def datetime_error(value: datetime) -> str | None:
    """Why an (aware or naive-as-UTC) datetime is out of range, or None."""
    try:
        at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return "Out of range."
    if not EARLIEST <= at < LATEST:
        return f"Must be between {EARLIEST.year} and {LATEST.year}."
    return None


def parse_aware_datetime(value: str) -> datetime:
    """An ISO 8601 date-time → an aware datetime in UTC (naive input is read as UTC). ``ValueError`` with a message
    for anything malformed, impossible (``2024-02-30``) or out of range (``0000-01-01``, an offset past year 9999)."""
    if not isinstance(value, str):
        raise ValueError("Must be an ISO 8601 date-time.")
    try:
        parsed = parse_datetime(value.strip())
    except (ValueError, OverflowError):
        raise ValueError("Not a valid date-time (no such day or time).")
    if parsed is None:
        raise ValueError("Must be an ISO 8601 date-time.")
    if (problem := datetime_error(parsed)) is not None:
        raise ValueError(problem)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
