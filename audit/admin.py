"""Django admin shows audit entries read-only: no add, change or delete, not even for a superuser."""

from __future__ import annotations

from django.contrib import admin

from spotopt.service_admin import related_link

from .models import ENTRY_FIELDS, AuditChainHead, AuditCheckpoint, AuditLog


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}  # no "delete selected"


@admin.register(AuditLog)
class AuditLogAdmin(_ReadOnlyAdmin):
    list_display = (
        "created_at",
        related_link("organization"),
        "actor_type",
        "actor_label",
        "action",
        "resource_type",
        "resource_id",
        "ip",
    )
    list_filter = ("actor_type",)
    list_select_related = ("organization",)
    search_fields = ("action", "actor_label", "resource_id", "request_id")
    date_hierarchy = "created_at"
    # The change list must not count a million rows on every page.
    show_full_result_count = False
    fields = ENTRY_FIELDS
    readonly_fields = fields


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(_ReadOnlyAdmin):
    list_display = ("chain", "seq", "last_hash")
    search_fields = ("chain",)
    readonly_fields = ("chain", "seq", "last_hash")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnlyAdmin):
    """Signed by ``manage.py audit_checkpoint`` (and hourly by beat); shown, never written here."""

    list_display = ("created_at", "chain", "seq", "hash")
    search_fields = ("chain", "hash")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "chain", "seq", "hash", "signature")
