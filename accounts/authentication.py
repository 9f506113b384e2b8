"""Bearer-token authentication for the API: simplejwt's checks, plus the database denylists (an access token ended
by logout, a token family revoked by logout or by the reuse of a rotated refresh token), in the same single query
that loads the user."""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import RevokedAccessToken, RevokedTokenFamily, User
from .services import FAMILY_CLAIM


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token: Token) -> User:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        jti = validated_token.get(api_settings.JTI_CLAIM) or ""
        family = validated_token.get(FAMILY_CLAIM) or ""
        # One query: the user, and whether the token or its family was revoked.
        user = (
            User.objects.filter(**{api_settings.USER_ID_FIELD: user_id})
            .annotate(
                token_revoked=Exists(RevokedAccessToken.objects.filter(jti=jti, user=OuterRef("pk"))),
                family_revoked=Exists(RevokedTokenFamily.objects.filter(family=family)),
            )
            .first()
        )
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        if user.token_revoked or (family and user.family_revoked):
            raise InvalidToken("Token has been revoked")
        return user


class JWTScheme(SimpleJWTScheme):
    """Documents the Bearer scheme in the OpenAPI schema as simplejwt's own."""

    target_class = "accounts.authentication.JWTAuthentication"
