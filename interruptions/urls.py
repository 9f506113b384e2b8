from django.urls import path

from . import views

app_name = "interruptions"
urlpatterns = [
    path("", views.index, name="index"),
]
