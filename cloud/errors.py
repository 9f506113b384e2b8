"""The product's own AWS errors.

Everything in ``cloud`` raises these instead of botocore exceptions, so that callers (services, tasks) can decide what
to do without knowing boto3: retry later (``Throttled``, ``Unavailable``), fall back to on-demand
(``InsufficientCapacity``), tell the operator to fix the role (``AccessDenied``), or treat the object as gone
(``NotFound``).
"""

from __future__ import annotations


class CloudError(Exception):
    """Base class for every error raised by the ``cloud`` package."""

    #: Whether trying the same call again later may succeed.
    transient: bool = False

    def __init__(self, message: str, *, code: str = "", operation: str = "", service: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # the AWS error code, e.g. "UnauthorizedOperation"
        self.operation = operation  # e.g. "DescribeInstances"
        self.service = service  # e.g. "ec2"

    def __str__(self) -> str:
        where = f"{self.service}:{self.operation}" if self.operation else self.service
        prefix = f"{where} " if where else ""
        code = f"[{self.code}] " if self.code else ""
        return f"{prefix}{code}{self.message}"


class AccessDenied(CloudError):
    """The credentials are missing, invalid, or the role does not allow the call (or refuses our ExternalId)."""


class NotFound(CloudError):
    """The named AWS resource (cluster, node group, instance, ...) does not exist."""


class Throttled(CloudError):
    """AWS kept throttling the call after our retries were exhausted."""

    transient = True


class InsufficientCapacity(CloudError):
    """AWS has no capacity for the requested instance type / zone / purchase option right now."""

    transient = True


class InvalidRequest(CloudError):
    """AWS rejected the parameters of the call."""


class Unavailable(CloudError):
    """The endpoint could not be reached, or the service is not implemented there (moto's Pricing API)."""

    transient = True
