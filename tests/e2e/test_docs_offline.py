"""The API docs, rendered by a real browser, fetch nothing from another host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("url", "ready"), [("/docs", ".swagger-ui .info"), ("/redoc", ".redoc-wrap")])
def test_docs_load_only_from_this_host(page, live_server, url, ready) -> None:
    requested: list[str] = []
    blocked: set[str] = set()  # stopped inside the browser by the page's own Content-Security-Policy
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: request.failure == "csp" and blocked.add(request.url))
    page.goto(url)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    here = urlsplit(live_server.url).netloc
    elsewhere = [
        u for u in requested if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != here
    ]
    assert [u for u in elsewhere if u not in blocked] == []
    assert any(urlsplit(u).path.startswith("/api/schema") for u in requested)  # the page did load the schema
