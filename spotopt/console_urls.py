"""Console shell pages; each app's console pages live in its own ``urls.py`` (see ``spotopt.urls``)."""

from django.urls import path

from . import views

app_name = "console"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
