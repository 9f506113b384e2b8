from django.urls import path

from . import views

app_name = "clusters"
urlpatterns = [
    path("", views.cluster_list, name="list"),
    path("<int:pk>/", views.cluster_detail, name="detail"),
]
