"""Writes for organizations, users and linked AWS accounts (signup, login, passwords, linking). All audited."""

from __future__ import annotations

import re
import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from audit.services import record
from cloud import ec2, events, sqs, sts
from cloud import errors as cloud_errors
from spotopt.errors import AuthenticationFailed, ValidationFailed

from . import signals, throttling
from .actions import AuthAction, OrganizationAction, UserAction
from .aws import session_for
from .crypto import DecryptionFailed, encrypt_json
from .models import CloudAccount, Organization, RevokedAccessToken, RevokedTokenFamily, User

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
        record(action=AuthAction.SIGNUP, organization=org, actor=user, resource=user, after=user_snapshot(user))
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
    """The one credential check (reached through ``accounts.backends.AccountsBackend`` by the API, the console and
    Django admin). The attempt is counted before the password is checked (per account, per account and address, per
    address); the same message for an unknown email and a wrong password; every checked outcome is audited."""
    email = (email or "").strip().lower()
    reservation = throttling.reserve(email, ip)
    user = User.objects.filter(email__iexact=email).select_related("organization").first()
    if user is None:
        # Spend the same time as a real check so that timing does not reveal which emails exist.
        make_password(password)
    ok = user is not None and user.is_active and user.check_password(password)
    if not ok:
        record(
            action=AuthAction.LOGIN_FAILED,
            organization_id=user.organization_id if user else None,
            actor=user or "anonymous",
            resource_type="user",
            resource_id=user.pk if user else "",
            after={"email": email},
            ip=ip,
        )
        raise AuthenticationFailed(LOGIN_FAILED_MESSAGE, code="invalid_credentials")
    throttling.release(reservation)
    if settings.PRODUCTION and is_default_admin_password(user, password):
        record(action=AuthAction.LOGIN_REFUSED_DEFAULT_PASSWORD, actor=user, resource=user, ip=ip)
        raise AuthenticationFailed(
            "The default administrator password must be changed first (manage.py set_admin_password).",
            code="password_change_required",
        )
    record(action=AuthAction.LOGIN, organization_id=user.organization_id, actor=user, resource=user, ip=ip)
    return user


# --- Tokens ---------------------------------------------------------------------------------------------------------
# A login starts a token family (the ``fam`` claim, copied into every refresh token rotated from it and into their
# access tokens). Rotation is one transaction that blacklists the presented refresh token (a unique row: of
# concurrent refreshes with one token exactly one wins) and records its successor. A rotated refresh token presented
# again is a stolen copy or a replay: the whole family is revoked, every refresh and access token descended from the
# login. Revocations live in the database, next to the blacklist, so that a cache outage cannot undo them.

FAMILY_CLAIM = "fam"
TOKEN_INVALID_MESSAGE = "Invalid or expired refresh token."


class _PresentedRefreshToken(RefreshToken):
    """A refresh token as presented: signature, expiry and type verified; the blacklist is looked at by the rotation
    itself, which must tell a rotated token used again from an unknown one."""

    def check_blacklist(self) -> None:
        return None


def _token_invalid() -> AuthenticationFailed:
    return AuthenticationFailed(TOKEN_INVALID_MESSAGE, code="token_not_valid")


def _new_refresh_token(user: User, family: str) -> RefreshToken:
    token = RefreshToken()
    token[jwt_settings.USER_ID_CLAIM] = str(user.pk)
    token[jwt_settings.REVOKE_TOKEN_CLAIM] = get_md5_hash_password(user.password)
    token[FAMILY_CLAIM] = family
    OutstandingToken.objects.create(
        user=user,
        jti=token[jwt_settings.JTI_CLAIM],
        token=str(token),
        created_at=token.current_time,
        expires_at=datetime_from_epoch(token["exp"]),
    )
    return token


def issue_tokens(user: User) -> dict[str, str]:
    """A new token family for a fresh login: a refresh token and its access token."""
    refresh = _new_refresh_token(user, uuid.uuid4().hex)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def _family_of(token: Any) -> str:
    return str(token.get(FAMILY_CLAIM) or token[jwt_settings.JTI_CLAIM])


