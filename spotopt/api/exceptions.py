"""One error shape for the whole API: ``{"error": {"code", "message", "fields"?}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from spotopt.errors import ApplicationError, RateLimited

logger = logging.getLogger(__name__)

_MESSAGES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided or are invalid.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    429: "Too many requests.",
    500: "Internal server error.",
}


def error_body(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _flatten_fields(detail: Any) -> dict[str, Any]:
    """DRF's nested error detail as plain strings, keyed by field (``non_field_errors`` kept as is)."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def _flatten(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _flatten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_flatten(v) for v in value]
    return str(value)


def _first_message(fields: dict[str, Any]) -> str:
    for key, value in fields.items():
        while isinstance(value, list | dict) and value:
            value = value[0] if isinstance(value, list) else next(iter(value.values()))
        if isinstance(value, str):
            return value if key == "non_field_errors" else f"{key}: {value}"
    return _MESSAGES[400]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code, headers=headers)

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(exc.detail)
        return Response(error_body("validation_error", _first_message(fields), fields), status=400)

    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        detail = exc.detail
        if isinstance(detail, dict) and "detail" in detail:
            message = str(detail["detail"])
        elif isinstance(detail, list | dict):
            message = _MESSAGES.get(exc.status_code, "Error.")
        else:
            message = str(detail)
        code = exc.get_codes()
        if isinstance(code, dict):
            code = code.get("detail", exc.default_code)
        if isinstance(code, list):
            code = exc.default_code
        return Response(error_body(str(code), message), status=exc.status_code, headers=headers)
    return None


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/health")


def json_error(status_code: int, code: str, message: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message or _MESSAGES.get(status_code, "Error.")), status=status_code)


def handler404(request: HttpRequest, exception: Exception | None = None):
    if is_api_request(request):
        return json_error(status.HTTP_404_NOT_FOUND, "not_found")
    from django.shortcuts import render

    return render(request, "404.html", status=404)


def handler500(request: HttpRequest):
    if is_api_request(request):
        return json_error(status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error")
    from django.shortcuts import render

    return render(request, "500.html", status=500)


def handler403(request: HttpRequest, exception: Exception | None = None):
    if is_api_request(request):
        return json_error(status.HTTP_403_FORBIDDEN, "permission_denied")
    from django.shortcuts import render

    return render(request, "404.html", status=403)


def handler400(request: HttpRequest, exception: Exception | None = None):
    if is_api_request(request):
        return json_error(status.HTTP_400_BAD_REQUEST, "bad_request", "Bad request.")
    from django.shortcuts import render

    return render(request, "404.html", status=400)
