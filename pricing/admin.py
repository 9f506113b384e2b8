"""The pricing catalog in Django admin, read-only: it is loaded from the bundled snapshot and refreshed from AWS by
the catalog services (``manage.py load_pricing_snapshot`` and the beat tasks), never edited by hand."""

from django.contrib import admin

from spotopt.service_admin import ReadOnlyAdmin

from .models import InstanceType, InstanceTypeOffering, OnDemandPrice, OnDemandPriceHistory, SpotPricePoint


@admin.register(InstanceType)
class InstanceTypeAdmin(ReadOnlyAdmin):
    list_display = ("name", "vcpu", "memory_mib", "arch", "gpus", "max_pods", "current_generation", "source")
    list_filter = ("arch", "current_generation", "burstable", "bare_metal", "source")
    search_fields = ("name", "family")


@admin.register(OnDemandPrice)
class OnDemandPriceAdmin(ReadOnlyAdmin):
    list_display = ("region", "instance_type", "price", "source", "effective_from", "updated_at")
    list_filter = ("region", "source")
    search_fields = ("instance_type",)
    date_hierarchy = "updated_at"


@admin.register(OnDemandPriceHistory)
class OnDemandPriceHistoryAdmin(ReadOnlyAdmin):
    list_display = ("region", "instance_type", "price", "source", "effective_from")
    list_filter = ("region", "source")
    search_fields = ("instance_type",)


@admin.register(SpotPricePoint)
class SpotPricePointAdmin(ReadOnlyAdmin):
    list_display = ("region", "zone", "instance_type", "price", "timestamp", "source")
    list_filter = ("region", "source")
    search_fields = ("instance_type", "zone")
    date_hierarchy = "timestamp"


@admin.register(InstanceTypeOffering)
class InstanceTypeOfferingAdmin(ReadOnlyAdmin):
    list_display = ("region", "zone", "instance_type", "source")
    list_filter = ("region", "source")
    search_fields = ("instance_type", "zone")
