"""Tenants, users and linked cloud accounts."""

from __future__ import annotations

import secrets
import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


class Organization(models.Model):
    """A tenant. Every operator-owned row points at one; signup creates it with its owner."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_organizations"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "organizations"
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("role", User.Role.SUPER_ADMIN)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with email. ``CLIENT`` users belong to one organization; ``SUPER_ADMIN`` runs the platform."""

    class Role(models.TextChoices):
        CLIENT = "CLIENT", "Client"
        SUPER_ADMIN = "SUPER_ADMIN", "Super admin"

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLIENT)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    password_changed_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        ordering = ("id",)
        constraints = [
            # A client always belongs to an organization.
            models.CheckConstraint(
                condition=models.Q(role="SUPER_ADMIN") | models.Q(organization__isnull=False),
                name="client_has_organization",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_super_admin(self) -> bool:
        return self.role == self.Role.SUPER_ADMIN


def _external_id() -> str:
    return f"spotopt-{secrets.token_hex(16)}"


class CloudAccount(models.Model):
    """A linked AWS account: a cross-account role (with a platform-generated ExternalId) or, as a fallback,
    encrypted access keys."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        ERROR = "error", "Error"
        DISABLED = "disabled", "Disabled"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="cloud_accounts")
    name = models.CharField(max_length=200)
    aws_account_id = models.CharField(max_length=12, blank=True)
    role_arn = models.CharField(max_length=2048, blank=True)
    external_id = models.CharField(max_length=64, default=_external_id, editable=False)
    regions = models.JSONField(default=list)
    # Fallback credentials: a Fernet token of {"access_key_id", "secret_access_key"} (see accounts.crypto). Never
    # returned by the API; audit entries only say whether keys are set.
    encrypted_access_keys = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    last_error = models.TextField(blank=True)
    last_validated_at = models.DateTimeField(null=True, blank=True)
    # What the last validation found missing but not fatal: per region, the interruption queue or its EventBridge
    # rules ({"region", "code", "message"}); interruptions of that region are not seen until they are deployed.
    validation_warnings = models.JSONField(default=list, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "accounts"
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_account_name_per_org"),
            # An organization links an AWS account once (another organization may link the same one). The id is
            # known from the role ARN at creation, or from STS at validation; "" while unknown.
            models.UniqueConstraint(
                fields=["organization", "aws_account_id"],
                condition=~models.Q(aws_account_id=""),
                name="unique_aws_account_per_org",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_access_keys(self) -> bool:
        return bool(self.encrypted_access_keys)

    @property
    def is_enabled(self) -> bool:
        """Discovery and sync run only for accounts that validated and were not disabled."""
        return self.status == self.Status.ACTIVE


class LoginFailureCounter(models.Model):
    """Failed password checks of one key (an account, an account at an address, or an address) in a fixed window.

    Kept in the database, not the cache, so that a cache outage cannot erase a lockout. Incremented atomically by one
    upsert before the password is checked (``accounts.throttling``).
    """

    key = models.CharField(max_length=80, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    window_ends_at = models.DateTimeField(db_index=True)  # purging: WHERE window_ends_at < now

    class Meta:
        db_table = "login_failure_counters"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class RevokedAccessToken(models.Model):
    """An access token ended before its expiry (logout). Kept until it would have expired anyway."""

    jti = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "revoked_access_tokens"

    def __str__(self) -> str:
        return self.jti


class RevokedTokenFamily(models.Model):
    """Every token descended from one login (its refresh tokens, rotated or not, and their access tokens) is dead:
    the family was logged out, or one of its rotated refresh tokens was used again (a stolen copy)."""

    class Reason(models.TextChoices):
        LOGOUT = "logout", "Logout"
        REUSE = "reuse", "Rotated refresh token used again"

    family = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "revoked_token_families"

    def __str__(self) -> str:
        return self.family
