from django.contrib import admin

from .models import AgentAction, AgentEvent, AgentStatus, ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "cluster", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("cluster",)
    search_fields = ("prefix", "name", "cluster__name")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")


@admin.register(AgentStatus)
class AgentStatusAdmin(admin.ModelAdmin):
    list_display = ("cluster", "last_seen_at", "agent_version", "kubernetes_version", "node_count", "pod_count")
    list_select_related = ("cluster",)


@admin.register(AgentAction)
class AgentActionAdmin(admin.ModelAdmin):
    list_display = ("id", "cluster", "type", "target", "state", "attempts", "max_attempts", "deadline", "created_at")
    list_filter = ("state", "type")
    list_select_related = ("cluster",)
    search_fields = ("target", "cluster__name")


@admin.register(AgentEvent)
class AgentEventAdmin(admin.ModelAdmin):
    list_display = ("id", "cluster", "type", "node_name", "instance_id", "occurred_at")
    list_filter = ("type",)
    list_select_related = ("cluster",)
