from django.urls import path

from . import console_views as views

app_name = "cloud_accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("<int:pk>/", views.account_detail, name="detail"),
    path("<int:pk>/validate", views.account_validate, name="validate"),
    path("<int:pk>/sync", views.account_sync, name="sync"),
    path("<int:pk>/disable", views.account_disable, name="disable"),
    path("<int:pk>/delete", views.account_delete, name="delete"),
    path("<int:pk>/cloudformation", views.account_cloudformation, name="cloudformation"),
    path("<int:pk>/interruption-template", views.account_interruption_template, name="interruption_template"),
]
