"""The node template form's live preview follows the operator's edits (htmx), and the template saves."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from templates_app.models import NodeTemplate
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_live_preview_follows_the_form_and_saves(page):
    call_command("load_pricing_snapshot", region=["us-east-1"], stdout=io.StringIO())
    user = UserFactory()
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.goto("/templates/new/")
    page.fill("input[name=name]", "web")
    # Typing (no submit) refreshes the preview: wait until every listed type is a c7i.
    page.locator("input[name=include_families]").press_sequentially("c7i")
    page.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('#preview tbody tr td:first-child')];
            return rows.length > 0 && rows.every(td => td.innerText.startsWith('c7i.'));
        }"""
    )
    c7i = int(page.get_by_test_id("preview-count").locator("strong").inner_text())
    assert c7i > 0

    page.locator("input[name=include_families]").press_sequentially(", m7i")
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=preview-count] strong').innerText) > n", arg=c7i
    )
    assert "m7i." in page.locator("#preview table").inner_text()

    page.click("#template-form button[type=submit]")
    page.wait_for_url("**/templates/")
    assert page.get_by_test_id("default-badge").count() == 1
    template = NodeTemplate.objects.get(organization=user.organization)
    assert template.instance_families["include"] == ["c7i", "m7i"]
