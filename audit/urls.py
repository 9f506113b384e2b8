from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
    path("export.csv", views.audit_export_csv, name="export-csv"),
    path("<int:pk>/", views.audit_detail, name="detail"),
]
