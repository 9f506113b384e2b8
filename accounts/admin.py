from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import CloudAccount, Organization, User


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "created_at")
    search_fields = ("name",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "role", "organization", "is_active", "date_joined")
    list_filter = ("role", "is_active")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "role", "organization")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined", "password_changed_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "role", "organization", "password1", "password2")}),
    )
    readonly_fields = ("last_login", "date_joined", "password_changed_at")


@admin.register(CloudAccount)
class CloudAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "aws_account_id", "status", "last_validated_at")
    list_filter = ("status",)
    search_fields = ("name", "aws_account_id", "role_arn")
    readonly_fields = ("external_id", "has_access_keys", "last_error", "last_validated_at", "last_synced_at")
    # The ciphertext is useless to show and must not be edited by hand; keys are set through the console or API.
    exclude = ("encrypted_access_keys",)
