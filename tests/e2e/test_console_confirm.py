"""Destructive console forms ask before they submit, under the Content-Security-Policy (no inline handlers)."""

from __future__ import annotations

import pytest

from templates_app.models import NodeTemplate
from tests.factories import DEFAULT_PASSWORD, NodeTemplateFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_deleting_a_template_asks_first_and_dismissing_keeps_it(page):
    user = UserFactory()
    NodeTemplateFactory(organization=user.organization, name="spare", is_default=False)
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto("/templates/")
    page.get_by_role("button", name="Delete").first.click()
    page.wait_for_timeout(300)
    assert asked == ["Delete spare?"]
    assert NodeTemplate.objects.filter(name="spare").exists()

    page.remove_listener("dialog", dismiss)
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Delete").first.click()
    assert not NodeTemplate.objects.filter(name="spare").exists()
