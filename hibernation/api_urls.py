from django.urls import path

from . import api

urlpatterns = [
    path("hibernation/schedules", api.ScheduleListView.as_view(), name="hibernation-schedules"),
    path("hibernation/schedules/<int:pk>", api.ScheduleDetailView.as_view(), name="hibernation-schedule-detail"),
    path(
        "hibernation/schedules/<int:pk>/override",
        api.ScheduleOverrideView.as_view(),
        name="hibernation-schedule-override",
    ),
    path(
        "hibernation/schedules/<int:pk>/preview",
        api.SchedulePreviewView.as_view(),
        name="hibernation-schedule-preview",
    ),
]
