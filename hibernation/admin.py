"""Hibernation schedules in Django admin: created, changed, deleted and their overrides cleared only through
``hibernation.services``, which validate the timetable and audit every change. Sleep periods are the engine's record
and are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from spotopt.service_admin import (
    ReadOnlyAdmin,
    ServiceAdmin,
    ServiceModelForm,
    changed_fields,
    delete_selected,
    related_link,
    run_service_action,
)

from .models import HibernationPeriod, HibernationSchedule
from .services import schedules as services

FIELDS = tuple(HibernationSchedule.EDITABLE_FIELDS)


class HibernationScheduleAdminForm(ServiceModelForm):
    class Meta:
        model = HibernationSchedule
        fields = ("cluster", *FIELDS)


@admin.register(HibernationSchedule)
class HibernationScheduleAdmin(ServiceAdmin):
    form = HibernationScheduleAdminForm
    list_display = ("name", related_link("cluster"), "time_zone", "enabled", "override_state", "override_until")
    list_filter = ("enabled", "override_state")
    list_select_related = ("cluster",)
    search_fields = ("name", "cluster__name", "cluster__organization__name")
    readonly_fields = ("override_state", "override_until", "override_reason", "override_by", "progress", "updated_at")
    actions = [delete_selected, "clear_override"]

    def get_fields(self, request: HttpRequest, obj: HibernationSchedule | None = None):
        if obj is None:
            return ("cluster", *FIELDS)
        return (*FIELDS, *self.readonly_fields)

    def service_create(self, request: HttpRequest, form: forms.ModelForm) -> HibernationSchedule:
        values: dict[str, Any] = {f: form.cleaned_data[f] for f in FIELDS if f in form.cleaned_data}
        return services.schedule_create(cluster=form.cleaned_data["cluster"], values=values, actor=request.user)

    def service_update(self, request: HttpRequest, obj: HibernationSchedule, form: forms.ModelForm):
        return services.schedule_update(schedule=obj, values=changed_fields(form, FIELDS), actor=request.user)

    def service_delete(self, request: HttpRequest, obj: HibernationSchedule) -> None:
        services.schedule_delete(schedule=obj, actor=request.user)

    @admin.action(description="Clear the selected schedules' overrides", permissions=["change"])
    def clear_override(self, request: HttpRequest, queryset) -> None:
        run_service_action(
            self,
            request,
            queryset,
            lambda schedule: services.schedule_clear_override(schedule=schedule, actor=request.user),
            done="{count} override(s) cleared.",
        )


@admin.register(HibernationPeriod)
class HibernationPeriodAdmin(ReadOnlyAdmin):
    list_display = (
        related_link("cluster"),
        related_link("schedule"),
        "started_at",
        "asleep_at",
        "wake_at",
        "ready_at",
        "node_count",
        "saving",
    )
    list_select_related = ("cluster", "schedule")
    date_hierarchy = "started_at"
    search_fields = ("cluster__name", "schedule__name")
