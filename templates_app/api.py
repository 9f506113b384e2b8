"""Node template API: ``/api/v1/templates`` (the seed's endpoints) and the instance-type preview."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from spotopt.errors import PermissionDenied
from spotopt.tenancy import get_for_user

from . import selectors, services
from .filters import NodeTemplateFilter
from .serializers import (
    InstanceTypesPreviewSerializer,
    InstanceTypesQuerySerializer,
    NodeTemplateInputSerializer,
    NodeTemplateSerializer,
)
from .services import matching


def _get_template(request, pk):
    """The caller's template or 404 (another organization's template does not exist for the caller)."""
    return get_for_user(selectors.templates_for(request.user), request.user, pk=pk)


class NodeTemplateListView(ListAPIView):
    """``GET /templates`` (paginated, filterable by ``q``, ``is_default``, ``strategy``); ``POST /templates``."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = NodeTemplateSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = NodeTemplateFilter

    def get_queryset(self):
        return selectors.templates_for(self.request.user)

    @extend_schema(request=NodeTemplateInputSerializer, responses={201: NodeTemplateSerializer})
    def post(self, request):
        if request.user.organization_id is None:
            raise PermissionDenied("Templates belong to an organization; super admins without one cannot create them.")
        data = NodeTemplateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(
            organization=request.user.organization, data=data.validated_data, actor=request.user
        )
        template = _get_template(request, template.pk)
        return Response(NodeTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class NodeTemplateDetailView(APIView):
    """``GET|PATCH|DELETE /templates/{id}``."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: NodeTemplateSerializer})
    def get(self, request, pk):
        return Response(NodeTemplateSerializer(_get_template(request, pk)).data)

    @extend_schema(request=NodeTemplateInputSerializer, responses={200: NodeTemplateSerializer})
    def patch(self, request, pk):
        template = _get_template(request, pk)
        data = NodeTemplateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.template_update(template=template, data=data.validated_data, actor=request.user)
        return Response(NodeTemplateSerializer(_get_template(request, pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        services.template_delete(template=_get_template(request, pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NodeTemplateSetDefaultView(APIView):
    """``POST /templates/{id}/set-default``: atomic; the previous default is unset in the same transaction."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: NodeTemplateSerializer})
    def post(self, request, pk):
        services.template_set_default(template=_get_template(request, pk), actor=request.user)
        return Response(NodeTemplateSerializer(_get_template(request, pk)).data)


class NodeTemplateInstanceTypesView(APIView):
    """``GET /templates/{id}/instance-types?region=…``: the instance types the template allows in the region, with
    vCPU, memory, on-demand and current spot price per zone and savings. Constant number of queries."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("region", str, required=True)], responses={200: InstanceTypesPreviewSerializer}
    )
    def get(self, request, pk):
        template = _get_template(request, pk)
        query = InstanceTypesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = matching.preview(template, query.validated_data["region"])
        return Response({"template_id": template.pk} | body)