def _revoke_family(*, family: str, user: User | None, reason: str) -> None:
    expires_at = timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME
    RevokedTokenFamily.objects.get_or_create(
        family=family, defaults={"user": user, "reason": reason, "expires_at": expires_at}
    )


def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: blacklist it and return a new pair of the same family.

    Presenting a token that was already rotated revokes its family (every token descended from it) and is refused.
    """
    try:
        token = _PresentedRefreshToken(refresh)
    except TokenError as exc:
        raise _token_invalid() from exc
    jti = token[jwt_settings.JTI_CLAIM]
    family = _family_of(token)
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
    if (
        user is None
        or not user.is_active
        or token.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password)
        or RevokedTokenFamily.objects.filter(family=family).exists()
    ):
        raise _token_invalid()
    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(jti=jti, user=user).first()
        if outstanding is None:
            raise _token_invalid()
        _, first_use = BlacklistedToken.objects.get_or_create(token=outstanding)
        successor = _new_refresh_token(user, family) if first_use else None
    if successor is None:
        with transaction.atomic():
            _revoke_family(family=family, user=user, reason=RevokedTokenFamily.Reason.REUSE)
            record(
                action=AuthAction.REFRESH_TOKEN_REUSED,
                organization_id=user.organization_id,
                actor=user,
                resource=user,
                after={"family_revoked": True},
            )
        raise _token_invalid()
    return {"access": str(successor.access_token), "refresh": str(successor)}


def user_logout(*, user: User, refresh: str, access: Any = None) -> None:
    """End the session: blacklist the refresh token (it must be the caller's), revoke its family, and deny the access
    token the call came with until it expires."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise ValidationFailed("Invalid or expired refresh token.", fields={"refresh": [str(exc)]}) from exc
    if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise ValidationFailed("Invalid or expired refresh token.", fields={"refresh": ["Not your token."]})
    with transaction.atomic():
        token.blacklist()
        _revoke_family(family=_family_of(token), user=user, reason=RevokedTokenFamily.Reason.LOGOUT)
        if access is not None and access.get(jwt_settings.JTI_CLAIM):
            RevokedAccessToken.objects.get_or_create(
                jti=access[jwt_settings.JTI_CLAIM],
                defaults={"user": user, "expires_at": datetime_from_epoch(access["exp"])},
            )
        session_logout(user=user)


def session_logout(*, user: User) -> None:
    """Record a logout (console and Django admin sessions end in their views; API tokens are revoked above)."""
    record(action=AuthAction.LOGOUT, organization_id=user.organization_id, actor=user, resource=user)


def token_revocations_purge() -> dict[str, int]:
    """Forget revocations of tokens that have expired anyway, and closed failed-login windows."""
    now = timezone.now()
    access, _ = RevokedAccessToken.objects.filter(expires_at__lt=now).delete()
    families, _ = RevokedTokenFamily.objects.filter(expires_at__lt=now).delete()
    return {"access_tokens": access, "families": families, "login_counters": throttling.purge_expired(now)}


def _blacklist_all(user: User) -> int:
    outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
        blacklistedtoken__isnull=False
    )
    tokens = list(outstanding)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in tokens], ignore_conflicts=True)
    return len(tokens)


def user_change_password(*, user: User, old_password: str, new_password: str, ip: str | None = None) -> None:
    """Change the password and revoke every refresh token the user holds (access tokens die with the old hash).

    The check of the current password is held to the same failed-login limits as a login."""
    reservation = throttling.reserve(user.email, ip)
    if not user.check_password(old_password):
        record(
            action=AuthAction.PASSWORD_CHANGE_FAILED,
            organization_id=user.organization_id,
            actor=user,
            resource=user,
            ip=ip,
        )
        raise ValidationFailed("The current password is incorrect.", fields={"old_password": ["Incorrect."]})
    throttling.release(reservation)
    if old_password == new_password:
        raise ValidationFailed(
            "The new password must differ from the current one.", fields={"new_password": ["Unchanged."]}
        )
    _validate_password(new_password, user, field="new_password")
    set_password(user=user, password=new_password, action=AuthAction.PASSWORD_CHANGE)


