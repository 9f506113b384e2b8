from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clusters.selectors import organization_summary


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"nav": "dashboard", "summary": organization_summary(request.user)}
    return render(request, "console/dashboard.html", context)


@login_required
def section_placeholder(request: HttpRequest, section: str) -> HttpResponse:
    return render(request, "console/section_empty.html", {"nav": section, "section": section})
