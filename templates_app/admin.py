"""Node templates in Django admin: created, changed, deleted and made default only through
``templates_app.services``, which keep exactly one default template per organization."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from spotopt.service_admin import (
    ServiceAdmin,
    ServiceModelForm,
    admin_link,
    changed_fields,
    delete_selected,
    related_link,
    run_service_action,
)

from . import services
from .models import NodeTemplate

FIELDS = services.EDITABLE_FIELDS


class NodeTemplateAdminForm(ServiceModelForm):
    class Meta:
        model = NodeTemplate
        fields = ("organization", *FIELDS, "is_default")


@admin.register(NodeTemplate)
class NodeTemplateAdmin(ServiceAdmin):
    form = NodeTemplateAdminForm
    list_display = (
        "name",
        related_link("organization"),
        "is_default",
        "architectures",
        "capacity_types",
        "gpu",
        "strategy",
        "max_hourly_budget",
        "updated_at",
    )
    list_filter = ("is_default", "gpu", "strategy", "spot_fallback")
    list_select_related = ("organization",)
    search_fields = ("name", "description", "organization__name")
    readonly_fields = ("organization_link", "created_by_link", "created_at", "updated_at")
    actions = [delete_selected, "make_default"]

    def get_fields(self, request: HttpRequest, obj: NodeTemplate | None = None):
        if obj is None:
            return ("organization", *FIELDS, "is_default")
        return ("organization_link", *FIELDS, "is_default", "created_by_link", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: NodeTemplate | None = None):
        return self.readonly_fields if obj else ()

    @admin.display(description="organization")
    def organization_link(self, obj: NodeTemplate) -> str:
        return admin_link(obj.organization)

    @admin.display(description="created by")
    def created_by_link(self, obj: NodeTemplate) -> str:
        return admin_link(obj.created_by)

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> NodeTemplate:
        data: dict[str, Any] = {f: form.cleaned_data[f] for f in FIELDS}
        data["is_default"] = form.cleaned_data["is_default"]
        return services.template_create(organization=form.cleaned_data["organization"], data=data, actor=request.user)

    def service_update(self, request: HttpRequest, obj: NodeTemplate, form: forms.ModelForm) -> NodeTemplate:
        data = changed_fields(form, (*FIELDS, "is_default"))
        return services.template_update(template=obj, data=data, actor=request.user)

    def service_delete(self, request: HttpRequest, obj: NodeTemplate) -> None:
        services.template_delete(template=obj, actor=request.user)

    @admin.action(description="Make the selected template its organization's default", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset) -> None:
        organizations = list(queryset.values_list("organization_id", flat=True))
        if len(organizations) != len(set(organizations)):
            self.message_user(request, "Select at most one template per organization to make default.", messages.ERROR)
            return
        run_service_action(
            self,
            request,
            queryset,
            lambda template: services.template_set_default(template=template, actor=request.user),
            done="{count} template(s) made default.",
        )