def set_password(*, user: User, password: str, action: str = AuthAction.PASSWORD_SET, actor: Any = None) -> None:
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


# --- Cloud accounts ----------------------------------------------------------------------------------------------

ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$")
ACCESS_KEY_ID_RE = re.compile(r"^[A-Z0-9]{16,128}$")


def cloud_account_snapshot(account: CloudAccount) -> dict[str, Any]:
    """What the audit log keeps of an account: never the keys, only whether there are some."""
    return {
        "id": account.pk,
        "name": account.name,
        "aws_account_id": account.aws_account_id,
        "role_arn": account.role_arn,
        "regions": list(account.regions),
        "status": account.status,
        "has_access_keys": account.has_access_keys,
    }


def _clean_regions(regions: Any) -> list[str]:
    if not isinstance(regions, list | tuple) or not all(isinstance(r, str) for r in regions):
        raise ValidationFailed("Regions must be a list of AWS region codes.", fields={"regions": ["Not a list."]})
    cleaned = sorted({r.strip().lower() for r in regions if r.strip()})
    bad = [r for r in cleaned if not REGION_RE.match(r)]
    if bad:
        raise ValidationFailed(
            f"Unknown region code: {', '.join(bad)}.", fields={"regions": [f"Not an AWS region code: {r}" for r in bad]}
        )
    return cleaned or [settings.AWS_DEFAULT_REGION]


def _clean_role_arn(role_arn: str) -> str:
    role_arn = (role_arn or "").strip()
    if role_arn and not ROLE_ARN_RE.match(role_arn):
        raise ValidationFailed(
            "The role ARN must look like arn:aws:iam::123456789012:role/SpotOptimizer.",
            fields={"role_arn": ["Not an IAM role ARN."]},
        )
    return role_arn


def _aws_account_of(role_arn: str) -> str:
    """The AWS account id a role ARN names (``arn:aws:iam::<id>:role/…``), "" without one."""
    return role_arn.split(":")[4] if role_arn else ""


def _already_linked(organization_id: int, aws_account_id: str, *, exclude_pk: int | None = None) -> CloudAccount | None:
    if not aws_account_id:
        return None
    return (
        CloudAccount.objects.filter(organization_id=organization_id, aws_account_id=aws_account_id)
        .exclude(pk=exclude_pk)
        .first()
    )


def _already_linked_error(aws_account_id: str, other: CloudAccount | None) -> ValidationFailed:
    named = f" as {other.name!r}" if other is not None else ""
    return ValidationFailed(
        f"AWS account {aws_account_id} is already linked to this organization{named}: use that account, or unlink "
        "it first.",
        fields={"role_arn": [f"AWS account {aws_account_id} is already linked{named}."]},
        code="aws_account_already_linked",
    )


def _is_duplicate_aws_account(exc: IntegrityError) -> bool:
    return "unique_aws_account_per_org" in str(exc) or "accounts.organization_id, accounts.aws_account_id" in str(exc)


def _encrypt_keys(access_key_id: str, secret_access_key: str) -> str:
    access_key_id = (access_key_id or "").strip()
    secret_access_key = (secret_access_key or "").strip()
    if not access_key_id and not secret_access_key:
        return ""
    if not access_key_id or not secret_access_key:
        raise ValidationFailed(
            "Give both the access key id and the secret access key.",
            fields={"access_key_id" if not access_key_id else "secret_access_key": ["Required with the other key."]},
        )
    if not ACCESS_KEY_ID_RE.match(access_key_id):
        raise ValidationFailed("The access key id is malformed.", fields={"access_key_id": ["Malformed."]})
    return encrypt_json({"access_key_id": access_key_id, "secret_access_key": secret_access_key})


