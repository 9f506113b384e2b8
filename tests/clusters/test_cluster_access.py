"""One way to fetch a tenant's cluster: ``clusters.selectors.cluster_for_user``, used by every view, API and console
page; another organization's cluster is a 404 everywhere."""

from __future__ import annotations

import ast
import pathlib

import pytest
from django.db import transaction

from clusters.selectors import cluster_for_user
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db

ROOT = pathlib.Path(__file__).resolve().parents[2]
APPS = (
    "accounts",
    "pricing",
    "templates_app",
    "clusters",
    "agentapi",
    "optimization",
    "hibernation",
    "interruptions",
    "lab",
    "spotopt",
)

API_URLS = (
    "/api/v1/clusters/{id}",
    "/api/v1/clusters/{id}/instances",
    "/api/v1/clusters/{id}/policy",
    "/api/v1/clusters/{id}/api-keys",
    "/api/v1/clusters/{id}/nodes",
    "/api/v1/clusters/{id}/agent",
)
CONSOLE_URLS = ("/clusters/{id}/", "/clusters/{id}/policy/", "/agents/{id}/")


@pytest.mark.parametrize("url", API_URLS)
def test_another_organizations_cluster_is_a_404_in_the_api(auth_client, url) -> None:
    theirs = ClusterFactory()
    response = auth_client.get(url.format(id=theirs.pk))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_another_organizations_cluster_is_a_404_in_the_console(client, user, url) -> None:
    client.force_login(user)
    mine, theirs = ClusterFactory(organization=user.organization), ClusterFactory()
    assert client.get(url.format(id=mine.pk)).status_code == 200
    assert client.get(url.format(id=theirs.pk)).status_code == 404


def test_cluster_for_user(user, other_user, django_assert_num_queries) -> None:
    from django.http import Http404

    mine = ClusterFactory(organization=user.organization)
    with django_assert_num_queries(1):  # the cluster joined to its organization and cloud account
        found = cluster_for_user(user, mine.pk)
        assert (found, found.organization.pk) == (mine, user.organization_id)
    for bad in (ClusterFactory().pk, 10**9, "x", None):
        with pytest.raises(Http404):
            cluster_for_user(user, bad)
    with pytest.raises(Http404):
        cluster_for_user(other_user, mine.pk)
    with transaction.atomic():
        assert cluster_for_user(user, mine.pk, for_update=True) == mine


def _modules_that_serve_requests():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or "management" in path.parts:
                continue
            stem = path.stem
            if stem.startswith(("api", "views")) or stem.endswith(("_views", "views")):
                yield path


def test_every_view_and_api_fetches_clusters_through_the_one_selector() -> None:
    offenders = []
    for path in _modules_that_serve_requests():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            # Cluster.objects... or get_for_user(<anything naming Cluster>, ...)
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "Cluster.objects":
                offenders.append(f"{where} Cluster.objects")
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("get_for_user"):
                if node.args and "Cluster" in ast.unparse(node.args[0]):
                    offenders.append(f"{where} get_for_user(Cluster…)")
    assert offenders == []
