from django.urls import path

from . import views

app_name = "optimization"
urlpatterns = [
    path("", views.job_list, name="list"),
    path("notifications/", views.notification_settings, name="notifications"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/approve/", views.job_approve, name="approve"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="cancel"),
    path("clusters/<int:pk>/apply/", views.cluster_apply, name="apply"),
    path("clusters/<int:pk>/recommend/", views.cluster_recommend, name="recommend"),
]
