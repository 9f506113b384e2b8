"""Savings in Django admin: the cost history and the ledger are the processes' record and read-only; an
organization's on-demand discount changes only through ``savings.services``, which validates and audits."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from spotopt.service_admin import ReadOnlyAdmin, ServiceAdmin, ServiceModelForm, changed_fields, related_link

from . import services
from .models import CostRecord, LedgerEntry, SavingsSettings

FIELDS = tuple(SavingsSettings.EDITABLE_FIELDS)


@admin.register(CostRecord)
class CostRecordAdmin(ReadOnlyAdmin):
    list_display = (
        related_link("cluster"),
        "step",
        "t",
        "cost",
        "on_demand_equivalent",
        "spot_node_hours",
        "on_demand_node_hours",
        "hibernated_hours",
    )
    list_filter = ("step",)
    list_select_related = ("cluster",)
    search_fields = ("cluster__name", "organization__name")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        related_link("cluster"),
        "source",
        "action_type",
        "action_id",
        "projected_hourly",
        "spot_hourly",
        "counterfactual_hourly",
        "started_at",
        "ended_at",
    )
    list_filter = ("source",)
    list_select_related = ("cluster",)
    search_fields = ("cluster__name", "organization__name", "action_id")


class SavingsSettingsAdminForm(ServiceModelForm):
    class Meta:
        model = SavingsSettings
        fields = ("organization", *FIELDS)


@admin.register(SavingsSettings)
class SavingsSettingsAdmin(ServiceAdmin):
    form = SavingsSettingsAdminForm
    list_display = ("organization", "on_demand_discount_pct", "updated_at")
    list_select_related = ("organization",)
    search_fields = ("organization__name",)

    def get_fields(self, request: HttpRequest, obj: SavingsSettings | None = None):
        return ("organization", *FIELDS) if obj is None else FIELDS

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> SavingsSettings:
        values = {f: form.cleaned_data[f] for f in FIELDS}
        return services.savings_settings_update(
            organization=form.cleaned_data["organization"], values=values, actor=request.user
        )

    def service_update(self, request: HttpRequest, obj: SavingsSettings, form: forms.ModelForm) -> SavingsSettings:
        values = changed_fields(form, FIELDS) or {f: getattr(obj, f) for f in FIELDS}
        return services.savings_settings_update(organization=obj.organization, values=values, actor=request.user)
