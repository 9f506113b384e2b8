"""Per-request context (request id, the current request) visible to services and log records."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
current_request_var: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "current_request", default=None
)


def current_request() -> HttpRequest | None:
    return current_request_var.get()


def current_request_id() -> str:
    return request_id_var.get()
