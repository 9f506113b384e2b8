"""The agent channel in Django admin. API keys and agent actions are created only by their services: keys from the
Cluster admin's "Create an agent API key" action (the raw key is shown once), actions by queueing them on nodes or
again; nothing here has an add form. Snapshots, statuses and events belong to the agent and are read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from clusters.admin import ClusterAdmin as BaseClusterAdmin
from clusters.models import Cluster
from spotopt.service_admin import ReadOnlyAdmin, related_link, run_service_action

from . import services
from .models import AgentAction, AgentEvent, AgentStatus, ApiKey, KubeNode, KubePod


class ApiKeyInline(admin.TabularInline):
    """A cluster's keys as a read-only list (revoking is an action of the key list)."""

    model = ApiKey
    fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("created_by")


admin.site.unregister(Cluster)


@admin.register(Cluster)
class ClusterAdmin(BaseClusterAdmin):
    """The clusters admin with what the agent channel adds: its API keys, and creating one."""

    inlines = [ApiKeyInline]
    actions = ["create_api_key"]

    def get_inlines(self, request: HttpRequest, obj: Cluster | None):
        return self.inlines if obj is not None else []

    @admin.action(description="Create an agent API key for the selected clusters", permissions=["change"])
    def create_api_key(self, request: HttpRequest, queryset) -> None:
        name = f"created in admin {timezone.now():%Y-%m-%d %H:%M}"
        created = []
        for cluster in queryset.select_related("organization"):
            key, raw = services.api_key_create(cluster=cluster, name=name, actor=request.user)
            created.append(key)
            # Shown once: only the prefix and the hash are kept.
            self.message_user(
                request,
                f"API key for cluster {cluster.name}: {raw} — copy it now, it will not be shown again.",
                messages.WARNING,
            )
        self.message_user(request, f"Created {len(created)} API key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "prefix",
        related_link("cluster"),
        related_link("created_by", "created by"),
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("cluster", "created_by")
    search_fields = ("prefix", "name", "cluster__name")
    fields = ("name", "prefix", "cluster", "created_by", "created_at", "last_used_at", "revoked_at")
    # The hash is not shown: it is of no use to a person and is half of what an attacker would need.
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset.filter(revoked_at__isnull=True).select_related("cluster"),
            lambda key: services.api_key_revoke(api_key=key, actor=request.user),
            done="Revoked {count} key(s).",
        )


@admin.register(AgentStatus)
class AgentStatusAdmin(ReadOnlyAdmin):
    list_display = (
        related_link("cluster"),
        "connection",
        "last_seen_at",
        "last_snapshot_at",
        "snapshot_generation",
        "agent_version",
        "kubernetes_version",
        "node_count",
        "pod_count",
    )
    list_select_related = ("cluster",)
    search_fields = ("cluster__name", "agent_version")

    @admin.display(description="connection")
    def connection(self, obj: AgentStatus) -> str:
        return obj.connection()


def _queue_on_nodes(modeladmin, request: HttpRequest, queryset, action_type: str) -> None:
    run_service_action(
        modeladmin,
        request,
        queryset.select_related("cluster"),
        lambda node: services.enqueue_action(
            cluster=node.cluster,
            type=action_type,
            target=node.name,
            reason=f"{action_type} requested in admin",
            actor=request.user,
        ),
        done=f"Queued {action_type} of {{count}} node(s) for the agent.",
    )


@admin.register(KubeNode)
class KubeNodeAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        related_link("cluster"),
        related_link("instance"),
        "instance_type",
        "zone",
        "capacity_type",
        "ready",
        "unschedulable",
        "cpu_m",
        "memory_mib",
        "updated_at",
    )
    list_filter = ("capacity_type", "ready", "unschedulable")
    list_select_related = ("cluster", "instance")
    search_fields = ("name", "provider_id", "ec2_instance_id", "instance_type", "cluster__name")
    actions = ["cordon_selected", "uncordon_selected"]

    # Queueing an action changes the node through the agent, not this row: it needs the right to change actions.
    def has_queue_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.action(description="Cordon selected nodes (through the agent)", permissions=["queue"])
    def cordon_selected(self, request: HttpRequest, queryset) -> None:
        _queue_on_nodes(self, request, queryset, AgentAction.Type.CORDON)

    @admin.action(description="Uncordon selected nodes (through the agent)", permissions=["queue"])
    def uncordon_selected(self, request: HttpRequest, queryset) -> None:
        _queue_on_nodes(self, request, queryset, AgentAction.Type.UNCORDON)


@admin.register(KubePod)
class KubePodAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "namespace",
        related_link("cluster"),
        "node_name",
        "phase",
        "owner_kind",
        "owner_name",
        "cpu_m",
        "memory_mib",
        "daemonset",
        "do_not_disrupt",
        "priority",
    )
    list_filter = ("phase", "daemonset", "do_not_disrupt", "owner_kind")
    list_select_related = ("cluster",)
    search_fields = ("name", "namespace", "node_name", "owner_name", "cluster__name")


@admin.register(AgentAction)
class AgentActionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        related_link("cluster"),
        "type",
        "target",
        "state",
        "attempts",
        "max_attempts",
        "deadline",
        "reason",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "type")
    list_select_related = ("cluster",)
    search_fields = ("target", "reason", "cluster__name")
    date_hierarchy = "created_at"
    actions = ["queue_again"]

    def has_queue_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.action(description="Queue selected failed or expired actions again", permissions=["queue"])
    def queue_again(self, request: HttpRequest, queryset) -> None:
        finished = queryset.filter(state__in=(AgentAction.State.FAILED, AgentAction.State.EXPIRED))
        run_service_action(
            self,
            request,
            finished.select_related("cluster"),
            lambda action: services.enqueue_action(
                cluster=action.cluster,
                type=action.type,
                target=action.target,
                params=action.params,
                max_attempts=action.max_attempts,
                reason=f"queued again in admin (action {action.pk})"[:255],
                actor=request.user,
            ),
            done="Queued {count} action(s) again.",
        )


@admin.register(AgentEvent)
class AgentEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        related_link("cluster"),
        "type",
        "node_name",
        "instance_id",
        "occurred_at",
        "received_at",
        related_link("api_key", "API key"),
    )
    list_filter = ("type",)
    list_select_related = ("cluster", "api_key")
    search_fields = ("node_name", "instance_id", "cluster__name")
    date_hierarchy = "occurred_at"
