"""The seed's auth API: signup, login, refresh, logout, change-password, me."""

from __future__ import annotations

import django_filters
from django.contrib.auth import authenticate
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import Token

from spotopt.errors import AuthenticationFailed, ValidationFailed
from spotopt.middleware import client_ip

from . import aws_policies, selectors, serializers, services
from .models import CloudAccount, Organization, User


def _user_query():
    return User.objects.select_related("organization")


class SignupView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(request=serializers.SignupInputSerializer, responses={201: serializers.TokenPairSerializer})
    def post(self, request):
        data = serializers.SignupInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(**data.validated_data)
        body = services.issue_tokens(user) | {"user": serializers.UserSerializer(user).data}
        return Response(body, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(request=serializers.LoginInputSerializer, responses={200: serializers.TokenPairSerializer})
    def post(self, request):
        data = serializers.LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The accounts backend: the same check (limits, audit, default-password refusal) as the console and admin.
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            raise AuthenticationFailed(services.LOGIN_FAILED_MESSAGE, code="invalid_credentials")
        body = services.issue_tokens(user) | {"user": serializers.UserSerializer(user).data}
        return Response(body)


class RefreshView(APIView):
    """Rotates: the old refresh token is blacklisted and a new pair returned. A rotated token used again revokes
    its whole family."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(request=serializers.RefreshInputSerializer, responses={200: serializers.RefreshInputSerializer})
    def post(self, request):
        data = serializers.RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.token_refresh(refresh=data.validated_data["refresh"]))


class LogoutView(APIView):
    @extend_schema(request=serializers.RefreshInputSerializer, responses={204: None})
    def post(self, request):
        data = serializers.RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        access = request.auth if isinstance(request.auth, Token) else None
        services.user_logout(user=request.user, refresh=data.validated_data["refresh"], access=access)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChangePasswordView(APIView):
    @extend_schema(request=serializers.ChangePasswordInputSerializer, responses={200: serializers.TokenPairSerializer})
    def post(self, request):
        data = serializers.ChangePasswordInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        services.user_change_password(user=user, **data.validated_data, ip=client_ip(request))
        # The caller's session goes on with a fresh pair; every other refresh token is revoked.
        body = services.issue_tokens(user) | {"user": serializers.UserSerializer(user).data}
        return Response(body)


class MeView(APIView):
    @extend_schema(responses={200: serializers.UserSerializer})
    def get(self, request):
        user = _user_query().get(pk=request.user.pk)
        return Response(serializers.UserSerializer(user).data)


# --- Cloud accounts ----------------------------------------------------------------------------------------------


class CloudAccountFilter(django_filters.FilterSet):
    """Shared by the API list and the console list."""

    status = django_filters.ChoiceFilter(choices=CloudAccount.Status.choices)
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = CloudAccount
        fields = ("status", "name")


def _owning_organization(request, organization_id: int | None) -> Organization:
    user = request.user
    if not user.is_super_admin:
        return user.organization
    if organization_id is None:
        raise ValidationFailed(
            "Super admins must say which organization owns the account.",
            fields={"organization_id": ["Required for super admins."]},
        )
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise ValidationFailed("No such organization.", fields={"organization_id": ["Not found."]})
    return organization


class CloudAccountListView(generics.ListAPIView):
    """GET: the caller's linked accounts. POST: start linking one (returns its ExternalId and trust policy)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = serializers.CloudAccountSerializer
    filterset_class = CloudAccountFilter

    def get_queryset(self):
        return selectors.cloud_accounts_for_user(self.request.user)

    @extend_schema(
        request=serializers.CloudAccountCreateSerializer, responses={201: serializers.CloudAccountDetailSerializer}
    )
    def post(self, request):
        data = serializers.CloudAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organization = _owning_organization(request, values.pop("organization_id", None))
        account = services.cloud_account_create(organization=organization, actor=request.user, **values)
        return Response(serializers.CloudAccountDetailSerializer(account).data, status=status.HTTP_201_CREATED)


class CloudAccountDetailView(APIView):
    """GET, PATCH (name, role_arn, regions, access keys), DELETE (unlink)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: serializers.CloudAccountDetailSerializer})
    def get(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        return Response(serializers.CloudAccountDetailSerializer(account).data)

    @extend_schema(
        request=serializers.CloudAccountUpdateSerializer, responses={200: serializers.CloudAccountDetailSerializer}
    )
    def patch(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        data = serializers.CloudAccountUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        account = services.cloud_account_update(account=account, actor=request.user, **data.validated_data)
        return Response(serializers.CloudAccountDetailSerializer(account).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        services.cloud_account_delete(account=account, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CloudAccountValidateView(APIView):
    """Assume the role and read the caller identity: 200 with status ``active``, or 400 saying why."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: serializers.CloudAccountDetailSerializer})
    def post(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        account = services.cloud_account_validate(account=account, actor=request.user)
        return Response(serializers.CloudAccountDetailSerializer(account).data)


class CloudAccountDisableView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: serializers.CloudAccountDetailSerializer})
    def post(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        account = services.cloud_account_disable(account=account, actor=request.user)
        return Response(serializers.CloudAccountDetailSerializer(account).data)


class CloudAccountSyncView(APIView):
    """Queue discovery and inventory now (202)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={202: None})
    def post(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        services.cloud_account_request_sync(account=account, actor=request.user)
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


class CloudAccountTemplateView(APIView):
    """The CloudFormation template that creates the role, as a download."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: None})
    def get(self, request, pk: int):
        account = selectors.get_cloud_account(request.user, pk)
        response = HttpResponse(
            aws_policies.cloudformation_template(account.external_id), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="spot-optimizer-role-{account.pk}.json"'
        return response


class CloudAccountInterruptionTemplateView(APIView):
    """The regional CloudFormation template (interruption queue and EventBridge rules), as a download: deploy it in
    every enabled region of the account, or as a StackSet."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: None})
    def get(self, request, pk: int):
        selectors.get_cloud_account(request.user, pk)
        response = HttpResponse(aws_policies.interruption_queue_template(), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="spot-optimizer-interruptions.json"'
        return response
