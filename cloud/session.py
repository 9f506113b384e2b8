"""Sessions per linked account and region, and the one wrapper every AWS call goes through.

``AccountSession`` turns the credentials of a linked account (a role to assume with its ExternalId, access keys, or
the platform's own default credential chain) into boto3 clients for one region. All clients share:

* an endpoint override (``endpoint_url`` or the ``AWS_ENDPOINT_URL`` environment variable), so the embedded default
  and the tests can point everything at moto's server;
* botocore's retry configuration (``standard`` mode by default, ``adaptive`` on request) for transient network and
  throttling errors inside one call;
* :func:`call`, our own wrapper that retries throttling with exponential backoff and jitter once botocore gives up,
  and maps every botocore error to :mod:`cloud.errors`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from cloud import errors
from cloud.types import TemporaryCredentials

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
SESSION_NAME = "spot-optimizer"
#: Re-assume the role when the temporary credentials have less than this left.
CREDENTIALS_REFRESH_MARGIN = timedelta(minutes=5)


def endpoint_url_from_env() -> str | None:
    """The endpoint override from the environment (empty means real AWS)."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class AwsCredentials:
    """How to reach one AWS account.

    Exactly one of: a role (``role_arn`` + ``external_id``, assumed from the platform's own identity or from the access
    keys if given), access keys alone, or nothing (the platform's default credential chain).
    """

    role_arn: str = ""
    external_id: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    @property
    def uses_role(self) -> bool:
        return bool(self.role_arn)

    @property
    def uses_keys(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


@dataclass(frozen=True)
class RetryPolicy:
    """Our own retries on throttling, on top of botocore's."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given (1-based) failed attempt."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


DEFAULT_RETRY = RetryPolicy()


class AccountSession:
    """boto3 clients for one account in one region.

    Build it with :meth:`open`; call :meth:`for_region` to reuse the same (assumed) credentials in another region.
    """

    def __init__(
        self,
        *,
        credentials: AwsCredentials,
        region: str,
        endpoint_url: str | None,
        retry_mode: str,
        retry: RetryPolicy,
        base_session: boto3.Session,
        assumed: TemporaryCredentials | None = None,
        max_attempts: int = 5,
    ) -> None:
        self.max_attempts = max_attempts
        self.credentials = credentials
        self.region = region
        self.endpoint_url = endpoint_url
        self.retry_mode = retry_mode
        self.retry = retry
        self._base = base_session
        self._assumed = assumed
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        credentials: AwsCredentials | None = None,
        *,
        region: str = DEFAULT_REGION,
        endpoint_url: str | None = None,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> AccountSession:
        """A session for ``credentials`` in ``region``; assumes the role (if any) lazily on first use."""
        credentials = credentials or AwsCredentials()
        if credentials.uses_keys:
            base = boto3.Session(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token or None,
                region_name=region,
            )
        else:
            base = boto3.Session(region_name=region)
        return cls(
            credentials=credentials,
            region=region,
            # "" means "no override" explicitly (real AWS, or moto's in-process mock), None means "from the env".
            endpoint_url=(endpoint_url if endpoint_url is not None else endpoint_url_from_env()) or None,
            retry_mode=retry_mode,
            max_attempts=max_attempts,
            retry=retry,
            base_session=base,
        )

    def for_region(self, region: str) -> AccountSession:
        """The same account in another region, reusing assumed credentials (the role is assumed once, here if it
        was not yet, rather than once per region)."""
        if region == self.region:
            return self
        if self.credentials.uses_role:
            self.assumed_credentials()
        return AccountSession(
            credentials=self.credentials,
            region=region,
            endpoint_url=self.endpoint_url,
            retry_mode=self.retry_mode,
            max_attempts=self.max_attempts,
            retry=self.retry,
            base_session=self._base,
            assumed=self._assumed,
        )

    # -- clients ---------------------------------------------------------------------------------------------------

    def _config(self) -> Config:
        return Config(
            retries={"mode": self.retry_mode, "max_attempts": self.max_attempts},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra="spot-optimizer",
        )

    def base_client(self, service: str, *, region: str | None = None) -> Any:
        """A client with the base credentials (used to call STS AssumeRole itself)."""
        return self._base.client(
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            config=self._config(),
        )

    def client(self, service: str, *, region: str | None = None) -> Any:
        """A (cached) client for ``service`` acting as the linked account."""
        region = region or self.region
        key = f"{service}:{region}"
        with self._lock:
            if self.credentials.uses_role and self._credentials_expiring():
                self._assumed = self._assume()
                self._clients.clear()
            if key not in self._clients:
                self._clients[key] = self._make_client(service, region)
            return self._clients[key]

    def _make_client(self, service: str, region: str) -> Any:
        if not self.credentials.uses_role:
            return self.base_client(service, region=region)
        assert self._assumed is not None
        return boto3.Session(
            aws_access_key_id=self._assumed.access_key_id,
            aws_secret_access_key=self._assumed.secret_access_key,
            aws_session_token=self._assumed.session_token,
            region_name=region,
        ).client(service, region_name=region, endpoint_url=self.endpoint_url, config=self._config())

    def _credentials_expiring(self) -> bool:
        if self._assumed is None:
            return True
        if self._assumed.expiration is None:
            return False
        return self._assumed.expiration - CREDENTIALS_REFRESH_MARGIN <= datetime.now(UTC)

    def _assume(self) -> TemporaryCredentials:
        from cloud.sts import assume_role  # local import: sts uses this module

        return assume_role(
            self.base_client("sts"),
            role_arn=self.credentials.role_arn,
            external_id=self.credentials.external_id,
            retry=self.retry,
        )

    def assumed_credentials(self) -> TemporaryCredentials | None:
        """Assume the role now (if there is one) and return the temporary credentials."""
        if not self.credentials.uses_role:
            return None
        self.client("sts")
        return self._assumed

    def with_retry(self, retry: RetryPolicy) -> AccountSession:
        """The same session with another throttling retry policy (tests use one that does not sleep)."""
        return AccountSession(
            credentials=self.credentials,
            region=self.region,
            endpoint_url=self.endpoint_url,
            retry_mode=self.retry_mode,
            max_attempts=self.max_attempts,
            retry=retry,
            base_session=self._base,
            assumed=self._assumed,
        )


# -- the call wrapper --------------------------------------------------------------------------------------------

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "OptInRequired",
        "InvalidIdentityToken",
        "RegionDisabledException",
        "NotAuthorized",
    }
)
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacityOnHost",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "MaxSpotFleetRequestCountExceeded",
        "UnfulfillableCapacity",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
    }
)


def map_client_error(exc: ClientError, *, service: str = "", operation: str = "") -> errors.CloudError:
    """Translate a botocore ``ClientError`` into the product's exception."""
    err = exc.response.get("Error", {}) or {}
    code = str(err.get("Code", "") or "")
    message = str(err.get("Message", "") or code or "AWS error")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    operation = operation or getattr(exc, "operation_name", "") or ""
    kwargs = {"code": code, "operation": operation, "service": service}
    if code in THROTTLING_CODES or status == 429:
        return errors.Throttled(message, **kwargs)
    if code in ACCESS_DENIED_CODES or status == 403:
        return errors.AccessDenied(message, **kwargs)
    if code in CAPACITY_CODES:
        return errors.InsufficientCapacity(message, **kwargs)
    if code.endswith(("NotFound", ".NotFound")) or code in (
        "ResourceNotFoundException",
        "NoSuchEntity",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    ):
        return errors.NotFound(message, **kwargs)
    if status == 404 or code in ("404", "NotImplemented", "ServiceUnavailable", "InternalError", "InternalFailure"):
        return errors.Unavailable(message, **kwargs)
    if status >= 500:
        return errors.Unavailable(message, **kwargs)
    return errors.InvalidRequest(message, **kwargs)


def _service_of(client: Any) -> str:
    try:
        return str(client.meta.service_model.service_name)
    except AttributeError:  # pragma: no cover - stubs without meta
        return ""


def call(client: Any, operation: str, /, *, retry: RetryPolicy = DEFAULT_RETRY, **params: Any) -> dict[str, Any]:
    """Call ``client.<operation>(**params)``; retry throttling with backoff; map errors to :mod:`cloud.errors`."""
    service = _service_of(client)
    method = getattr(client, operation)
    attempt = 0
    while True:
        attempt += 1
        try:
            return method(**params)
        except ClientError as exc:
            mapped = map_client_error(exc, service=service, operation=operation)
            if isinstance(mapped, errors.Throttled) and attempt < retry.attempts:
                delay = retry.delay(attempt)
                logger.info("AWS throttled %s:%s, retry %d in %.2fs", service, operation, attempt, delay)
                retry.sleep(delay)
                continue
            raise mapped from exc
        except NoCredentialsError as exc:
            raise errors.AccessDenied("no AWS credentials available", operation=operation, service=service) from exc
        except ParamValidationError as exc:
            raise errors.InvalidRequest(str(exc), operation=operation, service=service) from exc
        except BotoConnectionError as exc:
            raise errors.Unavailable(f"cannot reach AWS: {exc}", operation=operation, service=service) from exc
        except BotoCoreError as exc:
            raise errors.CloudError(str(exc), operation=operation, service=service) from exc


def paginate(
    client: Any,
    operation: str,
    /,
    *,
    result_key: str,
    cursor_param: str = "NextToken",
    cursor_key: str = "NextToken",
    retry: RetryPolicy = DEFAULT_RETRY,
    **params: Any,
) -> Iterator[Any]:
    """Yield the items of every page; each page is one :func:`call` (so throttling retries one page, not all)."""
    seen: set[str] = set()
    while True:
        page = call(client, operation, retry=retry, **params)
        yield from page.get(result_key, []) or []
        token = page.get(cursor_key)
        if not token or token in seen:  # a repeated token would loop forever
            return
        seen.add(token)
        params = {**params, cursor_param: token}


__all__ = [
    "DEFAULT_RETRY",
    "AccountSession",
    "AwsCredentials",
    "RetryPolicy",
    "call",
    "endpoint_url_from_env",
    "map_client_error",
    "paginate",
]
