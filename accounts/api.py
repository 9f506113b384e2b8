"""The seed's auth API: signup, login, refresh, logout, change-password, me."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer

from spotopt.errors import AuthenticationFailed
from spotopt.middleware import client_ip

from . import serializers, services
from .models import User


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
        user = services.authenticate(**data.validated_data, ip=client_ip(request))
        body = services.issue_tokens(user) | {"user": serializers.UserSerializer(user).data}
        return Response(body)


class RefreshView(APIView):
    """Rotates: the old refresh token is blacklisted and a new pair returned."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(request=serializers.RefreshInputSerializer, responses={200: serializers.RefreshInputSerializer})
    def post(self, request):
        data = serializers.RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refresh = TokenRefreshSerializer(data=data.validated_data)
        try:
            refresh.is_valid(raise_exception=True)
        except TokenError as exc:
            raise AuthenticationFailed("Invalid or expired refresh token.", code="token_not_valid") from exc
        return Response(refresh.validated_data)


class LogoutView(APIView):
    @extend_schema(request=serializers.RefreshInputSerializer, responses={204: None})
    def post(self, request):
        data = serializers.RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChangePasswordView(APIView):
    @extend_schema(request=serializers.ChangePasswordInputSerializer, responses={200: serializers.TokenPairSerializer})
    def post(self, request):
        data = serializers.ChangePasswordInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        services.user_change_password(user=user, **data.validated_data)
        # The caller's session goes on with a fresh pair; every other refresh token is revoked.
        body = services.issue_tokens(user) | {"user": serializers.UserSerializer(user).data}
        return Response(body)


class MeView(APIView):
    @extend_schema(responses={200: serializers.UserSerializer})
    def get(self, request):
        user = _user_query().get(pk=request.user.pk)
        return Response(serializers.UserSerializer(user).data)
