"""Interruption events and queue states in Django admin: written by the consumer and the agent intake only, so
read-only."""

from __future__ import annotations

from django.contrib import admin

from spotopt.service_admin import ReadOnlyAdmin, related_link

from .models import Interruption, QueueStatus


@admin.register(Interruption)
class InterruptionAdmin(ReadOnlyAdmin):
    list_display = (
        "occurred_at",
        "kind",
        "source",
        "ec2_instance_id",
        related_link("cluster"),
        "routed",
        "outcome_summary",
    )
    list_filter = ("kind", "source", "routed")
    list_select_related = ("cluster",)
    search_fields = ("event_id", "ec2_instance_id", "node_name", "cluster__name", "organization__name")
    date_hierarchy = "occurred_at"


@admin.register(QueueStatus)
class QueueStatusAdmin(ReadOnlyAdmin):
    list_display = ("cloud_account", "region", "last_polled_at", "received", "stored", "duplicates", "unrouted")
    list_select_related = ("cloud_account",)
    search_fields = ("cloud_account__name", "region", "queue_url")
