"""Handling, one service for both sources: spot warnings (cordon and drain first, ICE, the replacement job and its
fallback), rebalance under each policy, state and scheduled changes, bursts, and the agent's notice of the same
interruption."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agentapi.models import AgentAction
from agentapi.services import actions_lease, api_key_create, enqueue_action
from clusters.models import Instance
from interruptions.events import parse
from interruptions.models import Interruption
from interruptions.services import interruptions_ingest, rebalance_uncordon_due
from optimization import ice
from optimization.models import JobStep, OptimizationJob, UnavailableOffering
from optimization.services.runner import advance_job
from tests.factories import ClusterFactory, OrganizationFactory

from .conftest import event, kube_node, launch_estate, link, replaceable_cluster, spot_node

pytestmark = pytest.mark.django_db(transaction=True)

A = "111111111111"


def ingest(account, body):
    return interruptions_ingest(account=account, events=parse(json.dumps(body)))


@pytest.fixture
def shop(aws, catalog):
    """An organization whose cluster the platform launches spot nodes for, in account A."""
    a = aws(A)
    org = OrganizationFactory()
    account = link(org, a, ["us-east-1"])
    cluster = replaceable_cluster(org, account, launch_estate(a))
    node = spot_node(cluster, "i-0000000000000a001", zone="us-east-1a", itype="m5.large")
    kube = kube_node(cluster, node)
    return {"aws": a, "org": org, "account": account, "cluster": cluster, "instance": node, "node": kube}


def spot_warning(shop, **kw):
    return event(
        "spot-interruption-warning", instance_id=shop["instance"].instance_id, account=A, region="us-east-1", **kw
    )


def test_spot_warning_cordons_drains_caches_the_pool_and_launches_a_replacement(shop):
    ingest(shop["account"], spot_warning(shop))

    interruption = Interruption.objects.get()
    actions = {a.type: a for a in AgentAction.objects.filter(cluster=shop["cluster"])}
    assert set(actions) == {"cordon", "drain"}
    drain = actions["drain"]
    # Fitted to the two minutes left: the drain ends before AWS acts.
    assert drain.params["timeout_seconds"] <= 115 and drain.params["grace_period_seconds"] <= 30
    assert drain.deadline <= interruption.action_at + timedelta(seconds=1)
    assert ("m5.large", "us-east-1a", "spot") in {
        (u["instance_type"], u["zone"], u["capacity_type"]) for u in ice.unavailable_for(shop["cluster"])
    }
    job = OptimizationJob.objects.get()
    assert (job.trigger, job.state, job.fallback) == ("interruption", "launching", False)
    launch = JobStep.objects.get(job=job, kind="launch")
    # Another spot pool: the interrupted one is in the ICE cache.
    assert (launch.params["offering"]["instance_type"], launch.params["offering"]["zone"]) == ("m5.large", "us-east-1b")
    assert interruption.job_id == job.pk

    advance_job(job_id=job.pk)

    launched = (
        shop["aws"]
        .client("ec2", "us-east-1")
        .describe_instances(Filters=[{"Name": "tag:spotopt.io/job", "Values": [str(job.pk)]}])["Reservations"]
    )
    instances = [i for r in launched for i in r["Instances"]]
    assert [(i["InstanceType"], i["Placement"]["AvailabilityZone"]) for i in instances] == [("m5.large", "us-east-1b")]
    assert instances[0].get("InstanceLifecycle") == "spot"


def test_replacement_falls_back_to_on_demand_when_every_spot_pool_is_in_the_ice_cache(shop):
    ice.mark_unavailable(
        cluster=shop["cluster"],
        offerings=[("m5.large", "us-east-1b", "spot"), ("m5.xlarge", "us-east-1a", "spot")],
        reason="InsufficientInstanceCapacity",
    )
    ingest(shop["account"], spot_warning(shop))

    job = OptimizationJob.objects.get()
    assert job.fallback is True and job.restore_after is not None
    offering = JobStep.objects.get(job=job, kind="launch").params["offering"]
    assert (offering["instance_type"], offering["capacity_type"]) == ("m5.large", "on-demand")

    advance_job(job_id=job.pk)

    launched = (
        shop["aws"]
        .client("ec2", "us-east-1")
        .describe_instances(Filters=[{"Name": "tag:spotopt.io/job", "Values": [str(job.pk)]}])["Reservations"]
    )
    instances = [i for r in launched for i in r["Instances"]]
    assert len(instances) == 1 and "InstanceLifecycle" not in instances[0]  # on-demand


def test_no_replacement_when_fallback_is_off_and_no_spot_pool_is_left(shop):
    shop["cluster"].organization.node_templates.update(spot_fallback=False)
    ice.mark_unavailable(
        cluster=shop["cluster"],
        offerings=[("m5.large", "us-east-1b", "spot"), ("m5.xlarge", "us-east-1a", "spot")],
        reason="InsufficientInstanceCapacity",
    )
    ingest(shop["account"], spot_warning(shop))

    assert not OptimizationJob.objects.exists()
    interruption = Interruption.objects.get()
    assert "fallback to on-demand is off" in json.dumps(interruption.outcome)
    assert AgentAction.objects.filter(type="drain").count() == 1  # the node is still drained


def test_a_group_owned_node_is_cordoned_and_drained_only(shop):
    Instance.objects.filter(pk=shop["instance"].pk).update(asg_name="shop-general")
    ingest(shop["account"], spot_warning(shop))

    assert not OptimizationJob.objects.exists()
    assert set(AgentAction.objects.values_list("type", flat=True)) == {"cordon", "drain"}
    assert Interruption.objects.get().outcome[-1]["what"] == "group_replaces"


def test_interruption_actions_are_leased_ahead_of_older_ones(shop):
    enqueue_action(cluster=shop["cluster"], type="label", target="other", params={"labels": {"a": "b"}})
    ingest(shop["account"], spot_warning(shop))
    key, _ = api_key_create(cluster=shop["cluster"], name="agent")

    first = actions_lease(api_key=key, max_actions=2)

    assert {a.type for a in first} == {"cordon", "drain"}


def test_the_agents_notice_and_the_queue_event_are_one_interruption(shop, client):
    _, raw = api_key_create(cluster=shop["cluster"], name="agent")
    response = client.post(
        "/api/v1/agent/events",
        data=json.dumps({"type": "spot-interruption", "node": shop["node"].name}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert response.status_code == 201
    ingest(shop["account"], spot_warning(shop))

    agent_notice, queue_event = Interruption.objects.order_by("id")
    assert (agent_notice.source, queue_event.source) == ("agent", "queue")
    assert queue_event.duplicate_of_id == agent_notice.pk
    assert AgentAction.objects.filter(type="drain").count() == 1
    assert OptimizationJob.objects.count() == 1


def test_a_notice_more_than_two_minutes_later_is_another_interruption(shop):
    ingest(shop["account"], spot_warning(shop, at=timezone.now() - timedelta(minutes=3)))
    ingest(shop["account"], spot_warning(shop))

    assert Interruption.objects.filter(duplicate_of__isnull=True).count() == 2
    # One drain per node however many notices: the first one is still open.
    assert AgentAction.objects.filter(type="drain").count() == 1


def test_a_pool_interrupted_twice_within_ten_minutes_is_avoided_for_an_hour(shop):
    second = spot_node(shop["cluster"], "i-0000000000000a002", zone="us-east-1a", itype="m5.large")
    ingest(shop["account"], spot_warning(shop))
    ingest(
        shop["account"],
        event("spot-interruption-warning", instance_id=second.instance_id, account=A, region="us-east-1"),
    )

    longest = (
        UnavailableOffering.objects.filter(instance_type="m5.large", zone="us-east-1a", capacity_type="spot")
        .order_by("-expires_at")
        .first()
    )
    assert longest.expires_at - longest.created_at == timedelta(hours=1)
    assert "interrupted 2 times within 10 minutes" in longest.reason


@pytest.mark.parametrize("mode", ["ignore", "cordon", "replace"])
def test_rebalance_follows_the_cluster_policy(shop, mode):
    shop["cluster"].policy.on_rebalance = mode
    shop["cluster"].policy.save()
    body = event("rebalance-recommendation", instance_id=shop["instance"].instance_id, account=A, region="us-east-1")
    ingest(shop["account"], body)

    actions = list(AgentAction.objects.values_list("type", flat=True))
    interruption = Interruption.objects.get()
    if mode == "ignore":
        assert actions == [] and not OptimizationJob.objects.exists()
        assert interruption.outcome == [{"what": "recorded", "detail": "on_rebalance is ignore"}]
    elif mode == "cordon":
        assert actions == ["cordon"] and not OptimizationJob.objects.exists()
        assert interruption.uncordon_at is not None
        # No interruption followed: uncordoned after uncordon_after_minutes.
        assert rebalance_uncordon_due(now=timezone.now() + timedelta(minutes=29)) == 0
        assert rebalance_uncordon_due(now=timezone.now() + timedelta(minutes=31)) == 1
        assert sorted(AgentAction.objects.values_list("type", flat=True)) == ["cordon", "uncordon"]
    else:
        assert actions == ["cordon"]
        job = OptimizationJob.objects.get()
        # Replaced early: the old node is drained and terminated by the job once the replacement is Ready.
        assert job.plan["remove"] == [shop["node"].name]
        assert job.current_nodes[shop["node"].name]["instance_id"] == shop["instance"].instance_id


def test_a_rebalance_cordon_is_kept_when_the_interruption_follows(shop):
    body = event("rebalance-recommendation", instance_id=shop["instance"].instance_id, account=A, region="us-east-1")
    ingest(shop["account"], body)
    ingest(shop["account"], spot_warning(shop))

    assert rebalance_uncordon_due(now=timezone.now() + timedelta(hours=2)) == 0
    assert not AgentAction.objects.filter(type="uncordon").exists()


def test_terminated_closes_the_instance_and_stopped_only_marks_it(shop):
    other = spot_node(shop["cluster"], "i-0000000000000a003")
    ingest(
        shop["account"], event("state-change", instance_id=shop["instance"].instance_id, account=A, region="us-east-1")
    )
    ingest(
        shop["account"],
        event("state-change", instance_id=other.instance_id, account=A, region="us-east-1", state="stopped"),
    )

    closed = Instance.objects.get(pk=shop["instance"].pk)
    stopped = Instance.objects.get(pk=other.pk)
    assert (closed.state, closed.terminated_at is not None) == ("terminated", True)
    assert (stopped.state, stopped.terminated_at) == ("stopped", None)


def test_scheduled_retirement_gets_a_replacement_before_its_date(shop):
    ingest(
        shop["account"],
        event("health-scheduled-retirement", instance_id=shop["instance"].instance_id, account=A, region="us-east-1"),
    )

    interruption = Interruption.objects.get()
    assert interruption.kind == "scheduled_change"
    assert interruption.state == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    assert interruption.action_at.isoformat().startswith("2026-12-05T15:10:09")
    job = OptimizationJob.objects.get()
    assert job.state == "launching" and job.plan["remove"] == [shop["node"].name]


def test_an_unknown_instance_is_stored_unrouted_and_nothing_is_done(aws):
    org = OrganizationFactory()
    account = link(org, aws(A), ["us-east-1"])
    ClusterFactory(organization=org, cloud_account=account)
    report = ingest(
        account, event("spot-interruption-warning", instance_id="i-0000000000000zzzz", account=A, region="us-east-1")
    )

    assert report.unrouted == 1
    assert Interruption.objects.get().outcome[0]["what"] == "unrouted"
    assert not AgentAction.objects.exists()


def test_a_replacement_pool_short_of_capacity_gives_way_to_the_next_one(shop, aws_server):
    ingest(shop["account"], spot_warning(shop))
    job = OptimizationJob.objects.get()
    aws_server.set_unavailable([("m5.large", "us-east-1b", "spot")])

    for _ in range(3):
        advance_job(job_id=job.pk)

    steps = list(JobStep.objects.filter(job=job, kind="launch").order_by("id"))
    assert [(s.params["offering"]["instance_type"], s.params["offering"]["zone"]) for s in steps] == [
        ("m5.large", "us-east-1b"),
        ("m5.xlarge", "us-east-1a"),
    ]
    assert steps[0].state == "failed" and steps[1].state == "succeeded"
    launched = shop["aws"].client("ec2", "us-east-1").describe_instances(
        Filters=[{"Name": "tag:spotopt.io/job", "Values": [str(job.pk)]}]
    )["Reservations"]
    assert [i["InstanceType"] for r in launched for i in r["Instances"]] == ["m5.xlarge"]
