"""Linked AWS accounts in Django admin, through ``accounts.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from spotopt.service_admin import (
    ServiceAdmin,
    ServiceModelForm,
    admin_link,
    changed_fields,
    delete_selected,
    related_link,
    run_service_action,
)

from .. import services
from ..models import CloudAccount


class CloudAccountAdminForm(ServiceModelForm):
    regions = forms.JSONField(
        required=False, help_text='A list of region codes, such as ["us-east-1", "eu-west-1"]. Empty: the default.'
    )
    access_key_id = forms.CharField(
        required=False, help_text="Fallback credentials. Leave both empty to keep the stored keys (never shown)."
    )
    secret_access_key = forms.CharField(required=False, strip=True, widget=forms.PasswordInput(render_value=False))
    remove_access_keys = forms.BooleanField(required=False, help_text="Remove the stored access keys.")

    class Meta:
        model = CloudAccount
        fields = ("organization", "name", "role_arn", "regions")


@admin.register(CloudAccount)
class CloudAccountAdmin(ServiceAdmin):
    form = CloudAccountAdminForm
    list_display = (
        "name",
        related_link("organization"),
        "aws_account_id",
        "status",
        "has_access_keys",
        "last_validated_at",
        "last_synced_at",
    )
    list_filter = ("status",)
    list_select_related = ("organization",)
    search_fields = ("name", "aws_account_id", "role_arn", "organization__name")
    readonly_fields = (
        "uuid",
        "external_id",
        "aws_account_id",
        "status",
        "has_access_keys",
        "last_error",
        "last_validated_at",
        "last_synced_at",
        "created_at",
        "updated_at",
    )
    actions = [delete_selected, "validate_selected", "disable_selected"]

    # Kept out of Django's error reports, like the user admin's passwords.
    @method_decorator(sensitive_post_parameters("secret_access_key"))
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any):
        return super().changeform_view(request, *args, **kwargs)

    def get_fields(self, request: HttpRequest, obj: CloudAccount | None = None):
        editable = ("name", "role_arn", "regions", "access_key_id", "secret_access_key")
        if obj is None:
            return ("organization", *editable)
        return ("organization_link", *editable, "remove_access_keys", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: CloudAccount | None = None):
        return (*self.readonly_fields, "organization_link") if obj else ()

    @admin.display(description="organization")
    def organization_link(self, obj: CloudAccount) -> str:
        return admin_link(obj.organization)

    @admin.display(boolean=True, description="access keys")
    def has_access_keys(self, obj: CloudAccount) -> bool:
        return obj.has_access_keys

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> CloudAccount:
        data = form.cleaned_data
        return services.cloud_account_create(
            organization=data["organization"],
            name=data["name"],
            role_arn=data["role_arn"],
            regions=data["regions"] or [],
            access_key_id=data["access_key_id"],
            secret_access_key=data["secret_access_key"],
            actor=request.user,
        )

    def service_update(self, request: HttpRequest, obj: CloudAccount, form: forms.ModelForm) -> CloudAccount:
        changes = changed_fields(form, ("name", "role_arn"))
        if "regions" in form.changed_data:
            changes["regions"] = form.cleaned_data["regions"] or []
        data = form.cleaned_data
        if data["remove_access_keys"]:
            changes["access_key_id"] = changes["secret_access_key"] = ""
        elif data["access_key_id"] or data["secret_access_key"]:
            changes["access_key_id"] = data["access_key_id"]
            changes["secret_access_key"] = data["secret_access_key"]
        return services.cloud_account_update(account=obj, **changes, actor=request.user)

    def service_delete(self, request: HttpRequest, obj: CloudAccount) -> None:
        services.cloud_account_delete(account=obj, actor=request.user)

    @admin.action(description="Validate selected accounts with AWS", permissions=["change"])
    def validate_selected(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset,
            lambda account: services.cloud_account_validate(account=account, actor=request.user),
            done="Validated {count} account(s).",
        )

    @admin.action(description="Disable selected accounts (stop discovery and sync)", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset.exclude(status=CloudAccount.Status.DISABLED),
            lambda account: services.cloud_account_disable(account=account, actor=request.user),
            done="Disabled {count} account(s).",
        )
