from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from clusters.selectors import organization_summary
from savings.selectors import overview

from .api.exceptions import handler404


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"nav": "dashboard", "summary": organization_summary(request.user), "overview": overview(request.user)}
    return render(request, "console/dashboard.html", context)


@login_required
def section_placeholder(request: HttpRequest, section: str) -> HttpResponse:
    return render(request, "console/section_empty.html", {"nav": section, "section": section})


@csrf_exempt
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any unknown path under ``/api/``: the API's JSON 404, in development (``DEBUG``) too."""
    return handler404(request, Http404())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: the API's error shape under ``/api/``, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "csrf_failed", "message": f"CSRF check failed: {reason}"}}
        return JsonResponse(body, status=403)
    return django_csrf_failure(request, reason=reason)


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    return FileResponse((settings.BASE_DIR / "static" / "favicon.ico").open("rb"), content_type="image/x-icon")
