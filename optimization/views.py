"""Console pages: jobs across clusters (filters), a job (plan before/after, steps timeline refreshed by htmx while it
runs, approve and cancel), and the cluster page's Apply / Recompute buttons."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clusters.selectors import cluster_for_user
from spotopt.errors import ApplicationError, ValidationFailed

from . import selectors
from .filters import JobFilter
from .services import evaluation, jobs, notifications
from .services.recommendations import recommendation_for


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    filterset = JobFilter(request.GET, queryset=selectors.jobs_for_user(request.user))
    page = list(filterset.qs[:200])
    template = "optimization/_job_rows.html" if request.htmx else "optimization/job_list.html"
    return render(request, template, {"nav": "optimization", "jobs": page, "filter": filterset})


def _plan_sides(job) -> dict:
    nodes = job.plan.get("nodes", [])
    removed = set(job.plan.get("remove") or [])
    before = [dict(facts, id=node_id, removed=node_id in removed) for node_id, facts in job.current_nodes.items()]
    after = [n for n in nodes]
    return {"before": before, "after": after}


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.get_job(request.user, pk)
    context = {"nav": "optimization", "job": job, "steps": selectors.job_steps(job), **_plan_sides(job)}
    if request.htmx and request.GET.get("part") == "steps":
        return render(request, "optimization/_job_steps.html", context)
    return render(request, "optimization/job_detail.html", context)


@login_required
@require_POST
def job_approve(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.get_job(request.user, pk)
    try:
        jobs.job_approve(job=job, actor=request.user)
        messages.success(request, "Approved: the job starts shortly.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("optimization:job", pk=job.pk)


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.get_job(request.user, pk)
    try:
        jobs.job_cancel(job=job, actor=request.user)
        messages.success(request, "Cancelled.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("optimization:job", pk=job.pk)


@login_required
@require_POST
def cluster_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply the cluster's recommendation: a manual job (the operator's click is the approval)."""
    cluster = cluster_for_user(request.user, pk)
    try:
        job = jobs.job_create(
            cluster=cluster,
            trigger="manual",
            actor=request.user,
            dry_run=request.POST.get("dry_run") == "1",
            plan_in_background=True,
        )
    except ApplicationError as exc:
        (messages.info if exc.code == "plan_pending" else messages.error)(request, exc.message)
        return redirect("clusters:detail", pk=cluster.pk)
    return redirect("optimization:job", pk=job.pk)


@login_required
@require_POST
def cluster_recommend(request: HttpRequest, pk: int) -> HttpResponse:
    """Recompute: a worker plans it where one runs tasks (a big cluster takes minutes), else planned here."""
    cluster = cluster_for_user(request.user, pk)
    task = evaluation.REFRESH_TASK
    if evaluation.queues() and (evaluation.schedule(task, cluster.pk) or evaluation.pending(task, cluster.pk)):
        messages.info(request, "Planning in the background: reload the page in a moment for the new recommendation.")
        return redirect("clusters:detail", pk=cluster.pk)
    try:
        recommendation_for(cluster=cluster, refresh=True)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("clusters:detail", pk=cluster.pk)


class WebhookForm(forms.Form):
    webhook_url = forms.CharField(
        label="Webhook URL (Slack-compatible)",
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.slack.com/services/…", "autocomplete": "off"}),
    )


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    """The organization's webhook: set, replaced or cleared; the saved URL is only ever shown masked."""
    if request.user.organization_id is None:
        raise Http404
    organization = request.user.organization
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            notifications.notification_settings_update(
                organization=organization,
                webhook_url="" if request.POST.get("clear") == "1" else form.cleaned_data["webhook_url"],
                actor=request.user,
            )
        except ValidationFailed as exc:
            for message in (exc.fields or {}).get("webhook_url", [exc.message]):
                form.add_error("webhook_url", message)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("optimization:notifications")
    row = notifications.notification_settings_get(organization=organization)
    context = {"nav": "optimization", "form": form, "masked": notifications.mask_webhook_url(row.webhook_url)}
    return render(request, "optimization/notifications.html", context)
