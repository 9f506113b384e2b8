from django.contrib import admin

from .models import InstanceType, InstanceTypeOffering, OnDemandPrice, SpotPricePoint


@admin.register(InstanceType)
class InstanceTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "vcpu", "memory_mib", "arch", "gpus", "max_pods", "current_generation", "source")
    list_filter = ("arch", "current_generation", "burstable", "bare_metal", "source")
    search_fields = ("name", "family")


@admin.register(OnDemandPrice)
class OnDemandPriceAdmin(admin.ModelAdmin):
    list_display = ("region", "instance_type", "price", "source", "updated_at")
    list_filter = ("region", "source")
    search_fields = ("instance_type",)


@admin.register(SpotPricePoint)
class SpotPricePointAdmin(admin.ModelAdmin):
    list_display = ("region", "zone", "instance_type", "price", "timestamp", "source")
    list_filter = ("region", "source")
    search_fields = ("instance_type", "zone")
    date_hierarchy = "timestamp"


@admin.register(InstanceTypeOffering)
class InstanceTypeOfferingAdmin(admin.ModelAdmin):
    list_display = ("region", "zone", "instance_type", "source")
    list_filter = ("region", "source")
    search_fields = ("instance_type", "zone")
