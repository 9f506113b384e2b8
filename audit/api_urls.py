from django.urls import path

from . import api

# Explicit routes (no router) so that the paths are exactly the seed's, without trailing slashes. Only GET is mapped;
# DRF answers every other verb with 405.
urlpatterns = [
    path("audit", api.AuditLogViewSet.as_view({"get": "list"}), name="audit-list"),
    path("audit/verify", api.AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/<int:pk>", api.AuditLogViewSet.as_view({"get": "retrieve"}), name="audit-detail"),
]
