from django.urls import path

from . import views

app_name = "hibernation"
urlpatterns = [
    path("", views.schedule_list, name="list"),
    path("new/", views.schedule_edit, name="create"),
    path("preview/", views.schedule_preview, name="preview"),
    path("<int:pk>/", views.schedule_detail, name="detail"),
    path("<int:pk>/edit/", views.schedule_edit, name="edit"),
    path("<int:pk>/override/", views.schedule_override, name="override"),
    path("<int:pk>/override/clear/", views.schedule_override_clear, name="override-clear"),
    path("<int:pk>/delete/", views.schedule_delete, name="delete"),
]
