"""Build ``cloud`` sessions for linked accounts: the bridge from Django settings and models to ``cloud``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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


_shared: dict[tuple, AccountSession] | None = None
_shared_lock = threading.Lock()


@contextmanager
def shared_sessions() -> Iterator[None]:
    """Within this block, :func:`session_for` hands out one session per account, region and credentials in the whole
    process instead of a new one per call: the role is assumed once and each client built once (building a boto3
    client costs tens of milliseconds of CPU; a session refreshes its assumed credentials before they expire). For
    long-running processes that call AWS for many jobs, such as the interruption queue consumer."""
    global _shared
    with _shared_lock:
        outer, _shared = _shared, ({} if _shared is None else _shared)
    try:
        yield
    finally:
        with _shared_lock:
            _shared = outer


def session_for(account: CloudAccount, region: str | None = None) -> AccountSession:
    """A session acting as ``account`` in ``region`` (its first region by default)."""
    region = region or (account.regions[0] if account.regions else settings.AWS_DEFAULT_REGION)
    credentials = credentials_for(account)
    endpoint = settings.AWS_ENDPOINT_URL or ""
    key = (account.pk, region, credentials, endpoint, settings.AWS_RETRY_MODE)
    with _shared_lock:
        cache = _shared
        if cache is not None and key in cache:
            return cache[key]
    session = AccountSession.open(credentials, region=region, endpoint_url=endpoint, retry_mode=settings.AWS_RETRY_MODE)
    if cache is not None:
        with _shared_lock:
            session = cache.setdefault(key, session)
    return session
