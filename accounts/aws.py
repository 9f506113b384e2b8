"""Build ``cloud`` sessions for linked accounts: the bridge from Django settings and models to ``cloud``."""

from __future__ import annotations

from django.conf import settings

from cloud import AccountSession, AwsCredentials

from .crypto import decrypt_json
from .models import CloudAccount


def credentials_for(account: CloudAccount) -> AwsCredentials:
    """The account's role (with its ExternalId), its decrypted access keys, or both (keys used to assume the role)."""
    keys = decrypt_json(account.encrypted_access_keys) if account.encrypted_access_keys else {}
    return AwsCredentials(
        role_arn=account.role_arn,
        external_id=account.external_id if account.role_arn else "",
        access_key_id=keys.get("access_key_id", ""),
        secret_access_key=keys.get("secret_access_key", ""),
    )


def session_for(account: CloudAccount, region: str | None = None) -> AccountSession:
    """A session acting as ``account`` in ``region`` (its first region by default)."""
    region = region or (account.regions[0] if account.regions else settings.AWS_DEFAULT_REGION)
    return AccountSession.open(
        credentials_for(account),
        region=region,
        endpoint_url=settings.AWS_ENDPOINT_URL or "",
        retry_mode=settings.AWS_RETRY_MODE,
    )
