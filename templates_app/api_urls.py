from django.urls import path

from . import api

urlpatterns = [
    path("templates", api.NodeTemplateListView.as_view(), name="templates"),
    path("templates/<int:pk>", api.NodeTemplateDetailView.as_view(), name="template-detail"),
    path("templates/<int:pk>/set-default", api.NodeTemplateSetDefaultView.as_view(), name="template-set-default"),
    path(
        "templates/<int:pk>/instance-types",
        api.NodeTemplateInstanceTypesView.as_view(),
        name="template-instance-types",
    ),
]
