"""Handling, one service for both sources: spot warnings (cordon and drain first, ICE, the replacement job and its
fallback), rebalance under each policy, state and scheduled changes, bursts, and the agent's notice of the same
interruption."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery import current_app
from django.utils import timezone

from agentapi.models import AgentAction
from agentapi.services import actions_lease, api_key_create, enqueue_action
from clusters.models import Instance
from interruptions import tasks
from interruptions.events import parse
from interruptions.models import Interruption
from interruptions.poller import Consumer
from interruptions.serializers import InterruptionSerializer
from interruptions.services import interruptions_ingest, rebalance_uncordon_due, scheduled_replacements_due
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


def test_the_agents_notice_and_the_queue_event_are_one_interruption(shop, client, monkeypatch):
    queued = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: queued.append((name, args)))
    _, raw = api_key_create(cluster=shop["cluster"], name="agent")
    response = client.post(
        "/api/v1/agent/events",
        data=json.dumps({"type": "spot-interruption", "node": shop["node"].name}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert response.status_code == 201
    # The request gave the first response only; the replacement is the task's, after the request committed.
    notice = Interruption.objects.get()
    assert {a.type for a in AgentAction.objects.all()} == {"cordon", "drain"}
    assert notice.handled_at is None and not OptimizationJob.objects.exists()
    assert queued == [("interruptions.tasks.complete", [[notice.pk]])]
    job_ids = tasks.complete(*queued[0][1])
    job = OptimizationJob.objects.get()
    assert job_ids == [job.pk]
    assert JobStep.objects.get(job=job, kind="launch").state == "succeeded"  # its launch requested by the task
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


RETIREMENT = datetime(2026, 12, 5, 15, 10, 9, tzinfo=UTC)  # the fixture's startTime


def retirement(shop):
    return event("health-scheduled-retirement", instance_id=shop["instance"].instance_id, account=A, region="us-east-1")


def test_a_scheduled_retirement_days_away_is_replaced_the_lead_time_before_its_date(shop):
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):
        ingest(shop["account"], retirement(shop))

    interruption = Interruption.objects.get()
    assert (interruption.kind, interruption.state) == ("scheduled_change", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
    assert interruption.action_at == RETIREMENT
    assert interruption.replace_at == RETIREMENT - timedelta(minutes=60)
    assert [o["what"] for o in interruption.outcome] == ["replacement_scheduled", "label"]
    assert InterruptionSerializer(interruption).data["replace_at"] == "2026-12-05T14:10:09Z"
    assert not OptimizationJob.objects.exists()  # nothing launched days ahead: the node keeps working until then
    label = AgentAction.objects.get(cluster=shop["cluster"])
    assert (label.type, label.target) == ("label", shop["node"].name)
    assert label.params == {"labels": {"spotopt.io/scheduled-change": "20261205T151009Z"}}

    with time_machine.travel(RETIREMENT - timedelta(minutes=61), tick=False):
        assert scheduled_replacements_due() == []
    assert not OptimizationJob.objects.exists()

    with time_machine.travel(RETIREMENT - timedelta(minutes=59), tick=False):
        started = scheduled_replacements_due()
        assert scheduled_replacements_due() == []  # started once

    job = OptimizationJob.objects.get()
    assert started == [job.pk]
    assert (job.trigger, job.state) == ("interruption", "launching")
    assert job.plan["remove"] == [shop["node"].name]  # drained and terminated once the replacement is Ready
    assert job.plan["interrupted_instance_ids"] == [shop["instance"].instance_id]
    interruption.refresh_from_db()
    assert interruption.replace_at is None and interruption.job_id == job.pk
    assert [o["what"] for o in interruption.outcome] == ["replacement_scheduled", "label", "replacement_job"]


def test_a_scheduled_retirement_within_the_lead_time_is_replaced_at_once(shop):
    with time_machine.travel(RETIREMENT - timedelta(minutes=30), tick=False):
        ingest(shop["account"], retirement(shop))

    interruption = Interruption.objects.get()
    job = OptimizationJob.objects.get()
    assert interruption.replace_at is None and interruption.job_id == job.pk
    assert job.state == "launching" and job.plan["remove"] == [shop["node"].name]
    assert not AgentAction.objects.filter(type="label").exists()


def test_the_lead_time_is_a_setting(shop, settings):
    settings.INTERRUPTION_SCHEDULED_LEAD_MINUTES = 7 * 24 * 60
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):
        ingest(shop["account"], retirement(shop))

    assert OptimizationJob.objects.get().state == "launching"


def test_a_scheduled_replacement_of_an_instance_already_gone_launches_nothing(shop):
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):
        ingest(shop["account"], retirement(shop))
    Instance.objects.filter(pk=shop["instance"].pk).update(state="terminated", terminated_at=timezone.now())

    with time_machine.travel(RETIREMENT, tick=False):
        assert scheduled_replacements_due() == []

    interruption = Interruption.objects.get()
    assert interruption.replace_at is None
    assert interruption.outcome[-1]["what"] == "no_replacement"
    assert not OptimizationJob.objects.exists()


def test_a_burst_of_warnings_on_one_cluster_is_one_replacement_job_with_one_launch_per_pool(shop):
    others = [
        spot_node(shop["cluster"], f"i-0000000000000b{n:03d}", zone=("us-east-1a", "us-east-1b")[n % 2])
        for n in range(5)
    ]
    for instance in others:
        kube_node(shop["cluster"], instance)
    nodes = [shop["instance"], *others]
    interruptions_ingest(
        account=shop["account"],
        events=[
            e
            for i in nodes
            for e in parse(
                json.dumps(event("spot-interruption-warning", instance_id=i.instance_id, account=A, region="us-east-1"))
            )
        ],
    )

    job = OptimizationJob.objects.get()  # one job for the six warnings
    assert sorted(job.plan["interrupted_instance_ids"]) == sorted(i.instance_id for i in nodes)
    assert set(Interruption.objects.values_list("job_id", flat=True)) == {job.pk}
    assert AgentAction.objects.filter(type="drain").count() == 6  # each node still drained at once
    launches = list(JobStep.objects.filter(job=job, kind="launch"))
    # m5.large is interrupted in both zones the cluster launches in: the six go to the next pool, in one launch.
    assert [(s.params["offering"]["instance_type"], s.params["count"]) for s in launches] == [("m5.xlarge", 6)]

    # Another notice of one of them (a redelivery under a new id) starts nothing more.
    ingest(shop["account"], spot_warning(shop, event_id="again"))
    assert OptimizationJob.objects.count() == 1
    assert Interruption.objects.get(event_id="again").outcome[-1]["what"] == "duplicate"

    Consumer(wait_seconds=0).advance(job.pk)  # what the consumer requests: every launch of the job, one Fleet call each

    launched = (
        shop["aws"]
        .client("ec2", "us-east-1")
        .describe_instances(Filters=[{"Name": "tag:spotopt.io/job", "Values": [str(job.pk)]}])["Reservations"]
    )
    assert sorted(i["InstanceType"] for r in launched for i in r["Instances"]) == ["m5.xlarge"] * 6
    step = JobStep.objects.get(job=job, kind="launch")
    assert (step.state, step.attempts, len(step.result["instance_ids"])) == ("succeeded", 1, 6)  # one Fleet request
    job.refresh_from_db()
    assert job.state == "launching"  # the inventory refresh and the wait for Ready are the runner's next moves
    advance_job(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "waiting_ready"
    assert Instance.objects.filter(cluster=shop["cluster"], instance_type="m5.xlarge").count() == 6


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
    launched = (
        shop["aws"]
        .client("ec2", "us-east-1")
        .describe_instances(Filters=[{"Name": "tag:spotopt.io/job", "Values": [str(job.pk)]}])["Reservations"]
    )
    assert [i["InstanceType"] for r in launched for i in r["Instances"]] == ["m5.xlarge"]
