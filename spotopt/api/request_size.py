"""Request bodies: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` enforced for every endpoint as a 413, and chunked bodies read.

Django checks the limit only when ``request.body`` is read; DRF's parsers read the stream directly and never hit it,
so without this an API endpoint reads whatever it is sent. A body declared larger than the limit is refused before
anything reads it.

A body sent with ``Transfer-Encoding: chunked`` has no ``Content-Length``; Django (and DRF) then treat it as empty.
When the server says where such a body ends (``wsgi.input_terminated``, set by gunicorn), it is read here, up to the
limit, and handed on with its length, so the view sees what the client sent.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse

from .exceptions import is_api_request, json_error


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = f"Request body larger than {limit} bytes."
    if is_api_request(request):
        return json_error(413, "payload_too_large", message)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def _bad_length(request: HttpRequest) -> HttpResponse:
    message = "Content-Length must be a non-negative integer."
    if is_api_request(request):
        return json_error(400, "bad_request", message)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        meta = request.META
        declared = meta.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                return _bad_length(request)
            if length < 0:
                return _bad_length(request)
            if limit is not None and length > limit:
                return _too_large(request, limit)
        elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and meta.get("wsgi.input_terminated"):
            stream = meta["wsgi.input"]
            body = stream.read(limit + 1) if limit is not None else stream.read()
            if limit is not None and len(body) > limit:
                return _too_large(request, limit)
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined]
            meta["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)
