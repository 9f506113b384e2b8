"""Typed functions over boto3: the only place in the product that talks to AWS.

This package imports no Django and no app: it takes plain parameters (credentials, region, endpoint URL) and returns
frozen dataclasses from :mod:`cloud.types`. Errors are :mod:`cloud.errors` exceptions.

Usage::

    from cloud import AccountSession, AwsCredentials, ec2

    session = AccountSession.open(AwsCredentials(role_arn=..., external_id=...), region="eu-west-1")
    for instance in ec2.describe_cluster_instances(session, cluster_name="prod"):
        ...
"""

from cloud import autoscaling, ec2, eks, errors, events, pricing, sqs, sts
from cloud.session import AccountSession, AwsCredentials, RetryPolicy, call, paginate

__all__ = [
    "AccountSession",
    "AwsCredentials",
    "RetryPolicy",
    "autoscaling",
    "call",
    "ec2",
    "eks",
    "errors",
    "events",
    "paginate",
    "pricing",
    "sqs",
    "sts",
]
