"""The queue consumer against the simulated AWS: routing among accounts and regions, durable de-duplication, a crash
between storing and deleting, unrouted events, EventBridge rules delivering to the queue, both sources as one."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from agentapi.models import AgentAction
from cloud import sqs
from interruptions.models import Interruption, QueueStatus
from interruptions.poller import Consumer
from tests.factories import ClusterFactory, OrganizationFactory

from .conftest import event, kube_node, link, spot_node

pytestmark = pytest.mark.django_db(transaction=True)

A, B = "111111111111", "222222222222"


def poll_once() -> str:
    out = io.StringIO()
    call_command("poll_interruptions", "--once", stdout=out)
    return out.getvalue()


def test_events_reach_the_right_cluster_among_accounts_and_regions(aws):
    org1, org2 = OrganizationFactory(), OrganizationFactory()
    a, b = aws(A), aws(B)
    for region in ("us-east-1", "eu-west-1"):
        a.create_queue(region)
    b.create_queue("us-east-1")
    acc_a = link(org1, a, ["us-east-1", "eu-west-1"])
    acc_b = link(org2, b, ["us-east-1"])
    east = ClusterFactory(organization=org1, cloud_account=acc_a, region="us-east-1")
    west = ClusterFactory(organization=org1, cloud_account=acc_a, region="eu-west-1")
    other = ClusterFactory(organization=org2, cloud_account=acc_b, region="us-east-1")
    n_east = kube_node(east, spot_node(east, "i-0000000000000e001"))
    kube_node(west, spot_node(west, "i-0000000000000w001", zone="eu-west-1a"))
    kube_node(other, spot_node(other, "i-0000000000000b001"))

    a.put(
        "us-east-1",
        event("spot-interruption-warning", instance_id="i-0000000000000e001", account=A, region="us-east-1"),
    )
    a.put(
        "eu-west-1",
        event("spot-interruption-warning", instance_id="i-0000000000000w001", account=A, region="eu-west-1"),
    )
    b.put(
        "us-east-1", event("rebalance-recommendation", instance_id="i-0000000000000b001", account=B, region="us-east-1")
    )
    b.put(
        "us-east-1",
        event("spot-interruption-warning", instance_id="i-00000000000unknown", account=B, region="us-east-1"),
    )

    summary = poll_once()

    assert "received 4, stored 4, duplicates 0, unrouted 1" in summary
    routed = {i.ec2_instance_id: i.cluster_id for i in Interruption.objects.all()}
    assert routed == {
        "i-0000000000000e001": east.pk,
        "i-0000000000000w001": west.pk,
        "i-0000000000000b001": other.pk,
        "i-00000000000unknown": None,
    }
    unrouted = Interruption.objects.get(ec2_instance_id="i-00000000000unknown")
    assert (unrouted.routed, unrouted.organization_id) == (False, org2.pk)
    assert QueueStatus.objects.get(cloud_account=acc_b, region="us-east-1").unrouted == 1
    # The spot warning of the east node is acted on in its own cluster: cordon and drain, ahead of anything else.
    assert set(AgentAction.objects.filter(cluster=east).values_list("type", "target", "priority")) == {
        ("cordon", n_east.name, 100),
        ("drain", n_east.name, 100),
    }
    # Every message was deleted once stored.
    assert a.waiting("us-east-1") == a.waiting("eu-west-1") == b.waiting("us-east-1") == 0


def test_a_redelivered_message_is_acknowledged_and_acted_on_once(aws):
    org = OrganizationFactory()
    a = aws(A)
    a.create_queue("us-east-1")
    account = link(org, a, ["us-east-1"])
    cluster = ClusterFactory(organization=org, cloud_account=account)
    kube_node(cluster, spot_node(cluster, "i-0000000000000d001"))
    body = event("spot-interruption-warning", instance_id="i-0000000000000d001", account=A, region="us-east-1")
    a.put("us-east-1", body, body)

    assert "stored 1, duplicates 1" in poll_once()
    a.put("us-east-1", body)  # delivered again after a restart: the database remembers it
    assert "stored 0, duplicates 1" in poll_once()

    assert Interruption.objects.count() == 1
    assert AgentAction.objects.filter(type="drain").count() == 1
    assert AgentAction.objects.filter(type="cordon").count() == 1
    assert QueueStatus.objects.get().duplicates == 2
    assert a.waiting("us-east-1") == 0


def test_a_crash_between_store_and_delete_loses_nothing_and_doubles_nothing(aws, monkeypatch):
    org = OrganizationFactory()
    a = aws(A)
    a.create_queue("us-east-1", visibility_timeout=0)  # a message not deleted is visible again at once
    account = link(org, a, ["us-east-1"])
    cluster = ClusterFactory(organization=org, cloud_account=account)
    kube_node(cluster, spot_node(cluster, "i-0000000000000c001"))
    a.put(
        "us-east-1",
        event("spot-interruption-warning", instance_id="i-0000000000000c001", account=A, region="us-east-1"),
    )

    class Crash(BaseException):
        pass

    def crash(*args, **kwargs):
        raise Crash

    real_delete = sqs.delete
    monkeypatch.setattr(sqs, "delete", crash)
    with pytest.raises(Crash):
        Consumer(wait_seconds=0).drain_all(threads=1)
    stored = Interruption.objects.get()  # stored (committed) with its first response before the crash
    assert AgentAction.objects.filter(type="drain", origin=f"interruption:{stored.pk}").count() == 1
    assert stored.handled_at is None  # the rest of its handling had not run
    assert a.waiting("us-east-1") == 1  # and still on the queue

    monkeypatch.setattr(sqs, "delete", real_delete)
    assert "stored 0, duplicates 1" in poll_once()
    assert Interruption.objects.count() == 1
    assert Interruption.objects.get().handled_at is not None  # finished after the restart
    assert AgentAction.objects.filter(type="drain").count() == 1
    assert a.waiting("us-east-1") == 0


def test_eventbridge_rules_deliver_ec2_events_to_the_queue(aws):
    """The regional template's rule, as EventBridge (moto) runs it: a matching event lands on the queue and is read."""
    org = OrganizationFactory()
    a = aws(A)
    url = a.create_queue("us-east-1")
    arn = a.client("sqs", "us-east-1").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = a.client("events", "us-east-1")
    events.put_rule(
        Name="spotopt-spot-interruption",
        EventPattern=json.dumps({"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
    )
    events.put_targets(Rule="spotopt-spot-interruption", Targets=[{"Id": "queue", "Arn": arn}])
    account = link(org, a, ["us-east-1"])
    cluster = ClusterFactory(organization=org, cloud_account=account)
    kube_node(cluster, spot_node(cluster, "i-0000000000000f001"))
    events.put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "EC2 Spot Instance Interruption Warning",
                "Detail": json.dumps({"instance-id": "i-0000000000000f001", "instance-action": "terminate"}),
                "Resources": [f"arn:aws:ec2:us-east-1:{A}:instance/i-0000000000000f001"],
            }
        ]
    )

    assert "stored 1" in poll_once()
    interruption = Interruption.objects.get()
    assert (interruption.cluster_id, interruption.kind, interruption.routed) == (cluster.pk, "spot_interruption", True)


