"""Request id: taken from ``X-Request-ID`` (when sane) or generated, exposed to logs and echoed in the response."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .context import current_request_var, request_id_var

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
logger = logging.getLogger("spotopt.request")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        id_token = request_id_var.set(request_id)
        req_token = current_request_var.set(request)
        started = time.monotonic()
        try:
            response = self.get_response(request)
        finally:
            current_request_var.reset(req_token)
        response["X-Request-ID"] = request_id
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        request_id_var.reset(id_token)
        return response


def client_ip(request: HttpRequest) -> str | None:
    """The client address. Behind a proxy, ``REMOTE_ADDR`` is the proxy; gunicorn is run with forwarded-allow-ips."""
    return request.META.get("REMOTE_ADDR") or None
