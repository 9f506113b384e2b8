"""Organizations in Django admin, through ``accounts.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from spotopt.service_admin import ServiceAdmin, changed_fields, related_link

from .. import services
from ..models import Organization, User


@admin.register(Organization)
class OrganizationAdmin(ServiceAdmin):
    list_display = ("name", "id", related_link("owner"), "users_link", "clusters_link", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__email")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at",)

    def get_fields(self, request: HttpRequest, obj: Organization | None = None):
        # A new organization has no users yet, so no owner to choose.
        return ("name", "owner", "created_at") if obj else ("name",)

    def get_form(self, request: HttpRequest, obj: Organization | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "owner" in form.base_fields:
            form.base_fields["owner"].queryset = User.objects.filter(organization=obj)
        return form

    @admin.display(description="users")
    def users_link(self, obj: Organization) -> str:
        url = reverse("admin:accounts_user_changelist") + f"?organization__id__exact={obj.pk}"
        return format_html('<a href="{}">users</a>', url)

    @admin.display(description="clusters")
    def clusters_link(self, obj: Organization) -> str:
        url = reverse("admin:clusters_cluster_changelist") + f"?organization__id__exact={obj.pk}"
        return format_html('<a href="{}">clusters</a>', url)

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> Organization:
        return services.organization_create(name=form.cleaned_data["name"], actor=request.user)

    def service_update(self, request: HttpRequest, obj: Organization, form: forms.ModelForm) -> Organization:
        return services.organization_update(
            organization=obj, **changed_fields(form, ("name", "owner")), actor=request.user
        )
