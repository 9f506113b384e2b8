"""The IAM documents an operator pastes when linking an account: trust policy, permission policy, CloudFormation."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from cloud.events import RULES as INTERRUPTION_RULES

ROLE_NAME = "SpotOptimizer"

#: Everything the platform does in a linked account, and nothing more. Reads are Describe/List; writes are limited to
#: launching, tagging and terminating instances and resizing node groups / Auto Scaling groups.
PERMISSIONS: list[dict[str, Any]] = [
    {
        "Sid": "Discover",
        "Effect": "Allow",
        "Action": [
            "ec2:DescribeRegions",
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeSubnets",
            "ec2:DescribeImages",
            "eks:ListClusters",
            "eks:DescribeCluster",
            "eks:ListNodegroups",
            "eks:DescribeNodegroup",
            "autoscaling:DescribeAutoScalingGroups",
            "pricing:GetProducts",
        ],
        "Resource": "*",
    },
    {
        "Sid": "Launch",
        "Effect": "Allow",
        "Action": ["ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateTags"],
        "Resource": "*",
    },
    {
        "Sid": "PassNodeRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": "*",
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    },
    {
        "Sid": "ReadInterruptionQueue",
        "Effect": "Allow",
        "Action": ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
        "Resource": "arn:aws:sqs:*:*:spotopt-interruptions",
    },
    {
        "Sid": "DescribeInterruptionRules",
        "Effect": "Allow",
        "Action": ["events:ListRuleNamesByTarget", "events:DescribeRule"],
        "Resource": "*",
    },
    {
        "Sid": "ScaleAndTerminate",
        "Effect": "Allow",
        "Action": [
            "ec2:TerminateInstances",
            "eks:UpdateNodegroupConfig",
            "autoscaling:SetDesiredCapacity",
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:DetachInstances",
        ],
        "Resource": "*",
    },
]


def platform_principal() -> str:
    return settings.PLATFORM_AWS_PRINCIPAL


def trust_policy(external_id: str) -> dict[str, Any]:
    """The role's trust policy: only the platform's principal, and only with this account's ExternalId."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": platform_principal()},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def permission_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": PERMISSIONS}


def cloudformation_template(external_id: str) -> str:
    """A CloudFormation template (JSON is valid YAML) that creates the role with both policies."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Cross-account role for Spot Optimizer",
        "Parameters": {
            "RoleName": {"Type": "String", "Default": ROLE_NAME},
            "ExternalId": {"Type": "String", "Default": external_id, "NoEcho": False},
            "PlatformPrincipal": {"Type": "String", "Default": platform_principal()},
        },
        "Resources": {
            "SpotOptimizerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Ref": "PlatformPrincipal"}},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
                            }
                        ],
                    },
                    "Policies": [{"PolicyName": "SpotOptimizer", "PolicyDocument": permission_policy()}],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["SpotOptimizerRole", "Arn"]}}},
    }
    return json.dumps(template, indent=2)


def interruption_queue_template(queue_name: str | None = None) -> str:
    """The regional CloudFormation template, deployed once per enabled region (or as a StackSet): the interruption
    queue (short retention, encrypted) and the EventBridge rules that deliver EC2's spot interruption warnings,
    rebalance recommendations, state changes and AWS Health scheduled changes to it."""
    name = queue_name or settings.INTERRUPTION_QUEUE_NAME
    resources: dict[str, Any] = {
        "InterruptionQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Ref": "QueueName"},
                "MessageRetentionPeriod": 300,
                "SqsManagedSseEnabled": True,
            },
        },
        "InterruptionQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "InterruptionQueue"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["InterruptionQueue", "Arn"]},
                        }
                    ],
                },
            },
        },
    }
    for suffix, pattern in INTERRUPTION_RULES.items():
        logical = "".join(part.title() for part in suffix.split("-")) + "Rule"
        resources[logical] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": f"spotopt-{suffix}",
                "EventPattern": pattern,
                "Targets": [{"Id": "interruption-queue", "Arn": {"Fn::GetAtt": ["InterruptionQueue", "Arn"]}}],
            },
        }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Spot Optimizer interruption queue and EventBridge rules (deploy in every enabled region)",
        "Parameters": {"QueueName": {"Type": "String", "Default": name}},
        "Resources": resources,
        "Outputs": {"QueueUrl": {"Value": {"Ref": "InterruptionQueue"}}},
    }
    return json.dumps(template, indent=2)


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)