def cloud_account_create(
    *,
    organization: Organization,
    name: str,
    regions: list[str] | None = None,
    role_arn: str = "",
    access_key_id: str = "",
    secret_access_key: str = "",
    actor: Any = None,
) -> CloudAccount:
    """Start linking an AWS account: the platform generates its ExternalId; the account stays ``pending`` until
    :func:`cloud_account_validate` succeeds."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A name is required.", fields={"name": ["Required."]})
    if CloudAccount.objects.filter(organization=organization, name__iexact=name).exists():
        raise ValidationFailed("An account with this name already exists.", fields={"name": ["Already used."]})
    role_arn = _clean_role_arn(role_arn)
    aws_account_id = _aws_account_of(role_arn)
    if (other := _already_linked(organization.pk, aws_account_id)) is not None:
        raise _already_linked_error(aws_account_id, other)
    account = CloudAccount(
        organization=organization,
        name=name,
        role_arn=role_arn,
        aws_account_id=aws_account_id,
        regions=_clean_regions(regions or []),
        encrypted_access_keys=_encrypt_keys(access_key_id, secret_access_key),
        status=CloudAccount.Status.PENDING,
    )
    try:
        with transaction.atomic():
            account.save()
            record(
                action="cloud_account.created",
                organization=organization,
                actor=actor,
                resource=account,
                after=cloud_account_snapshot(account),
            )
    except IntegrityError as exc:  # a concurrent request linked it first (the constraint decides)
        if _is_duplicate_aws_account(exc):
            raise _already_linked_error(aws_account_id, _already_linked(organization.pk, aws_account_id)) from exc
        raise
    return account


_UNSET: Any = object()


def cloud_account_update(
    *,
    account: CloudAccount,
    name: str = _UNSET,
    role_arn: str = _UNSET,
    regions: list[str] = _UNSET,
    access_key_id: str = _UNSET,
    secret_access_key: str = _UNSET,
    actor: Any = None,
) -> CloudAccount:
    """Change an account. New credentials (role or keys) put it back to ``pending`` until validated again.

    Access keys are replaced together; both empty removes them.
    """
    before = cloud_account_snapshot(account)
    credentials_changed = False
    if name is not _UNSET:
        name = (name or "").strip()
        if not name:
            raise ValidationFailed("A name is required.", fields={"name": ["Required."]})
        clash = CloudAccount.objects.filter(organization_id=account.organization_id, name__iexact=name)
        if clash.exclude(pk=account.pk).exists():
            raise ValidationFailed("An account with this name already exists.", fields={"name": ["Already used."]})
        account.name = name
    if role_arn is not _UNSET:
        cleaned = _clean_role_arn(role_arn)
        if cleaned != account.role_arn:
            credentials_changed = True
            account.aws_account_id = _aws_account_of(cleaned)
            other = _already_linked(account.organization_id, account.aws_account_id, exclude_pk=account.pk)
            if other is not None:
                raise _already_linked_error(account.aws_account_id, other)
        account.role_arn = cleaned
    if regions is not _UNSET:
        account.regions = _clean_regions(regions)
    if access_key_id is not _UNSET or secret_access_key is not _UNSET:
        account.encrypted_access_keys = _encrypt_keys(
            "" if access_key_id is _UNSET else access_key_id,
            "" if secret_access_key is _UNSET else secret_access_key,
        )
        credentials_changed = True
    if credentials_changed and account.status != CloudAccount.Status.DISABLED:
        account.status = CloudAccount.Status.PENDING
    try:
        with transaction.atomic():
            account.save()
            after = cloud_account_snapshot(account)
            if credentials_changed:
                after["credentials_changed"] = True
            record(
                action="cloud_account.updated",
                organization_id=account.organization_id,
                actor=actor,
                resource=account,
                before=before,
                after=after,
            )
    except IntegrityError as exc:
        if _is_duplicate_aws_account(exc):
            other = _already_linked(account.organization_id, account.aws_account_id, exclude_pk=account.pk)
            raise _already_linked_error(account.aws_account_id, other) from exc
        raise
    return account


def cloud_account_validate(*, account: CloudAccount, actor: Any = None) -> CloudAccount:
    """Assume the role (or use the keys) and read the caller identity.

    Success makes the account ``active`` and stores its AWS account id. Failure stores the reason as ``last_error``
    with status ``error`` (never ``active``) and raises :class:`ValidationFailed` with a message for the operator.
    """
    if not account.role_arn and not account.has_access_keys:
        raise ValidationFailed(
            "Set the role ARN (or access keys) before validating.", fields={"role_arn": ["Required to validate."]}
        )
    before = cloud_account_snapshot(account)
    try:
        session = session_for(account)
        identity = sts.caller_identity(session)
    except (cloud_errors.CloudError, DecryptionFailed) as exc:
        _validation_failed(account, reason=_validation_message(account, exc), before=before, actor=actor, cause=exc)
    role_account = account.role_arn.split(":")[4] if account.role_arn else ""
    if role_account and identity.account_id != role_account:
        reason = f"The role belongs to account {role_account} but AWS answered for account {identity.account_id}."
        _validation_failed(account, reason=reason, before=before, actor=actor)
    # The identity proves the trust policy; one read proves the permission policy is attached and the regions exist.
    try:
        enabled = {r.name for r in ec2.describe_regions(session) if r.enabled}
    except cloud_errors.CloudError as exc:
        reason = (
            "The role can be assumed but it may not read EC2 (ec2:DescribeRegions was refused): attach the "
            f"permission policy shown in the wizard. AWS said: {exc.message}"
        )
        _validation_failed(account, reason=reason, before=before, actor=actor, cause=exc)
    unknown = [r for r in account.regions if r not in enabled]
    if unknown:
        reason = f"These regions are not enabled in AWS account {identity.account_id}: {', '.join(unknown)}."
        _validation_failed(account, reason=reason, before=before, actor=actor)
    other = _already_linked(account.organization_id, identity.account_id, exclude_pk=account.pk)
    if other is not None:
        _duplicate_validation_failed(account, identity.account_id, other, before=before, actor=actor)
    warnings = interruption_intake_warnings(session, regions=account.regions or sorted(enabled))
    try:
        with transaction.atomic():
            _validated(account, identity=identity, before=before, actor=actor, warnings=warnings)
    except IntegrityError as exc:  # a concurrent validation of another link to the same AWS account won
        if not _is_duplicate_aws_account(exc):
            raise
        account.refresh_from_db()
        other = _already_linked(account.organization_id, identity.account_id, exclude_pk=account.pk)
        _duplicate_validation_failed(account, identity.account_id, other, before=before, actor=actor, cause=exc)
    return account


def _duplicate_validation_failed(
    account: CloudAccount,
    aws_account_id: str,
    other: CloudAccount | None,
    *,
    before: dict[str, Any],
    actor: Any,
    cause: Exception | None = None,
) -> NoReturn:
    error = _already_linked_error(aws_account_id, other)
    _validation_failed(
        account, reason=error.message, before=before, actor=actor, cause=cause, code=error.code, fields=error.fields
    )


def interruption_intake_warnings(session: Any, *, regions: list[str]) -> list[dict[str, str]]:
    """Per region: is the interruption queue there, readable, and do EventBridge rules deliver each of the four event
    kinds to it? Missing pieces are warnings (the account works; its interruptions are not seen) with the fix."""
    name = settings.INTERRUPTION_QUEUE_NAME
    fix = "deploy the regional CloudFormation template (Accounts → the account → interruption template) there"
    out: list[dict[str, str]] = []
    for region in regions:
        regional = session.for_region(region)
        try:
            url = sqs.queue_url(regional, name=name)
            arn = sqs.queue_arn(regional, url=url)
            patterns = events.rule_patterns(regional, names=events.rules_targeting(regional, target_arn=arn))
        except cloud_errors.NotFound:
            out.append(
                {
                    "region": region,
                    "code": "interruption_queue_missing",
                    "message": f"{region}: no SQS queue {name}, so spot interruption warnings are not seen; {fix}.",
                }
            )
            continue
        except cloud_errors.CloudError as exc:
            out.append(
                {
                    "region": region,
                    "code": "interruption_queue_unreadable",
                    "message": f"{region}: the queue {name} cannot be read ({exc.message}); attach the permission "
                    "policy shown above.",
                }
            )
            continue
        text = " ".join(patterns.values())
        missing = [
            pattern["detail-type"][0] for pattern in events.RULES.values() if pattern["detail-type"][0] not in text
        ]
        if missing:
            out.append(
                {
                    "region": region,
                    "code": "interruption_rules_missing",
                    "message": f"{region}: no EventBridge rule delivers {', '.join(missing)} to {name}; {fix}.",
                }
            )
    return out


def _validated(
    account: CloudAccount, *, identity, before: dict[str, Any], actor: Any, warnings: list[dict] | None = None
) -> None:
    with transaction.atomic():
        account.status = CloudAccount.Status.ACTIVE
        account.aws_account_id = identity.account_id
        account.last_error = ""
        account.last_validated_at = timezone.now()
        account.validation_warnings = warnings or []
        account.save(
            update_fields=[
                "status",
                "aws_account_id",
                "last_error",
                "last_validated_at",
                "validation_warnings",
                "updated_at",
            ]
        )
        record(
            action="cloud_account.validated",
            organization_id=account.organization_id,
            actor=actor,
            resource=account,
            before=before,
            after=cloud_account_snapshot(account)
            | {"caller_arn": identity.arn, "warnings": [w["message"] for w in account.validation_warnings]},
        )


def _validation_failed(
    account: CloudAccount,
    *,
    reason: str,
    before: dict[str, Any],
    actor: Any,
    cause: Exception | None = None,
    code: str = "aws_validation_failed",
    fields: dict | None = None,
) -> NoReturn:
    """Store the failure (status ``error``, ``last_error``), audit it, and raise it for the operator."""
    with transaction.atomic():
        CloudAccount.objects.filter(pk=account.pk).update(
            status=CloudAccount.Status.ERROR, last_error=reason, last_validated_at=timezone.now()
        )
        account.refresh_from_db()
        record(
            action="cloud_account.validation_failed",
            organization_id=account.organization_id,
            actor=actor,
            resource=account,
            before=before,
            after=cloud_account_snapshot(account) | {"error": reason},
        )
    raise ValidationFailed(reason, code=code, fields=fields) from cause


def _validation_message(account: CloudAccount, exc: Exception) -> str:
    if isinstance(exc, DecryptionFailed):
        return "The stored access keys cannot be decrypted (the encryption key changed). Enter them again."
    if isinstance(exc, cloud_errors.AccessDenied):
        if account.role_arn:
            return (
                f"AWS refused to let the platform assume {account.role_arn}: check that the role exists, that its "
                f"trust policy names the platform's principal and the ExternalId {account.external_id}. "
                f"AWS said: {exc.message}"
            )
        return f"AWS rejected the access keys: {exc.message}"
    if isinstance(exc, cloud_errors.Unavailable | cloud_errors.Throttled):
        return f"AWS could not be reached, try again in a minute: {exc.message}"
    return f"AWS refused the request: {exc.message}"


def cloud_account_request_sync(*, account: CloudAccount, actor: Any = None) -> None:
    """ "Sync now": audited here; discovery and inventory are queued (by the clusters app, on
    :data:`signals.cloud_account_sync_requested`) once the current transaction commits."""
    if account.status != CloudAccount.Status.ACTIVE:
        raise ValidationFailed(
            "Only active accounts can be synced: validate the account first.", code="account_not_active"
        )
    account_id = account.pk
    with transaction.atomic():
        record(
            action="cloud_account.sync_requested",
            organization_id=account.organization_id,
            actor=actor,
            resource=account,
        )
        transaction.on_commit(
            lambda: signals.cloud_account_sync_requested.send(sender=CloudAccount, account_id=account_id)
        )


def cloud_account_record_sync(*, account: CloudAccount, errors: dict[str, str], at=None) -> None:
    """Store the outcome of a discovery/inventory run: when, and the regions that failed (empty when none did).
    Routine, so not audited."""
    last_error = "; ".join(f"{region}: {message}" for region, message in sorted(errors.items()))
    CloudAccount.objects.filter(pk=account.pk).update(last_synced_at=at or timezone.now(), last_error=last_error)


def cloud_account_disable(*, account: CloudAccount, actor: Any = None) -> CloudAccount:
    """Stop discovery and sync for the account (validating again re-enables it)."""
    before = cloud_account_snapshot(account)
    with transaction.atomic():
        account.status = CloudAccount.Status.DISABLED
        account.save(update_fields=["status", "updated_at"])
        record(
            action="cloud_account.disabled",
            organization_id=account.organization_id,
            actor=actor,
            resource=account,
            before=before,
            after=cloud_account_snapshot(account),
        )
    return account


def cloud_account_delete(*, account: CloudAccount, actor: Any = None) -> None:
    """Unlink the account. Its clusters stay (with their cost history), detached and marked missing (by the
    clusters app, on :data:`signals.cloud_account_unlinking`)."""
    before = cloud_account_snapshot(account)
    with transaction.atomic():
        signals.cloud_account_unlinking.send(sender=CloudAccount, account=account, at=timezone.now())
        record(
            action="cloud_account.deleted",
            organization_id=account.organization_id,
            actor=actor,
            resource=account,
            before=before,
        )
        account.delete()


# --- Organizations and users as the platform's administrators manage them --------------------------------------------


def organization_snapshot(organization: Organization) -> dict[str, Any]:
    return {"id": organization.pk, "name": organization.name, "owner_id": organization.owner_id}


def _clean_organization_name(name: Any) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ValidationFailed("An organization needs a name of 1 to 200 characters.", fields={"name": ["Required."]})
    return name


def organization_create(*, name: str, actor: Any = None) -> Organization:
    """Create an organization without users (signup creates one with its owner)."""
    name = _clean_organization_name(name)
    with transaction.atomic():
        organization = Organization.objects.create(name=name)
        record(
            action=OrganizationAction.CREATED,
            organization=organization,
            actor=actor,
            resource=organization,
            after=organization_snapshot(organization),
        )
    return organization


def organization_update(
    *, organization: Organization, name: str = _UNSET, owner: User | None = _UNSET, actor: Any = None
) -> Organization:
    """Rename an organization or change its owner, who must be one of its users."""
    before = organization_snapshot(organization)
    if name is not _UNSET:
        organization.name = _clean_organization_name(name)
    if owner is not _UNSET:
        if owner is not None and owner.organization_id != organization.pk:
            raise ValidationFailed(
                "The owner must be a user of the organization.", fields={"owner": ["Not a user of this organization."]}
            )
        organization.owner = owner
    after = organization_snapshot(organization)
    if after == before:
        return organization
    with transaction.atomic():
        organization.save(update_fields=["name", "owner"])
        record(
            action=OrganizationAction.UPDATED,
            organization=organization,
            actor=actor,
            resource=organization,
            before=before,
            after=after,
        )
    return organization


def _user_state(user: User) -> dict[str, Any]:
    return user_snapshot(user) | {"is_active": user.is_active}


def _clean_email(email: Any, *, exclude_pk: int | None = None) -> str:
    email = User.objects.normalize_email(email if isinstance(email, str) else "").strip().lower()
    if not email or "@" not in email or len(email) > 254:
        raise ValidationFailed("A valid email address is required.", fields={"email": ["Enter a valid email."]})
    taken = User.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationFailed("A user with this email already exists.", fields={"email": ["Already registered."]})
    return email


def _check_role(role: Any, organization: Organization | None) -> None:
    if role not in User.Role.values:
        raise ValidationFailed("Unknown role.", fields={"role": [f"One of: {', '.join(User.Role.values)}."]})
    if role == User.Role.CLIENT and organization is None:
        raise ValidationFailed(
            "A client user belongs to an organization.", fields={"organization": ["Required for a client."]}
        )


def _apply_role(user: User) -> None:
    """Django admin's own flags follow the role: a super admin is staff and superuser, a client neither."""
    user.is_staff = user.is_superuser = user.role == User.Role.SUPER_ADMIN


