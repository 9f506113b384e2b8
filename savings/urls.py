from django.urls import path

from . import views

app_name = "savings"
urlpatterns = [
    path("", views.reports, name="reports"),
    path("overview", views.overview, name="overview"),
    path("settings", views.settings_update, name="settings"),
]