def test_malformed_messages_are_counted_and_removed(aws):
    org = OrganizationFactory()
    a = aws(A)
    a.create_queue("us-east-1")
    link(org, a, ["us-east-1"])
    sqs_client = a.client("sqs", "us-east-1")
    sqs_client.send_message(QueueUrl=a.queue_url("us-east-1"), MessageBody="not json")
    sqs_client.send_message(QueueUrl=a.queue_url("us-east-1"), MessageBody=json.dumps({"detail-type": "Other"}))

    assert "malformed 2" in poll_once()
    assert not Interruption.objects.exists()
    assert a.waiting("us-east-1") == 0


def test_a_missing_queue_is_reported_not_fatal(aws):
    org = OrganizationFactory()
    a = aws(A)
    account = link(org, a, ["us-east-1"])

    poll_once()

    status = QueueStatus.objects.get(cloud_account=account, region="us-east-1")
    assert "spotopt-interruptions not reachable" in status.last_error


def test_the_running_consumer_picks_up_messages_and_stops_cleanly(aws):
    import threading
    import time

    org = OrganizationFactory()
    a = aws(A)
    a.create_queue("us-east-1")
    account = link(org, a, ["us-east-1"])
    cluster = ClusterFactory(organization=org, cloud_account=account)
    kube_node(cluster, spot_node(cluster, "i-0000000000000r001"))
    stop = threading.Event()
    consumer = Consumer(wait_seconds=1)
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        a.put(
            "us-east-1",
            event("spot-interruption-warning", instance_id="i-0000000000000r001", account=A, region="us-east-1"),
        )
        deadline = time.monotonic() + 30
        while a.waiting("us-east-1") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert Interruption.objects.get().cluster_id == cluster.pk
    assert a.waiting("us-east-1") == 0


def test_a_failed_launch_request_is_tried_again_within_seconds(aws, monkeypatch):
    monkeypatch.setattr("interruptions.poller.time.sleep", lambda seconds: None)
    calls = []

    def flaky(job_id):
        calls.append(job_id)
        if len(calls) == 1:
            raise RuntimeError("500 Internal Server Error")

    Consumer(wait_seconds=0, advance=flaky)._advance_now(7)
    assert calls == [7, 7]

    calls.clear()

    def down(job_id):
        calls.append(job_id)
        raise RuntimeError("unreachable")

    Consumer(wait_seconds=0, advance=down)._advance_now(8)  # left to the runner's tick after three tries
    assert calls == [8, 8, 8]
