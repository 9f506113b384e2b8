"""Writes for organizations and users: signup, login, logout, password changes. Each is audited."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from audit.services import record
from spotopt.errors import AuthenticationFailed, RateLimited, ValidationFailed

from . import throttling
from .models import Organization, User

LOGIN_FAILED_MESSAGE = "Invalid email or password."


def _validate_password(password: str, user: User, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={field: list(exc.messages)}) from exc


def user_signup(*, email: str, password: str, organization_name: str, full_name: str = "") -> User:
    """Create a new organization owned by a new CLIENT user."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed("A user with this email already exists.", fields={"email": ["Already registered."]})
    candidate = User(email=email, full_name=full_name)
    _validate_password(password, candidate)
    with transaction.atomic():
        org = Organization.objects.create(name=organization_name.strip())
        user = User.objects.create_user(email=email, password=password, full_name=full_name, organization=org)
        org.owner = user
        org.save(update_fields=["owner"])
        record(action="auth.signup", organization=org, actor=user, resource=user, after=user_snapshot(user))
    return user


def user_snapshot(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "organization_id": user.organization_id,
    }


def is_default_admin_password(user: User, password: str) -> bool:
    return user.email == settings.DEFAULT_ADMIN_EMAIL and password == settings.DEFAULT_ADMIN_PASSWORD


def authenticate(*, email: str, password: str, ip: str | None) -> User:
    """Check credentials with failure limits per account and per IP. The same message for an unknown email and a
    wrong password; every outcome is audited."""
    email = (email or "").strip().lower()
    wait = throttling.retry_after(email, ip)
    if wait is not None:
        raise RateLimited("Too many failed login attempts. Try again later.", retry_after=wait)
    user = User.objects.filter(email__iexact=email).select_related("organization").first()
    if user is None:
        # Spend the same time as a real check so that timing does not reveal which emails exist.
        make_password(password)
    ok = user is not None and user.is_active and user.check_password(password)
    if not ok:
        throttling.note_failure(email, ip)
        record(
            action="auth.login_failed",
            organization_id=user.organization_id if user else None,
            actor=user or "anonymous",
            resource_type="user",
            resource_id=user.pk if user else "",
            after={"email": email},
        )
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE, code="invalid_credentials")
    if settings.PRODUCTION and is_default_admin_password(user, password):
        record(action="auth.login_refused_default_password", actor=user, resource=user)
        raise AuthenticationFailed(
            "The default administrator password must be changed first (manage.py set_admin_password).",
            code="password_change_required",
        )
    record(action="auth.login", organization_id=user.organization_id, actor=user, resource=user)
    return user


def issue_tokens(user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the refresh token (it must be the caller's)."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise ValidationFailed("Invalid or expired refresh token.", fields={"refresh": [str(exc)]}) from exc
    if str(token.get("user_id")) != str(user.pk):
        raise ValidationFailed("Invalid or expired refresh token.", fields={"refresh": ["Not your token."]})
    token.blacklist()
    record(action="auth.logout", organization_id=user.organization_id, actor=user, resource=user)


def _blacklist_all(user: User) -> int:
    outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
        blacklistedtoken__isnull=False
    )
    tokens = list(outstanding)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in tokens], ignore_conflicts=True)
    return len(tokens)


def user_change_password(*, user: User, old_password: str, new_password: str) -> None:
    """Change the password and revoke every refresh token the user holds (access tokens die with the old hash)."""
    if not user.check_password(old_password):
        raise ValidationFailed("The current password is incorrect.", fields={"old_password": ["Incorrect."]})
    if old_password == new_password:
        raise ValidationFailed(
            "The new password must differ from the current one.", fields={"new_password": ["Unchanged."]}
        )
    _validate_password(new_password, user, field="new_password")
    set_password(user=user, password=new_password, action="auth.password_change")


def set_password(*, user: User, password: str, action: str = "auth.password_set", actor: Any = None) -> None:
    with transaction.atomic():
        user.set_password(password)
        user.password_changed_at = timezone.now()
        user.save(update_fields=["password", "password_changed_at"])
        revoked = _blacklist_all(user)
        record(
            action=action,
            organization_id=user.organization_id,
            actor=actor or user,
            resource=user,
            after={"revoked_refresh_tokens": revoked},
        )
