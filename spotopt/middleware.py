"""Request plumbing: the request id (taken from ``X-Request-ID`` when sane, or generated, exposed to logs and echoed
in the response), the client address behind trusted proxies, and the security headers of every response."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
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


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_trusted_proxy(address: str | None) -> bool:
    """Whether ``address`` is one of ``TRUSTED_PROXIES`` (addresses or CIDR networks; empty: no proxy is trusted)."""
    ip = _parse_ip(address or "")
    return ip is not None and any(ip in network for network in settings.TRUSTED_PROXY_NETWORKS)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, the one every limiter and the audit log count by.

    ``REMOTE_ADDR`` unless it is a trusted proxy (``TRUSTED_PROXIES``); then ``X-Forwarded-For`` is read from the
    right, skipping the trusted proxies it passed through, and the first address that is not one of them is the
    client. Whatever a client writes into the header itself stays to the left of that and is never believed, so a
    rotating ``X-Forwarded-For`` does not give an anonymous caller a fresh limit.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    peer = _parse_ip(remote)
    if peer is None:
        return remote or None
    if not is_trusted_proxy(str(peer)):
        return str(peer)
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            break  # a malformed hop: believe nothing to its left
        client = ip
        if not is_trusted_proxy(str(ip)):
            break
    return str(client)


class ProxyHeadersMiddleware:
    """Drop the forwarded scheme header unless a trusted proxy sent the request, so that ``SECURE_PROXY_SSL_HEADER``
    is only ever believed from ``TRUSTED_PROXIES``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_PROTO" in request.META and not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)


# Console pages load their scripts, styles and images from this origin only; no inline script anywhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


# The API reference pages (Swagger UI, ReDoc) are third-party bundles started by an inline script; they show no
# operator data, so they get a policy that allows inline code but still nothing from another host.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """``Content-Security-Policy`` on every HTML page; ``Cache-Control: no-store`` on API responses (tokens, API
    keys, tenant data) and on the pages of a signed-in operator, unless the view decided its own caching."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        html = response.get("Content-Type", "").startswith("text/html")
        if html and "Content-Security-Policy" not in response:
            docs = request.path in DOCS_PATHS
            response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY
        if "Cache-Control" not in response and (request.path.startswith("/api/") or (html and _signed_in(request))):
            response["Cache-Control"] = "no-store"
        return response
