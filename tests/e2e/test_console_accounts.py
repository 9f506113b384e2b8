"""Link an AWS account through the console wizard (moto behind it) and see its discovered cluster."""

from __future__ import annotations

import pytest

from accounts.models import CloudAccount
from tests.aws_fixtures import ROLE_ARN, create_eks_cluster
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_link_wizard_validates_and_syncs(page, aws, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    user = UserFactory(email="ops@wizard.test")
    create_eks_cluster("us-east-1", "alpha")

    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.goto("/accounts/")
    page.fill("input[name=name]", "production")
    page.fill("input[name=regions]", "us-east-1")
    page.click("button:text('Create')")
    page.wait_for_url("**/accounts/*/")
    account = CloudAccount.objects.get(name="production")
    assert page.get_by_test_id("external-id").inner_text() == account.external_id
    assert account.external_id in page.get_by_test_id("trust-policy").inner_text()
    assert page.get_by_test_id("account-status").inner_text() == "pending"

    page.fill("input[name=role_arn]", ROLE_ARN)
    page.click("button:text('Save')")
    page.click("button:text('Validate')")
    page.wait_for_selector("text=Linked: AWS account 111122223333")
    assert page.get_by_test_id("account-status").inner_text() == "active"

    page.click("button:text('Sync now')")
    page.wait_for_selector("text=Sync queued")
    page.goto("/clusters/")
    assert "alpha" in page.locator("#cluster-rows").inner_text()
