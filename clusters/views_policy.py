"""Console page of a cluster's policy (``/clusters/<id>/policy/``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from spotopt.errors import ApplicationError
from templates_app.models import NodeTemplate

from . import policy_services
from .forms_policy import ClusterPolicyForm
from .selectors import cluster_for_user


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, pk)
    policy = policy_services.policy_for(cluster)
    templates = list(NodeTemplate.objects.filter(organization_id=cluster.organization_id).order_by("name"))
    form = ClusterPolicyForm(request.POST or None, initial=ClusterPolicyForm.initial_from(policy), templates=templates)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                policy = policy_services.policy_update(
                    cluster=cluster, data=form.cleaned_data, actor=request.user, replace=True
                )
            except ApplicationError as exc:
                form.apply_errors(exc.fields, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"Policy of {cluster.name} saved.")
                return redirect("clusters:policy", pk=cluster.pk)
        else:
            status = 400
    node_count = cluster.instances.running().count()
    allowance = policy_services.disruption_allowance(policy, node_count=node_count, at=timezone.now())
    context = {
        "nav": "clusters",
        "cluster": cluster,
        "policy": policy,
        "form": form,
        "effective_template": policy_services.effective_template(policy),
        "node_count": node_count,
        "allowance": allowance,
    }
    return render(request, "clusters/policy.html", context, status=status)
