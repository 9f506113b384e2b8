"""Sign up through the console, log out, log in again and see the dashboard."""

from __future__ import annotations

import pytest

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_signup_logout_login_reaches_dashboard(page):
    page.goto("/signup/")
    page.fill("input[name=organization_name]", "Browser Co")
    page.fill("input[name=full_name]", "Dana Ops")
    page.fill("input[name=email]", "dana@browser.test")
    page.fill("input[name=password]", "Browser-Test-Pass-9")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "dana@browser.test" in page.get_by_test_id("current-user").inner_text()
    assert User.objects.get(email="dana@browser.test").organization.name == "Browser Co"

    page.click("text=Log out")
    page.wait_for_url("**/login/")

    page.fill("input[name=email]", "dana@browser.test")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "Invalid email or password." in page.locator(".errors").inner_text()

    page.fill("input[name=email]", "dana@browser.test")
    page.fill("input[name=password]", "Browser-Test-Pass-9")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Dashboard"
    nav = page.locator("nav.nav").inner_text()
    for item in ("Dashboard", "Accounts", "Clusters", "Templates", "Hibernation", "Optimization", "Audit", "Lab"):
        assert item in nav


def test_dashboard_requires_login(page):
    page.goto("/")
    page.wait_for_url("**/login/?next=/")
    assert page.locator("h1").inner_text() == "Log in"


def test_console_pages_run_under_the_content_security_policy(page, user):
    """The console works with its Content-Security-Policy on: no page reports a violation (an inline script or style,
    or anything loaded from another host), and htmx still swaps in partials."""
    from tests.factories import DEFAULT_PASSWORD

    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)

    response = page.goto("/login/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    for path in ("/", "/accounts/", "/clusters/", "/templates/", "/agents/", "/audit/", "/account/password/"):
        response = page.goto(path)
        assert response.status == 200, path
        assert response.headers["cache-control"] == "no-store", path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    # htmx is loaded and running (its script is same-origin, so the policy allows it).
    assert page.evaluate("typeof htmx !== 'undefined' && htmx.config.includeIndicatorStyles === false")
    assert violations == []
