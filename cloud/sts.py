"""STS: assume the customer's role with its ExternalId, and read who we are."""

from __future__ import annotations

from typing import Any

from cloud.session import DEFAULT_RETRY, SESSION_NAME, AccountSession, RetryPolicy, call
from cloud.types import CallerIdentity, TemporaryCredentials


def assume_role(
    sts_client: Any,
    *,
    role_arn: str,
    external_id: str,
    session_name: str = SESSION_NAME,
    duration_seconds: int = 3600,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> TemporaryCredentials:
    """``sts:AssumeRole`` with the ExternalId the platform generated for the account."""
    params: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id:
        params["ExternalId"] = external_id
    creds = call(sts_client, "assume_role", retry=retry, **params)["Credentials"]
    return TemporaryCredentials(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        expiration=creds.get("Expiration"),
    )


def caller_identity(session: AccountSession) -> CallerIdentity:
    """``sts:GetCallerIdentity`` as the linked account (assuming its role first, if it has one)."""
    data = call(session.client("sts"), "get_caller_identity", retry=session.retry)
    return CallerIdentity(account_id=data["Account"], arn=data["Arn"], user_id=data["UserId"])
