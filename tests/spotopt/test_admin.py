"""Django admin as a whole: every domain model is registered usefully, the models a process owns are read-only,
and every change list and change page loads with a number of queries that does not grow with the rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import LoginFailureCounter, RevokedAccessToken, RevokedTokenFamily
from agentapi.models import AgentEvent, ApiKey
from agentapi.services import api_key_create, enqueue_action, snapshot_ingest
from audit.services import checkpoint_create_all
from clusters.policy_services import policy_for
from hibernation.models import HibernationPeriod
from hibernation.services.schedules import schedule_create
from interruptions.events import parse, spot_warning
from interruptions.models import QueueStatus
from interruptions.services import interruptions_ingest
from pricing.models import InstanceType, InstanceTypeOffering, OnDemandPrice, OnDemandPriceHistory, SpotPricePoint
from savings.services import ledger_open, record_costs, savings_settings_update
from spotopt.service_admin import ServiceAdmin
from tests.agentapi.conftest import make_snapshot
from tests.factories import (
    CloudAccountFactory,
    ClusterFactory,
    InstanceFactory,
    NodeTemplateFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DOMAIN_APPS = (
    "accounts",
    "audit",
    "pricing",
    "clusters",
    "templates_app",
    "agentapi",
    "savings",
    "hibernation",
    "interruptions",
    "lab",
)
PROCESS_OWNED = {
    "accounts.LoginFailureCounter",
    "accounts.RevokedAccessToken",
    "accounts.RevokedTokenFamily",
    "clusters.Instance",
    "agentapi.AgentStatus",
    "agentapi.KubeNode",
    "agentapi.KubePod",
    "agentapi.AgentAction",
    "agentapi.AgentEvent",
    "agentapi.ApiKey",
    "pricing.InstanceType",
    "pricing.OnDemandPrice",
    "pricing.OnDemandPriceHistory",
    "pricing.SpotPricePoint",
    "pricing.InstanceTypeOffering",
    "audit.AuditLog",
    "audit.AuditChainHead",
    "audit.AuditCheckpoint",
    "hibernation.HibernationPeriod",
    "interruptions.Interruption",
    "interruptions.QueueStatus",
    "savings.CostRecord",
    "savings.LedgerEntry",
}
# Most queries any change list may take, whatever the number of rows: session, user, then the list's count(s),
# its page of rows (with the related objects joined), and a date-hierarchy or filter lookup or two.
CHANGELIST_QUERY_BOUND = 9


def domain_models():
    return [m for label in DOMAIN_APPS for m in apps.get_app_config(label).get_models()]


def label(model) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def populate(n: int, start: int = 0) -> None:
    """``n`` organizations, each with a row of every domain model (most written through their services)."""
    for i in range(start, start + n):
        org = OrganizationFactory()
        org.owner = UserFactory(organization=org)
        org.save()
        account = CloudAccountFactory(organization=org)
        cluster = ClusterFactory(organization=org, cloud_account=account)
        instance = InstanceFactory(cluster=cluster, instance_id=f"i-{i:017x}")
        template = NodeTemplateFactory(organization=org, is_default=True)
        policy = policy_for(cluster)
        policy.node_template = template
        policy.save()
        key, _raw = api_key_create(cluster=cluster, name="agent", actor=org.owner)
        snapshot_ingest(api_key=key, data=make_snapshot(1, 1, instance_ids=[instance.instance_id]))
        enqueue_action(cluster=cluster, type="cordon", target="ip-10-0-0-0.ec2.internal", actor=org.owner)
        AgentEvent.objects.create(
            cluster=cluster,
            type="node-not-ready",
            node_name="n",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            api_key=key,
        )
        name = f"x{i}.large"
        InstanceType.objects.create(name=name, family=f"x{i}", vcpu=2, memory_mib=8192, arch="x86_64")
        OnDemandPrice.objects.create(region="us-east-1", instance_type=name, price=Decimal("0.1"))
        OnDemandPriceHistory.objects.create(
            region="us-east-1",
            instance_type=name,
            price=Decimal("0.1"),
            effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        )
        SpotPricePoint.objects.create(
            region="us-east-1",
            zone="us-east-1a",
            instance_type=name,
            price=Decimal("0.03"),
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        )
        InstanceTypeOffering.objects.create(region="us-east-1", zone="us-east-1a", instance_type=name)
        later = datetime(2026, 1, 1, 1, tzinfo=UTC)
        LoginFailureCounter.objects.create(
            key=f"account:{org.owner.email}", count=1, window_started_at=later, window_ends_at=later
        )
        RevokedAccessToken.objects.create(jti=f"jti-{i}", user=org.owner, expires_at=later)
        RevokedTokenFamily.objects.create(family=f"family-{i}", user=org.owner, reason="logout", expires_at=later)
        schedule = schedule_create(
            cluster=cluster,
            values={"name": "nights", "windows": [{"days": ["mon"], "sleep_at": "20:00", "wake_at": "07:00"}]},
            actor=org.owner,
        )
        HibernationPeriod.objects.create(schedule=schedule, cluster=cluster, started_at=later)
        interruptions_ingest(
            account=account,
            events=parse(
                spot_warning(
                    instance_id=instance.instance_id, account="", region="us-east-1", at=later, event_id=f"e{i}"
                )
            ),
        )
        QueueStatus.objects.create(cloud_account=account, region="us-east-1")
        ledger_open(cluster=cluster, source="job", action_type="job", action_id=str(i), projected_hourly=1, at=later)
        savings_settings_update(organization=org, values={"on_demand_discount_pct": "5"}, actor=org.owner)
        record_costs(at=later)
    checkpoint_create_all()


def test_every_domain_model_is_registered_usefully():
    missing = [label(m) for m in domain_models() if not admin.site.is_registered(m)]
    # A new model is registered in its app's admin.py: a ServiceAdmin whose hooks call the services, or a
    # ReadOnlyAdmin when a process owns its rows (add it to PROCESS_OWNED then).
    assert missing == [], f"not in Django admin: {missing}"
    for model in domain_models():
        model_admin = admin.site.get_model_admin(model)
        assert tuple(model_admin.list_display) != ("__str__",), label(model)
        assert model_admin.search_fields, label(model)
    assert not admin.site.is_registered(Group)  # access is by role; groups would grant it behind the services


def test_process_owned_models_are_read_only_and_the_others_write_through_services(super_admin):
    request = RequestFactory().get("/admin/")
    request.user = super_admin
    for model in domain_models():
        model_admin = admin.site.get_model_admin(model)
        can = (
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request),
        )
        if label(model) in PROCESS_OWNED:
            assert can == (False, False, False), label(model)
            assert model_admin.has_view_permission(request), label(model)
        else:
            assert isinstance(model_admin, ServiceAdmin), label(model)
            assert can[1], label(model)


def _changelist_queries(client, model) -> int:
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def test_change_lists_load_in_a_constant_number_of_queries(admin_web):
    populate(1)
    few = {label(m): _changelist_queries(admin_web, m) for m in domain_models()}
    populate(4, start=1)
    many = {label(m): _changelist_queries(admin_web, m) for m in domain_models()}
    assert many == few
    assert max(few.values()) <= CHANGELIST_QUERY_BOUND, few


def test_change_lists_search_and_change_pages_load(admin_web):
    populate(2)
    for model in domain_models():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert admin_web.get(base, {"q": "x"}).status_code == 200, base
        obj = model._default_manager.first()
        assert obj is not None, base
        assert admin_web.get(f"{base}{obj.pk}/change/").status_code == 200, base


def test_foreign_keys_are_links_to_the_related_admin_page(admin_web):
    populate(1)
    key = ApiKey.objects.select_related("cluster__organization").get()
    cluster, org = key.cluster, key.cluster.organization
    clusters_page = admin_web.get("/admin/clusters/cluster/").content.decode()
    assert f'href="/admin/accounts/organization/{org.pk}/change/"' in clusters_page
    assert f'href="/admin/accounts/cloudaccount/{cluster.cloud_account_id}/change/"' in clusters_page
    keys_page = admin_web.get("/admin/agentapi/apikey/").content.decode()
    assert f'href="/admin/clusters/cluster/{cluster.pk}/change/"' in keys_page
    audit_page = admin_web.get("/admin/audit/auditlog/").content.decode()
    assert f'href="/admin/accounts/organization/{org.pk}/change/"' in audit_page
