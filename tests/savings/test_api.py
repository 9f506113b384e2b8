"""``/api/v1/costs/history``, ``/api/v1/savings``, ``/api/v1/savings/ledger``: shapes (UTC buckets with Z, decimal
strings, fractions 0–1), the organization's discount on baselines, CSV streamed, tenancy, the error shape for bad
filters, and a constant number of queries."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from savings.models import SavingsSettings
from savings.services import ledger_open, record_costs
from tests.conftest import client_for
from tests.factories import ClusterFactory

from .conftest import add_nodes
from .helpers import finish_job, running

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def history(cluster):
    """Two days of hours: 2 on-demand m5.large, then from the second day one spot m5.xlarge more."""
    add_nodes(cluster, "m5.large", 2)
    for h in range(48):
        if h == 24:
            add_nodes(cluster, "m5.xlarge", 1, spot=True)
        record_costs(at=T0 + h * H)
    return cluster


def test_history_by_hour_day_and_month(auth_client, history):
    response = auth_client.get("/api/v1/costs/history", {"step": "hour", "since": "2026-03-02", "until": "2026-03-03"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 24 and len(body["results"]) == 24
    assert body["results"][0] == {
        "t": "2026-03-02T00:00:00Z",
        "cost": "0.192000",
        "on_demand_equivalent": "0.192000",
        "spot_share": 0.0,
        "nodes": 2,
    }
    days = auth_client.get("/api/v1/costs/history?step=day&since=2026-03-01T00:00:00Z&until=2026-03-04T00:00:00Z")
    assert [r["t"] for r in days.json()["results"]] == ["2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"]
    second = days.json()["results"][1]
    assert second["cost"] == str((Decimal("0.192") + Decimal("0.080")) * 24) + "000"
    assert second["spot_share"] == round(1 / 3, 4) and second["nodes"] == 3
    month = auth_client.get("/api/v1/costs/history?step=month&since=2026-03-01&until=2026-03-31").json()
    assert month["results"][0]["t"] == "2026-03-01T00:00:00Z"
    assert Decimal(month["results"][0]["cost"]) == Decimal("0.192") * 48 + Decimal("0.080") * 24


def test_the_organization_discount_applies_to_every_baseline(auth_client, history, user):
    SavingsSettings.objects.create(organization=user.organization, on_demand_discount_pct=Decimal("25"))
    row = auth_client.get("/api/v1/costs/history?step=hour&since=2026-03-02&until=2026-03-02T01:00:00Z").json()
    assert row["results"][0]["on_demand_equivalent"] == "0.144000"  # 0.192 × 0.75
    assert row["results"][0]["cost"] == "0.192000"
    totals = auth_client.get("/api/v1/savings?since=2026-03-02&until=2026-03-03").json()["totals"]
    assert totals["baseline"] == str(Decimal("0.144") * 24) + "000"


def test_history_csv_is_streamed(auth_client, history):
    response = auth_client.get("/api/v1/costs/history?step=hour&since=2026-03-02&until=2026-03-04&format=csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["t", "cost", "on_demand_equivalent", "spot_share", "nodes"]
    assert len(rows) == 49 and rows[1][0] == "2026-03-02T00:00:00Z" and rows[-1][4] == "3"


def test_savings_totals_and_groups(auth_client, cluster, user):
    auth_client.force_authenticate(user)  # the JWT would not be valid in the travelled-to past
    old = add_nodes(cluster, "m5.large", 2)
    _, entry = finish_job(cluster, remove=old, launch=("m5.large", "spot", 2), at=T0, projected=Decimal("0.12"))
    other = ClusterFactory(organization=user.organization, region="us-east-1")
    ledger_open(
        cluster=other,
        source="interruption",
        action_type="interruption",
        action_id="x",
        projected_hourly="-0.01",
        spot_hourly="-0.01",
        at=T0 + 24 * H,
    )
    with time_machine.travel(T0 + 48 * H, tick=False):
        by_day = auth_client.get("/api/v1/savings?group_by=day&since=2026-03-02&until=2026-03-04").json()
        by_source = auth_client.get("/api/v1/savings?group_by=source&since=2026-03-02&until=2026-03-04").json()
        by_cluster = auth_client.get("/api/v1/savings?group_by=cluster&since=2026-03-02&until=2026-03-04").json()
        by_month = auth_client.get("/api/v1/savings?group_by=month&since=2026-03-02&until=2026-03-04").json()
    assert by_day["rows"] == [
        {"key": "2026-03-02", "realized": "2.688000", "projected": "2.880000"},
        {"key": "2026-03-03", "realized": "2.448000", "projected": "2.640000"},
    ]
    assert by_source["totals"]["realized"] == "5.136000" and by_source["totals"]["projected"] == "5.520000"
    assert by_source["rows"] == [
        {"key": "interruption", "realized": "-0.240000", "projected": "-0.240000"},
        {"key": "job", "realized": "5.376000", "projected": "5.760000"},
    ]
    assert {r["key"] for r in by_cluster["rows"]} == {str(cluster.pk), str(other.pk)}
    assert by_month["rows"] == [{"key": "2026-03", "realized": "5.136000", "projected": "5.520000"}]
    assert entry.realized_hourly == Decimal("0.112")


def test_ledger_list_filters_and_csv(auth_client, cluster, user):
    auth_client.force_authenticate(user)  # the JWT would not be valid in the travelled-to past
    old = add_nodes(cluster, "m5.large", 2)
    job, _ = finish_job(cluster, remove=old, launch=("m5.large", "spot", 2), at=T0)
    finish_job(cluster, remove=running(cluster)[:1], launch=("m5.large", "on-demand", 1), at=T0 + H, fallback=True)
    with time_machine.travel(T0 + 3 * H, tick=False):
        body = auth_client.get(f"/api/v1/savings/ledger?cluster={cluster.pk}").json()
        only_jobs = auth_client.get("/api/v1/savings/ledger?source=job").json()
        after = auth_client.get("/api/v1/savings/ledger?since=2026-03-02T02:00:00Z&until=2026-03-02T03:00:00Z").json()
        response = auth_client.get("/api/v1/savings/ledger?format=csv&source=job,fallback")
    assert body["count"] == 2 and [r["source"] for r in body["results"]] == ["fallback", "job"]
    job_row = body["results"][1]
    assert job_row["action_id"] == str(job.pk) and job_row["started_at"] == "2026-03-02T00:00:00Z"
    assert job_row["realized"] == "0.336000" and job_row["hours_in_force"] == "3.000000"
    assert job_row["ended_at"] is None and job_row["paused"] is False
    assert [r["source"] for r in only_jobs["results"]] == ["job"]
    assert after["count"] == 2
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["source"] for r in rows] == ["fallback", "job"] and rows[1]["realized"] == "0.336000"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/costs/history?step=week",
        "/api/v1/costs/history?since=yesterday",
        "/api/v1/costs/history?since=2026-03-02T00:00:00",
        "/api/v1/costs/history?since=2026-03-05&until=2026-03-02",
        "/api/v1/costs/history?cluster=abc",
        "/api/v1/costs/history?colour=red",
        "/api/v1/costs/history?page_size=0",
        "/api/v1/savings?group_by=planet",
        "/api/v1/savings?since=1900-01-01",
        "/api/v1/savings/ledger?source=wishes",
        "/api/v1/savings/ledger?until=2026-13-40",
    ],
)
def test_bad_filters_are_a_400_in_the_error_shape(auth_client, cluster, url):
    response = auth_client.get(url)
    assert response.status_code == 400, (url, response.content)
    error = response.json()["error"]
    assert error["code"] and error["message"] and error.get("fields")


def test_another_organizations_cluster_is_a_404_and_its_rows_are_never_counted(auth_client, history, other_user):
    theirs = ClusterFactory(organization=other_user.organization, region="us-east-1")
    add_nodes(theirs, "m5.xlarge", 3)
    record_costs(at=T0 + 48 * H)
    ledger_open(cluster=theirs, source="job", action_type="t", action_id="1", projected_hourly=1, spot_hourly=1, at=T0)
    for url in ("/api/v1/costs/history", "/api/v1/savings", "/api/v1/savings/ledger"):
        response = auth_client.get(url, {"cluster": theirs.pk})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", url
    mine = auth_client.get("/api/v1/costs/history?step=hour&since=2026-03-04&until=2026-03-04T01:00:00Z").json()
    assert mine["results"][0]["cost"] == "0.272000"  # their 3 × 0.192 in the same hour are not counted
    assert auth_client.get("/api/v1/savings/ledger").json()["count"] == 0
    theirs_view = client_for(other_user).get("/api/v1/savings/ledger").json()
    assert theirs_view["count"] == 1


def test_anonymous_is_refused(api_client):
    assert api_client.get("/api/v1/savings").status_code == 401


def test_lists_take_a_constant_number_of_queries(auth_client, user, catalog, django_assert_num_queries):
    def grow(n):
        for _ in range(n):
            c = ClusterFactory(organization=user.organization, region="us-east-1")
            add_nodes(c, "m5.large", 1)
            ledger_open(cluster=c, source="job", action_type="t", action_id=str(c.pk), projected_hourly=1, at=T0)
        record_costs(at=T0)
        record_costs(at=T0 + H)

    grow(2)
    # user (JWT), discount, count, page
    with django_assert_num_queries(4):
        auth_client.get("/api/v1/costs/history?step=hour&since=2026-03-02&until=2026-03-03")
    # user, discount, count, page of entries with their clusters
    with django_assert_num_queries(4):
        auth_client.get("/api/v1/savings/ledger")
    # user, discount, entries, cost sums
    with django_assert_num_queries(4):
        auth_client.get("/api/v1/savings?group_by=cluster&since=2026-03-02&until=2026-03-03")
    grow(20)
    with django_assert_num_queries(4):
        auth_client.get("/api/v1/costs/history?step=hour&since=2026-03-02&until=2026-03-03")
    with django_assert_num_queries(4):
        body = auth_client.get("/api/v1/savings/ledger").json()
    assert body["count"] == 22
    with django_assert_num_queries(4):
        auth_client.get("/api/v1/savings?group_by=cluster&since=2026-03-02&until=2026-03-03")
