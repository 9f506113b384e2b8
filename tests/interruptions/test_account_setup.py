"""Linking an account: the regional template (deployed with CloudFormation in the simulated AWS), the role's
permissions for the queue, and validation warning per region when the queue or its rules are missing."""

from __future__ import annotations

import json

import pytest

from accounts import aws_policies
from accounts.services import cloud_account_validate
from tests.factories import OrganizationFactory

from .conftest import link

pytestmark = pytest.mark.django_db(transaction=True)

A = "333333333333"


def test_the_regional_template_deploys_a_queue_and_the_four_rules(aws):
    a = aws(A)
    template = json.loads(aws_policies.interruption_queue_template())
    kinds = {
        r["Properties"]["EventPattern"]["detail-type"][0] for r in template["Resources"].values() if "Rule" in r["Type"]
    }
    assert kinds == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
    }
    a.client("cloudformation", "us-east-1").create_stack(
        StackName="spotopt-interruptions", TemplateBody=json.dumps(template)
    )
    assert a.queue_url("us-east-1").endswith("/spotopt-interruptions")
    rules = a.client("events", "us-east-1").list_rules(NamePrefix="spotopt-")["Rules"]
    assert len(rules) == 4


def test_the_role_may_read_and_delete_on_the_queue_and_nothing_more():
    statements = {s["Sid"]: s for s in json.loads(aws_policies.as_json(aws_policies.permission_policy()))["Statement"]}
    queue = statements["ReadInterruptionQueue"]
    assert sorted(queue["Action"]) == sorted(
        ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
    )
    assert queue["Resource"] == "arn:aws:sqs:*:*:spotopt-interruptions"


def test_validate_warns_per_region_when_the_queue_or_its_rules_are_missing(aws):
    a = aws(A)
    a.client("cloudformation", "us-east-1").create_stack(
        StackName="spotopt-interruptions", TemplateBody=aws_policies.interruption_queue_template()
    )
    a.create_queue("eu-west-1")  # a queue without its rules
    account = link(OrganizationFactory(), a, ["us-east-1", "eu-west-1", "eu-central-1"])

    account = cloud_account_validate(account=account)

    assert account.status == "active"
    warnings = {w["region"]: w for w in account.validation_warnings}
    assert set(warnings) == {"eu-west-1", "eu-central-1"}
    assert warnings["eu-west-1"]["code"] == "interruption_rules_missing"
    assert "EC2 Spot Instance Interruption Warning" in warnings["eu-west-1"]["message"]
    assert warnings["eu-central-1"]["code"] == "interruption_queue_missing"
    assert "regional CloudFormation template" in warnings["eu-central-1"]["message"]


def test_the_account_page_offers_the_regional_template(client, aws):
    from tests.factories import UserFactory

    org = OrganizationFactory()
    account = link(org, aws(A), ["us-east-1"])
    client.force_login(UserFactory(organization=org))
    page = client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'data-testid="interruption-template"' in page
    download = client.get(f"/accounts/{account.pk}/interruption-template")
    assert download.status_code == 200
    assert json.loads(download.content)["Resources"]["InterruptionQueue"]["Type"] == "AWS::SQS::Queue"
