"""Odd input never answers a 500: huge ids, odd dates and formats, page numbers past the end."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/costs/history?cluster=99999999999999999999999", 404),
        ("/api/v1/savings/ledger?cluster=0", 404),
        ("/api/v1/costs/history?since=2026-02-30", 400),
        ("/api/v1/costs/history?since=%00", 400),
        ("/api/v1/costs/history?since=9999-12-31T23:59:59Z", 400),
        ("/api/v1/savings?until=0001-01-01T00:00:00Z", 400),
        ("/api/v1/savings/ledger?page=999", 404),
        ("/api/v1/savings/ledger?page=abc", 404),
        ("/api/v1/savings/ledger?format=xml", 404),
        ("/api/v1/costs/history?step=", 200),
    ],
)
def test_odd_input_is_a_clear_4xx(auth_client, url, status):
    response = auth_client.get(url)
    assert response.status_code == status, (url, response.content)
    if status >= 400:
        assert response.json()["error"]["code"]
