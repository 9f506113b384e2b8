"""Users and their passwords in Django admin, through ``accounts.services``."""

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

from spotopt.context import current_request
from spotopt.errors import ApplicationError
from spotopt.service_admin import (
    ServiceAdmin,
    ServiceModelForm,
    apply_service_errors,
    changed_fields,
    related_link,
    run_service_action,
)

from .. import services
from ..models import User

# Access is by role (CLIENT / SUPER_ADMIN), not by Django groups: they are not offered, so nothing is granted
# behind the services' back.
admin.site.unregister(Group)


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
        return services.user_update(user=obj, **changed_fields(form, USER_FIELDS), actor=request.user)

    @admin.action(description="Deactivate selected users (and revoke their tokens)", permissions=["change"])
    def deactivate_selected(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset.filter(is_active=True),
            lambda user: services.user_update(user=user, is_active=False, actor=request.user),
            done="Deactivated {count} user(s).",
        )
