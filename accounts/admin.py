"""Organizations, users and linked AWS accounts in Django admin. Every write goes through ``accounts.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, PasswordChangeForm, ReadOnlyPasswordHashField
from django.contrib.auth.models import Group
from django.contrib.auth.views import PasswordChangeView
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from rest_framework_simplejwt.token_blacklist import admin as token_blacklist_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from spotopt.context import current_request
from spotopt.errors import ApplicationError
from spotopt.service_admin import (
    ServiceAdmin,
    ServiceModelForm,
    admin_link,
    apply_service_errors,
    delete_selected,
    related_link,
    run_service_action,
)

from . import services
from .models import CloudAccount, Organization, User

# Access is by role (CLIENT / SUPER_ADMIN), not by Django groups: they are not offered, so nothing is granted
# behind the services' back.
admin.site.unregister(Group)


# Revoked refresh tokens are shown, never edited: deleting a row would silently make a revoked token valid again.
# Tokens are revoked by the services (logout, password change, deactivation).
admin.site.unregister(BlacklistedToken)


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(token_blacklist_admin.BlacklistedTokenAdmin):
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _changed(form: forms.ModelForm, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields among ``names`` that the admin changed, as the service's keyword arguments."""
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


# --- Organizations ---------------------------------------------------------------------------------------------------


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
        return services.organization_update(organization=obj, **_changed(form, ("name", "owner")), actor=request.user)


# --- Users -----------------------------------------------------------------------------------------------------------

USER_FIELDS = ("email", "full_name", "role", "organization", "is_active")


class UserChangeAdminForm(ServiceModelForm):
    password = ReadOnlyPasswordHashField(
        label="Password", help_text="Raw passwords are not stored, so there is no way to see the user's password."
    )

    class Meta:
        model = User
        fields = (*USER_FIELDS, "password")


class UserAddAdminForm(ServiceModelForm):
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password confirmation",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="The same password again.",
    )
    service_error_aliases = {"password": "password1"}

    class Meta:
        model = User
        fields = ("email", "full_name", "role", "organization")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class UserSetPasswordForm(AdminPasswordChangeForm):
    """Set a user's password through ``services.set_password``: audited with the admin as actor, and every refresh
    token of the user revoked. A password is always required (no "disable password login" here)."""

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.fields.pop("usable_password", None)
        self.fields["password1"].required = self.fields["password2"].required = True

    def save(self, commit: bool = True) -> User:
        request = current_request()
        actor = getattr(request, "user", None)
        services.set_password(user=self.user, password=self.cleaned_data["password1"], actor=actor)
        return self.user


class OwnPasswordChangeForm(PasswordChangeForm):
    """The admin's own "Change password" page, through ``services.user_change_password``: the current password is
    checked by the service, the change audited and every refresh token of the admin revoked."""

    def clean_old_password(self) -> str:
        return self.cleaned_data["old_password"]  # checked by the service, with the other rules, in clean()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors:
            try:
                services.user_change_password(
                    user=self.user, old_password=cleaned["old_password"], new_password=cleaned["new_password1"]
                )
            except ApplicationError as exc:
                apply_service_errors(self, exc, {"new_password": "new_password1"})
        return cleaned

    def save(self, commit: bool = True) -> User:
        return self.user  # saved by the service in clean()


def _own_password_change(request: HttpRequest, extra_context: dict | None = None):
    """Django admin's "Change password" view with :class:`OwnPasswordChangeForm` (the site offers no form hook)."""
    defaults: dict[str, Any] = {
        "form_class": OwnPasswordChangeForm,
        "success_url": reverse("admin:password_change_done", current_app=admin.site.name),
        "extra_context": {**admin.site.each_context(request), **(extra_context or {})},
    }
    if admin.site.password_change_template is not None:
        defaults["template_name"] = admin.site.password_change_template
    request.current_app = admin.site.name
    return PasswordChangeView.as_view(**defaults)(request)


admin.site.password_change = _own_password_change


@admin.register(User)
class UserAdmin(ServiceAdmin, BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "role", related_link("organization"), "is_active", "last_login")
    list_filter = ("role", "is_active")
    list_select_related = ("organization",)
    search_fields = ("email", "full_name", "organization__name")
    form = UserChangeAdminForm
    add_form = UserAddAdminForm
    change_password_form = UserSetPasswordForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "role", "organization")}),
        (
            "Access",
            {
                "fields": ("is_active", "is_staff", "is_superuser"),
                "description": "Staff and superuser follow the role: a super admin has both, a client neither.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "password_changed_at")}),
    )
    add_fieldsets = (
        (
            None,
            {"classes": ("wide",), "fields": ("email", "full_name", "role", "organization", "password1", "password2")},
        ),
    )
    readonly_fields = ("is_staff", "is_superuser", "last_login", "date_joined", "password_changed_at")
    filter_horizontal = ()
    actions = ["deactivate_selected"]

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> User:
        data = form.cleaned_data
        return services.user_create(
            email=data["email"],
            password=data["password1"],
            role=data["role"],
            organization=data["organization"],
            full_name=data["full_name"],
            actor=request.user,
        )

    def service_update(self, request: HttpRequest, obj: User, form: forms.ModelForm) -> User:
        return services.user_update(user=obj, **_changed(form, USER_FIELDS), actor=request.user)

    @admin.action(description="Deactivate selected users (and revoke their tokens)", permissions=["change"])
    def deactivate_selected(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset.filter(is_active=True),
            lambda user: services.user_update(user=user, is_active=False, actor=request.user),
            done="Deactivated {count} user(s).",
        )


# --- Cloud accounts --------------------------------------------------------------------------------------------------


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
        changes = _changed(form, ("name", "role_arn"))
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
