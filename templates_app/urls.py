from django.urls import path

from . import views

app_name = "templates_app"
urlpatterns = [
    path("", views.template_list, name="list"),
    path("new/", views.template_edit, name="create"),
    path("preview/", views.template_preview, name="preview"),
    path("<int:pk>/", views.template_edit, name="edit"),
    path("<int:pk>/default/", views.template_set_default, name="set-default"),
    path("<int:pk>/delete/", views.template_delete, name="delete"),
]
