"""Console: the dashboard and the cluster page show the savings overview (cost vs baseline, savings by source, spot
share as tables the charts are drawn from, month to date and forecast, catalog age) and refresh it with htmx; the
Reports page by month and cluster; the on-demand discount form. Constant queries whatever the clusters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditLog
from savings.models import SavingsSettings
from savings.services import hibernation_entry, ledger_open, record_costs
from tests.factories import ClusterFactory

from .conftest import add_nodes

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def _estate(org, n: int) -> None:
    now = timezone.now()
    for _ in range(n):
        c = ClusterFactory(organization=org, region="us-east-1")
        add_nodes(c, "m5.large", 1)
        add_nodes(c, "m5.large", 1, spot=True)
        ledger_open(
            cluster=c,
            source="job",
            action_type="t",
            action_id=str(c.pk),
            projected_hourly="0.06",
            spot_hourly="0.056",
            at=now - timedelta(days=3),
        )
        hibernation_entry(
            cluster=c,
            period_id=c.pk,
            asleep_at=now - timedelta(days=2, hours=10),
            waking_at=now - timedelta(days=2),
            hourly_cost=Decimal("0.1"),
            node_count=2,
        )
    for h in (48, 24, 1):
        record_costs(at=now - timedelta(hours=h))


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx)


def test_the_dashboard_shows_the_overview_and_refreshes_it(console, user, catalog):
    _estate(user.organization, 2)
    page = console.get("/").content.decode()
    assert 'data-testid="chart-cost"' in page and 'data-testid="chart-savings"' in page
    assert 'data-testid="chart-spot-share"' in page and 'hx-trigger="every 30s"' in page
    assert "<th>Optimization job</th><th>Hibernation</th>" in page
    assert "bundled snapshot of 2022-05-31" in page  # the catalog's spot prices and their date
    assert "Bundled snapshot list prices, updated" in page
    assert 'data-testid="forecast"' in page and "vendor/chartjs/chart.umd.min.js" in page
    partial = console.get("/reports/overview", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith("<section") and "<html" not in partial


def test_the_overview_totals(console, user, catalog):
    _estate(user.organization, 1)
    page = console.get("/reports/overview").content.decode()
    today = timezone.now().strftime("%Y-%m-%d")
    # the last hour recorded is in today's (or yesterday's) row; every day of the month so far sums to month to date
    assert today in page
    assert "Month to date" in page


def test_pages_take_the_same_queries_for_few_and_many_clusters(console, user, catalog):
    _estate(user.organization, 2)
    cluster = user.organization.clusters.first()
    urls = ["/", "/reports/", "/reports/overview", f"/clusters/{cluster.pk}/"]
    few = {url: _queries(console, url) for url in urls}
    _estate(user.organization, 12)
    many = {url: _queries(console, url) for url in urls}
    assert few == many
    # session, user, discount, daily rows, ledger entries, month sum, catalog (on-demand, spot)
    assert few["/reports/overview"] == 8


def test_another_organizations_cluster_overview_is_a_404(console, other_user, catalog):
    theirs = ClusterFactory(organization=other_user.organization)
    assert console.get(f"/reports/overview?cluster={theirs.pk}").status_code == 404
    assert console.get("/reports/overview?cluster=abc").status_code == 404


def test_reports_by_month_and_cluster(console, user, catalog):
    _estate(user.organization, 2)
    page = console.get("/reports/").content.decode()
    month = timezone.now().strftime("%Y-%m")
    assert 'data-testid="chart-months"' in page and f"<td>{month}</td>" in page
    assert page.count('data-testid="report-month"') >= 1
    for cluster in user.organization.clusters.all():
        assert f">{cluster.name}</a>" in page


def test_the_discount_is_set_through_the_service_and_audited(console, user):
    response = console.post("/reports/settings", {"on_demand_discount_pct": "12.5"})
    assert response.status_code == 302
    assert SavingsSettings.objects.get(organization=user.organization).on_demand_discount_pct == Decimal("12.5")
    assert AuditLog.objects.filter(action="savings_settings.updated").count() == 1
    bad = console.post("/reports/settings", {"on_demand_discount_pct": "100"})
    assert bad.status_code == 400
    assert SavingsSettings.objects.get(organization=user.organization).on_demand_discount_pct == Decimal("12.5")


def test_the_forecast_of_a_new_installation_scales_todays_hours_and_later_uses_whole_days(user, catalog):
    import time_machine

    from savings.models import CostRecord
    from savings.selectors import overview

    cluster = ClusterFactory(organization=user.organization, region="us-east-1")
    add_nodes(cluster, "m5.large", 2)
    start = timezone.now().replace(day=10, hour=3, minute=30, second=0, microsecond=0)
    with time_machine.travel(start, tick=False):
        record_costs(at=start)
        fresh = overview(user)
    hourly = CostRecord.objects.get(cluster=cluster, step="hour").cost  # one hour of two m5.large
    assert hourly > 0
    # No whole day yet: today's one recorded hour, scaled to a day, for the days left (not a forecast of $0/day).
    assert "today's first 1 hour" in fresh["forecast_basis"]
    assert Decimal(fresh["seven_day_average"]) == (hourly * 24).quantize(Decimal("0.01"))
    assert Decimal(fresh["forecast"]) > hourly * 24 * 20
    # Two whole days later the average is theirs (24 recorded hours a day), whatever today holds so far.
    later = start + timedelta(days=2)
    for h in range(int((later - start).total_seconds() // 3600)):
        record_costs(at=start + timedelta(hours=h + 1))
    with time_machine.travel(later, tick=False):
        settled = overview(user)
    assert settled["forecast_basis"] == "the last 2 whole days' average"
    assert Decimal(settled["seven_day_average"]) == (hourly * 24).quantize(Decimal("0.01"))
