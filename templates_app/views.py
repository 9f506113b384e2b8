"""Console pages of node templates: list, create, edit (with the live htmx preview), default toggle, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from spotopt.errors import ApplicationError
from spotopt.tenancy import get_for_user

from . import selectors, services
from .filters import NodeTemplateFilter
from .forms import REGIONS, NodeTemplateForm
from .services import matching
from .validation import template_errors


def _region(request: HttpRequest) -> str:
    region = request.GET.get("region") or request.POST.get("region") or "us-east-1"
    return region if region in REGIONS else "us-east-1"


@login_required
@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    filterset = NodeTemplateFilter(request.GET or None, queryset=selectors.templates_for(request.user))
    return render(
        request,
        "templates_app/list.html",
        {"nav": "templates", "filter": filterset, "templates": list(filterset.qs)},
    )


def _preview_context(request: HttpRequest, form: NodeTemplateForm, base=None) -> dict:
    """The preview of what the form says now; problems are listed instead of results."""
    region = _region(request)
    context = {"region": region, "regions": REGIONS, "preview": None, "problems": []}
    if not form.is_bound:
        if base is None:
            return context
        draft = base
    elif not form.is_valid():
        context["problems"] = ["Fix the highlighted fields to see the matching instance types."]
        return context
    else:
        draft = services.template_draft(organization=request.user.organization, data=form.to_data(), base=base)
        draft.name = draft.name or "preview"
        errors = template_errors(draft)
        errors.pop("name", None)
        if errors:
            form.apply_errors(errors, "The template is not valid.")
            context["problems"] = [str(e) for errs in form.errors.values() for e in errs]
            return context
    context["preview"] = matching.preview(draft, region)
    return context


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    template = get_for_user(selectors.templates_for(request.user), request.user, pk=pk) if pk else None
    if template is None and request.user.organization_id is None:
        messages.error(request, "Templates belong to an organization.")
        return redirect("templates_app:list")
    initial = (
        NodeTemplateForm.initial_from(template)
        if template
        else {"architectures": ["x86_64"], "capacity_types": ["spot", "on-demand"]}
    )
    form = NodeTemplateForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            if template is None:
                template = services.template_create(
                    organization=request.user.organization, data=form.to_data(), actor=request.user
                )
                messages.success(request, f'Template "{template.name}" created.')
            else:
                services.template_update(template=template, data=form.to_data(), actor=request.user)
                messages.success(request, f'Template "{template.name}" saved.')
            return redirect("templates_app:list")
        except ApplicationError as exc:
            form.apply_errors(exc.fields, exc.message)
            status = exc.status_code
    elif request.method == "POST":
        status = 400
    context = {"nav": "templates", "form": form, "template": template}
    if form.is_bound:  # a rejected submission: the errors are on the form; the preview refreshes as it is edited
        context |= {"region": _region(request), "regions": REGIONS, "preview": None, "problems": []}
    else:
        context |= _preview_context(request, form, base=template)
    return render(request, "templates_app/form.html", context, status=status)


@login_required
@require_GET
def template_preview(request: HttpRequest) -> HttpResponse:
    """The htmx partial of the form's live preview: the form's current values, not the saved ones."""
    if request.user.organization_id is None:
        return HttpResponse(status=404)
    context = _preview_context(request, NodeTemplateForm(request.GET))
    return render(request, "templates_app/_preview.html", context)


@login_required
@require_POST
def template_set_default(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_for_user(selectors.templates_for(request.user), request.user, pk=pk)
    services.template_set_default(template=template, actor=request.user)
    messages.success(request, f'"{template.name}" is now the default template.')
    return redirect("templates_app:list")


@login_required
@require_POST
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_for_user(selectors.templates_for(request.user), request.user, pk=pk)
    try:
        services.template_delete(template=template, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f'Template "{template.name}" deleted.')
    return redirect("templates_app:list")
