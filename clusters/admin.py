"""Clusters, their instances and policies in Django admin. Writes go through ``clusters.services`` and
``clusters.policy_services``; instances belong to the inventory sync and are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from spotopt.service_admin import (
    ReadOnlyAdmin,
    ServiceAdmin,
    ServiceModelForm,
    admin_link,
    changed_fields,
    related_link,
    run_service_action,
)
from templates_app.models import NodeTemplate

from . import policy_services, services
from .models import Cluster, ClusterPolicy, Instance

CLUSTER_EDITABLE = ("name", "region", "kind", "time_zone")


class ClusterAdminForm(ServiceModelForm):
    class Meta:
        model = Cluster
        fields = ("organization", "cloud_account", *CLUSTER_EDITABLE)


@admin.register(Cluster)
class ClusterAdmin(ServiceAdmin):
    form = ClusterAdminForm
    list_display = (
        "name",
        related_link("organization"),
        related_link("cloud_account", "cloud account"),
        "region",
        "kind",
        "source",
        "status",
        "missing_since",
        "last_seen_at",
        "instances_link",
        "policy_link",
    )
    list_filter = ("kind", "source", "region")
    # ``policy`` is the reverse one-to-one: joined, so that the policy column costs no query per row.
    list_select_related = ("organization", "cloud_account", "policy")
    search_fields = ("name", "arn", "organization__name", "cloud_account__name")
    # What discovery, inventory and the agent keep up to date: shown, never edited here.
    details = (
        "source",
        "arn",
        "kubernetes_version",
        "status",
        "missing_since",
        "last_seen_at",
        "inventory_synced_at",
        "node_groups",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("organization_link", "cloud_account_link", *details)

    def get_fields(self, request: HttpRequest, obj: Cluster | None = None):
        if obj is None:
            return ("organization", "cloud_account", "name", "region", "kind", "time_zone")
        return ("organization_link", "cloud_account_link", *CLUSTER_EDITABLE, *self.details)

    def get_readonly_fields(self, request: HttpRequest, obj: Cluster | None = None):
        if obj is None:
            return ()
        if obj.source == Cluster.Source.DISCOVERED:
            return (*self.readonly_fields, *services.DISCOVERY_OWNED)
        return self.readonly_fields

    @admin.display(description="organization")
    def organization_link(self, obj: Cluster) -> str:
        return admin_link(obj.organization)

    @admin.display(description="cloud account")
    def cloud_account_link(self, obj: Cluster) -> str:
        return admin_link(obj.cloud_account)

    @admin.display(description="instances")
    def instances_link(self, obj: Cluster) -> str:
        url = reverse("admin:clusters_instance_changelist") + f"?cluster__id__exact={obj.pk}"
        return format_html('<a href="{}">instances</a>', url)

    @admin.display(description="policy")
    def policy_link(self, obj: Cluster) -> str:
        try:
            return admin_link(obj.policy, "policy")
        except ClusterPolicy.DoesNotExist:
            return "defaults"

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> Cluster:
        data = form.cleaned_data
        cluster = services.cluster_register(
            organization=data["organization"],
            name=data["name"],
            region=data["region"],
            kind=data["kind"],
            cloud_account=data["cloud_account"],
            actor=request.user,
        )
        if data["time_zone"] != cluster.time_zone:
            cluster = services.cluster_update(cluster=cluster, time_zone=data["time_zone"], actor=request.user)
        return cluster

    def service_update(self, request: HttpRequest, obj: Cluster, form: forms.ModelForm) -> Cluster:
        return services.cluster_update(cluster=obj, **changed_fields(form, CLUSTER_EDITABLE), actor=request.user)


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    """Kept in step with EC2 by the inventory sync."""

    list_display = (
        "instance_id",
        related_link("cluster"),
        "instance_type",
        "zone",
        "lifecycle",
        "state",
        "hourly_price",
        "launch_time",
        "terminated_at",
    )
    list_filter = ("lifecycle", "state")
    list_select_related = ("cluster",)
    search_fields = ("instance_id", "private_dns", "instance_type", "cluster__name")
    date_hierarchy = "launch_time"


class ClusterPolicyAdminForm(ServiceModelForm):
    class Meta:
        model = ClusterPolicy
        fields = policy_services.POLICY_FIELDS


@admin.register(ClusterPolicy)
class ClusterPolicyAdmin(ServiceAdmin):
    """A cluster's policy is created with safe defaults by the platform when first needed; the admin changes it."""

    form = ClusterPolicyAdminForm
    list_display = (
        related_link("cluster"),
        "organization_link",
        "optimization_enabled",
        "mode",
        related_link("node_template", "node template"),
        "on_demand_base",
        "max_pool_share",
        "consolidation_policy",
        "on_rebalance",
        "updated_at",
    )
    list_filter = ("optimization_enabled", "mode", "consolidation_policy", "on_rebalance")
    list_select_related = ("cluster__organization", "node_template")
    search_fields = ("cluster__name", "cluster__organization__name")
    readonly_fields = ("cluster_link", "created_at", "updated_at")
    fields = ("cluster_link", *policy_services.POLICY_FIELDS, "created_at", "updated_at")
    actions = ["reset_to_defaults"]

    def get_form(self, request: HttpRequest, obj: ClusterPolicy | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "node_template" in form.base_fields:
            form.base_fields["node_template"].queryset = NodeTemplate.objects.filter(
                organization_id=obj.cluster.organization_id
            )
        return form

    @admin.display(description="cluster")
    def cluster_link(self, obj: ClusterPolicy) -> str:
        return admin_link(obj.cluster)

    @admin.display(description="organization", ordering="cluster__organization")
    def organization_link(self, obj: ClusterPolicy) -> str:
        return admin_link(obj.cluster.organization)

    def service_update(self, request: HttpRequest, obj: ClusterPolicy, form: forms.ModelForm) -> ClusterPolicy:
        data = changed_fields(form, policy_services.POLICY_FIELDS)
        return policy_services.policy_update(cluster=obj.cluster, data=data, actor=request.user)

    @admin.action(description="Reset selected policies to the defaults", permissions=["change"])
    def reset_to_defaults(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset.select_related("cluster"),
            lambda policy: policy_services.policy_update(
                cluster=policy.cluster, data={}, replace=True, actor=request.user
            ),
            done="Reset {count} polic(ies) to the defaults.",
        )
