"""Login limits and revoked tokens in Django admin: kept by the authentication services, shown read-only. Deleting a
row would make a revoked token valid again or forget failed logins; adding one would bypass the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist import admin as token_blacklist_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from spotopt.service_admin import ReadOnlyAdmin, related_link

from ..models import LoginFailureCounter, RevokedAccessToken, RevokedTokenFamily

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


@admin.register(LoginFailureCounter)
class LoginFailureCounterAdmin(ReadOnlyAdmin):
    list_display = ("key", "count", "window_started_at", "window_ends_at")
    search_fields = ("key",)
    date_hierarchy = "window_started_at"


@admin.register(RevokedAccessToken)
class RevokedAccessTokenAdmin(ReadOnlyAdmin):
    list_display = ("jti", related_link("user"), "revoked_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("jti", "user__email")
    date_hierarchy = "revoked_at"


@admin.register(RevokedTokenFamily)
class RevokedTokenFamilyAdmin(ReadOnlyAdmin):
    list_display = ("family", related_link("user"), "reason", "revoked_at", "expires_at")
    list_filter = ("reason",)
    list_select_related = ("user",)
    search_fields = ("family", "user__email")
    date_hierarchy = "revoked_at"