def user_create(
    *,
    email: str,
    password: str,
    role: str = User.Role.CLIENT,
    organization: Organization | None = None,
    full_name: str = "",
    actor: Any = None,
) -> User:
    """Create a user in an existing organization (a client) or a platform super admin. The password must pass the
    password rules."""
    email = _clean_email(email)
    _check_role(role, organization)
    user = User(email=email, full_name=(full_name or "").strip(), role=role, organization=organization)
    _validate_password(password, user)
    _apply_role(user)
    with transaction.atomic():
        user.set_password(password)
        user.password_changed_at = timezone.now()
        user.save()
        record(
            action=UserAction.CREATED,
            organization_id=user.organization_id,
            actor=actor,
            resource=user,
            after=_user_state(user),
        )
    return user


def user_update(
    *,
    user: User,
    email: str = _UNSET,
    full_name: str = _UNSET,
    role: str = _UNSET,
    organization: Organization | None = _UNSET,
    is_active: bool = _UNSET,
    actor: Any = None,
) -> User:
    """Change a user's profile, role, organization or whether it may log in. Deactivating a user revokes its
    refresh tokens. The platform always keeps an active super admin, and nobody demotes or deactivates themselves."""
    before = _user_state(user)
    if email is not _UNSET:
        user.email = _clean_email(email, exclude_pk=user.pk)
    if full_name is not _UNSET:
        user.full_name = (full_name or "").strip()[:200]
    if role is not _UNSET:
        user.role = role
    if organization is not _UNSET:
        if before["organization_id"] is not None and getattr(organization, "pk", None) != before["organization_id"]:
            if Organization.objects.filter(pk=before["organization_id"], owner=user).exists():
                raise ValidationFailed(
                    "The user owns its organization: give the organization another owner first.",
                    fields={"organization": ["Owner of its organization."]},
                )
        user.organization = organization
    if is_active is not _UNSET:
        user.is_active = bool(is_active)
    _check_role(user.role, user.organization)
    losing_admin = before["role"] == User.Role.SUPER_ADMIN and (
        user.role != User.Role.SUPER_ADMIN or (before["is_active"] and not user.is_active)
    )
    if losing_admin:
        if actor is not None and getattr(actor, "pk", None) == user.pk:
            raise ValidationFailed(
                "You cannot remove your own administrator access.", fields={"role": ["Ask another super admin."]}
            )
        others = User.objects.filter(role=User.Role.SUPER_ADMIN, is_active=True).exclude(pk=user.pk)
        if not others.exists():
            raise ValidationFailed(
                "The platform needs at least one active super admin.", fields={"role": ["The last super admin."]}
            )
    after = _user_state(user)
    if after == before:
        return user
    _apply_role(user)
    with transaction.atomic():
        user.save()
        revoked = _blacklist_all(user) if before["is_active"] and not user.is_active else 0
        record(
            action=UserAction.UPDATED,
            organization_id=user.organization_id,
            actor=actor,
            resource=user,
            before=before,
            after=after | ({"revoked_refresh_tokens": revoked} if revoked else {}),
        )
    return user
