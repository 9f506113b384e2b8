"""Console pages for linked AWS accounts: list, link wizard (trust policy, permission policy, CloudFormation),
validate, sync now, disable, unlink. Same services as the API."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from spotopt.errors import ApplicationError

from . import aws_policies, selectors, services
from .api import CloudAccountFilter
from .forms import CloudAccountForm
from .views import _apply_error


def _require_org(request: HttpRequest) -> bool:
    return request.user.organization_id is not None


@login_required
@require_http_methods(["GET", "POST"])
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = CloudAccountFilter(request.GET, queryset=selectors.cloud_accounts_for_user(request.user)).qs
    form = CloudAccountForm(request.POST or None)
    if request.method == "POST" and _require_org(request) and form.is_valid():
        try:
            account = services.cloud_account_create(
                organization=request.user.organization, actor=request.user, **form.cleaned_data
            )
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, f"{account.name} created. Create the role below, then validate.")
            return redirect("cloud_accounts:detail", pk=account.pk)
    return render(
        request,
        "accounts/cloud_account_list.html",
        {"nav": "accounts", "accounts": accounts, "form": form, "can_create": _require_org(request)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = selectors.get_cloud_account(request.user, pk)
    initial = {"name": account.name, "role_arn": account.role_arn, "regions": ", ".join(account.regions)}
    form = CloudAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = dict(form.cleaned_data)
        if not changes["access_key_id"] and not changes["secret_access_key"]:
            changes.pop("access_key_id")
            changes.pop("secret_access_key")
        try:
            services.cloud_account_update(account=account, actor=request.user, **changes)
        except ApplicationError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, "Saved. Validate the account to use the new settings.")
            return redirect("cloud_accounts:detail", pk=account.pk)
    context = {
        "nav": "accounts",
        "account": account,
        "form": form,
        "trust_policy": aws_policies.as_json(aws_policies.trust_policy(account.external_id)),
        "permission_policy": aws_policies.as_json(aws_policies.permission_policy()),
        "platform_principal": aws_policies.platform_principal(),
        "clusters": account.clusters.order_by("region", "name"),
    }
    return render(request, "accounts/cloud_account_detail.html", context)


def _act(request: HttpRequest, pk: int, action) -> HttpResponse:
    account = selectors.get_cloud_account(request.user, pk)
    try:
        message = action(account)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, message)
    return redirect("cloud_accounts:detail", pk=account.pk)


@login_required
@require_POST
def account_validate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda a: (
            f"Linked: AWS account {services.cloud_account_validate(account=a, actor=request.user).aws_account_id}."
        ),
    )


@login_required
@require_POST
def account_sync(request: HttpRequest, pk: int) -> HttpResponse:
    def sync(account) -> str:
        services.cloud_account_request_sync(account=account, actor=request.user)
        return "Sync queued: discovery and inventory run in the background."

    return _act(request, pk, sync)


@login_required
@require_POST
def account_disable(request: HttpRequest, pk: int) -> HttpResponse:
    def disable(account) -> str:
        services.cloud_account_disable(account=account, actor=request.user)
        return "Account disabled: discovery and sync stop until it is validated again."

    return _act(request, pk, disable)


@login_required
@require_POST
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = selectors.get_cloud_account(request.user, pk)
    services.cloud_account_delete(account=account, actor=request.user)
    messages.success(request, f"{account.name} unlinked. Its clusters keep their history.")
    return redirect("cloud_accounts:list")


@login_required
def account_cloudformation(request: HttpRequest, pk: int) -> HttpResponse:
    account = selectors.get_cloud_account(request.user, pk)
    response = HttpResponse(aws_policies.cloudformation_template(account.external_id), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="spot-optimizer-role-{account.pk}.json"'
    return response


@login_required
def account_interruption_template(request: HttpRequest, pk: int) -> HttpResponse:
    selectors.get_cloud_account(request.user, pk)
    response = HttpResponse(aws_policies.interruption_queue_template(), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="spot-optimizer-interruptions.json"'
    return response
