from django.urls import path

from . import views

app_name = "agentapi"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:cluster_id>/", views.detail, name="detail"),
    path("<int:cluster_id>/keys/", views.key_create, name="key-create"),
    path("<int:cluster_id>/keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
]
