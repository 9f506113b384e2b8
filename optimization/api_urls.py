from django.urls import path

from . import api

urlpatterns = [
    path("clusters/<int:pk>/recommendation", api.RecommendationView.as_view(), name="cluster-recommendation"),
    path("clusters/<int:pk>/jobs", api.ClusterJobsView.as_view(), name="cluster-jobs"),
    path("jobs", api.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>", api.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/approve", api.JobApproveView.as_view(), name="job-approve"),
    path("jobs/<int:pk>/cancel", api.JobCancelView.as_view(), name="job-cancel"),
    path("notifications", api.NotificationSettingsView.as_view(), name="notification-settings"),
]
