from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "console/dashboard.html", {"nav": "dashboard"})


@login_required
def section_placeholder(request: HttpRequest, section: str) -> HttpResponse:
    return render(request, "console/section_empty.html", {"nav": section, "section": section})
