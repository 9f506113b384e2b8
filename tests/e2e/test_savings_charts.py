"""The savings charts render in a real browser under the Content-Security-Policy: Chart.js (vendored) draws each
chart from the table that carries its data, the tables fold under "Show as table", and nothing is refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from savings.services import hibernation_entry, ledger_open, record_costs
from tests.factories import DEFAULT_PASSWORD, ClusterFactory, UserFactory
from tests.savings.conftest import add_nodes, catalog  # noqa: F401 - the exact-price catalog fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, user) -> None:
    page.goto("/login/")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_dashboard_cluster_and_reports_charts_render(page, catalog):  # noqa: F811
    user = UserFactory()
    cluster = ClusterFactory(organization=user.organization, region="us-east-1", name="shop")
    add_nodes(cluster, "m5.large", 2)
    add_nodes(cluster, "m5.large", 2, spot=True)
    now = timezone.now()
    ledger_open(
        cluster=cluster,
        source="job",
        action_type="t",
        action_id="1",
        projected_hourly="0.12",
        spot_hourly="0.112",
        at=now - timedelta(days=3),
    )
    hibernation_entry(
        cluster=cluster,
        period_id=1,
        asleep_at=now - timedelta(days=2, hours=10),
        waking_at=now - timedelta(days=2),
        hourly_cost=Decimal("0.2"),
        node_count=4,
    )
    for h in (72, 48, 24, 1):
        record_costs(at=now - timedelta(hours=h))

    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    _login(page, user)
    page.wait_for_selector("canvas[data-chart-ready]")
    assert page.locator("#savings-overview canvas[data-chart-ready]").count() == 3
    # drawn pixels, not an empty canvas
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('#savings-overview canvas')).map(c => {
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })"""
    )
    assert all(n > 100 for n in drawn), drawn
    # the data stays readable as a table
    table = page.locator('[data-testid="chart-savings"]')
    assert not table.is_visible()
    page.locator("#savings-overview summary").nth(1).click()
    assert table.is_visible() and "hibernation" in table.inner_text().lower()

    # the 30 s refresh swaps the partial in again (htmx) and the charts are drawn anew
    page.evaluate("document.querySelector('#savings-overview').dataset.marker = 'old'")
    page.evaluate("htmx.ajax('GET', '/reports/overview', {target: '#savings-overview', swap: 'outerHTML'})")
    page.wait_for_function(
        "() => { const o = document.querySelector('#savings-overview');"
        " return o && !o.dataset.marker && o.querySelectorAll('canvas[data-chart-ready]').length === 3; }"
    )

    page.goto(f"/clusters/{cluster.pk}/")
    page.wait_for_selector('[data-testid="savings-panel"] canvas[data-chart-ready]')
    page.goto("/reports/")
    page.wait_for_selector("canvas[data-chart-ready]")
    assert refused == []


def test_without_javascript_the_figures_are_tables(browser, live_server, catalog):  # noqa: F811
    user = UserFactory()
    cluster = ClusterFactory(organization=user.organization, region="us-east-1")
    add_nodes(cluster, "m5.large", 1)
    record_costs(at=timezone.now())
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    _login(page, user)
    assert page.locator('[data-testid="chart-cost"]').is_visible()
    assert page.locator("canvas").count() == 0
    assert "0.096000" in page.locator('[data-testid="chart-cost"]').inner_text()
    context.close()
