"""API docs served from this host only, a JSON 404 for unknown API paths (also with DEBUG on), a favicon."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

# Anything that makes a browser fetch from another host: absolute or protocol-relative URLs in the page.
EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.I)


@pytest.mark.parametrize("url", ["/docs", "/redoc"])
def test_docs_pages_reference_no_other_host(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert EXTERNAL.findall(html) == []
    for asset in re.findall(r"""(?:src|href)="([^"]+)\"""", html):
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset  # every asset is served here


def test_swagger_ui_has_no_online_validator_badge(client) -> None:
    assert '"validatorUrl": null' in client.get("/docs").content.decode()


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/clusters", "/api/", "/api/v1/clusters/1/nope/deeper"])
def test_unknown_api_paths_are_a_json_404(client, debug, path) -> None:
    with override_settings(DEBUG=debug):
        response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_console_404_stays_html(client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_favicon(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert 'rel="icon" href="/favicon.ico"' in client.get("/login/").content.decode()
