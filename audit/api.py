"""``/api/v1/audit``: read-only. Every writing verb answers 405; the log is only ever written by services."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spotopt.api.pagination import NewestFirstCursorPagination
from spotopt.errors import ValidationFailed

from . import selectors
from .filters import AuditLogFilter
from .models import PLATFORM_CHAIN, chain_key
from .serializers import AuditLogSerializer, VerifyResultSerializer
from .verification import chains_for, verify_chains


class AuditLogViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit entries, newest first, cursor-paginated. A CLIENT sees its organization's entries; a SUPER_ADMIN all."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = AuditLogSerializer
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditLogFilter

    def get_queryset(self):
        return selectors.audit_entries_for(self.request.user)

    def get_object(self):
        return selectors.audit_entry_for(self.request.user, self.kwargs["pk"])


class AuditVerifyView(APIView):
    """The verdict of the caller's organization's chain. A SUPER_ADMIN gets every chain, or one with ``?org=ID``
    (``?org=platform`` for the platform chain)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("org", OpenApiTypes.STR, description="super admin only: an organization id or 'platform'")
        ],
        responses={200: VerifyResultSerializer},
    )
    def get(self, request: Request) -> Response:
        user = request.user
        if user.is_super_admin:
            chains = self._admin_chains(request.query_params.get("org", ""))
        else:
            # A CLIENT's own chain only; ?org is ignored rather than answered, so it reveals nothing about others.
            chains = [chain_key(user.organization_id)] if user.organization_id else []
        verdicts = verify_chains(chains)
        body = {"ok": all(v.ok for v in verdicts), "chains": [v.as_dict() for v in verdicts]}
        return Response(VerifyResultSerializer(body).data)

    @staticmethod
    def _admin_chains(org: str) -> list[str]:
        org = org.strip()
        if not org:
            return chains_for(all_chains=True)
        if org == PLATFORM_CHAIN:
            return [PLATFORM_CHAIN]
        if not org.isdigit() or int(org) < 1:
            raise ValidationFailed("org: an organization id or 'platform'.", fields={"org": ["Invalid value."]})
        return [chain_key(int(org))]
