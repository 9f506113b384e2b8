"""Console pages: the savings overview partial (the dashboard and cluster pages include it; htmx refreshes it every
30 s), the Reports page by month and cluster, and the organization's on-demand discount."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from clusters.selectors import cluster_for_user
from spotopt.errors import ApplicationError

from . import selectors, services
from .forms import SavingsSettingsForm


@login_required
@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    """The overview partial, of every cluster of the caller or of ``?cluster=`` (another organization's: 404)."""
    raw = request.GET.get("cluster")
    cluster = cluster_for_user(request.user, raw) if raw else None
    context = {"cluster": cluster, "o": selectors.overview(request.user, cluster=cluster)}
    return render(request, "savings/_overview.html", context)


def _reports(request: HttpRequest, form: SavingsSettingsForm | None = None, status: int = 200) -> HttpResponse:
    month = request.GET.get("month") or None
    report = selectors.monthly_report(request.user, month=month)
    form = form or SavingsSettingsForm(instance=selectors.settings_for(request.user))
    since = report["months"][-1]["t"][:10] if report["months"] else ""
    context = {"nav": "reports", "report": report, "form": form, "since": since}
    return render(request, "savings/reports.html", context, status=status)


@login_required
@require_safe
def reports(request: HttpRequest) -> HttpResponse:
    return _reports(request)


@login_required
@require_POST
def settings_update(request: HttpRequest) -> HttpResponse:
    form = SavingsSettingsForm(request.POST, instance=selectors.settings_for(request.user))
    if request.user.organization is None:
        form.add_error(None, "Only an organization's operators have savings settings.")
        return _reports(request, form, status=400)
    if form.is_valid():
        try:
            services.savings_settings_update(
                organization=request.user.organization, values=dict(form.cleaned_data), actor=request.user
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "On-demand discount saved.")
            return redirect("savings:reports")
    return _reports(request, form, status=400)
