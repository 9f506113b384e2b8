"""The simulated world end to end: the simulated AWS takes a spot node the platform launched back (EventBridge → the
interruption queue), the consumer handles it, the agent cordons and drains it, the replacement job launches another
spot node that joins the cluster, and the cluster page shows it all."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from agentapi.models import AgentAction
from clusters.services import account_sync
from interruptions.models import Interruption
from interruptions.poller import Consumer
from interruptions.services import scheduled_replacements_due
from optimization.models import OptimizationJob
from tests.factories import UserFactory
from tests.optimization.conftest import REGION, world  # noqa: F401 - the simulated world fixture

pytestmark = pytest.mark.django_db(transaction=True)


def launch_platform_spot_node(world) -> str:  # noqa: F811
    """A spot m5.large in us-east-1a that the platform launched, known to the inventory and joined to the cluster."""
    launched = world.ec2().run_instances(
        ImageId="ami-12c6146b",
        InstanceType="m5.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=world.cluster.launch_config["subnets"]["us-east-1a"],
        InstanceMarketOptions={"MarketType": "spot"},
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "kubernetes.io/cluster/shop", "Value": "owned"},
                    {"Key": "spotopt.io/managed-by", "Value": "spot-optimizer"},
                ],
            }
        ],
    )["Instances"][0]["InstanceId"]
    account_sync(account=world.cluster.cloud_account)
    world.agent_round()
    return launched


def test_an_injected_interruption_is_replaced_and_shown_on_the_cluster_page(world, client):  # noqa: F811
    launched = launch_platform_spot_node(world)

    out = io.StringIO()
    call_command("simulate_interruption", "--cluster", "shop", "--instance", launched, stdout=out)
    assert launched in out.getvalue()
    report = Consumer(wait_seconds=0).drain_all(threads=1)
    assert report.stored == 1

    interruption = Interruption.objects.get()
    assert (interruption.cluster_id, interruption.ec2_instance_id) == (world.cluster.pk, launched)
    job = OptimizationJob.objects.get(trigger="interruption")
    world.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=30)

    job.refresh_from_db()
    assert job.state == "succeeded", (job.state, job.error)
    drain = AgentAction.objects.get(origin=f"interruption:{interruption.pk}", type="drain")
    assert drain.state == "succeeded"
    interrupted_node = next(n for n in world.sim.list_nodes() if launched in (n.provider_id or ""))
    assert interrupted_node.unschedulable
    replacement = [i for i in world.instances() if i["InstanceId"] != launched and i.get("InstanceLifecycle") == "spot"]
    # The cluster launches in us-east-1a only and m5.large there is in the ICE cache: the next spot pool.
    assert [(i["InstanceType"], i["Placement"]["AvailabilityZone"]) for i in replacement] == [
        ("m5.xlarge", f"{REGION}a")
    ]

    user = UserFactory(organization=world.cluster.organization)
    client.force_login(user)
    page = client.get(f"/clusters/{world.cluster.pk}/").content.decode()
    assert 'data-testid="interruption-timeline"' in page
    assert f"replacement job #{job.pk}" in page


def test_a_simulated_scheduled_retirement_is_replaced_the_lead_time_before_its_start(world, settings):  # noqa: F811
    settings.INTERRUPTION_SCHEDULED_LEAD_MINUTES = 60
    launched = launch_platform_spot_node(world)

    out = io.StringIO()
    call_command(
        "simulate_interruption", "--cluster", "shop", "--instance", launched, "--kind", "scheduled",
        "--starts-in", "90", stdout=out,
    )  # fmt: skip
    assert f"Scheduled retirement of {launched}" in out.getvalue()
    assert Consumer(wait_seconds=0).drain_all(threads=1).stored == 1

    interruption = Interruption.objects.get()
    assert (interruption.kind, interruption.ec2_instance_id) == ("scheduled_change", launched)
    assert interruption.replace_at == interruption.action_at - timedelta(minutes=60)
    assert not OptimizationJob.objects.exists()  # the node keeps working until the lead time
    assert scheduled_replacements_due() == []

    with time_machine.travel(interruption.replace_at + timedelta(seconds=1), tick=False):
        started = scheduled_replacements_due()
    job = OptimizationJob.objects.get(trigger="interruption")
    assert started == [job.pk]
    assert job.plan["interrupted_instance_ids"] == [launched]


def test_a_scheduled_retirement_needs_a_start_not_in_the_past(world):  # noqa: F811
    with pytest.raises(CommandError, match="--starts-in"):
        call_command("simulate_interruption", "--cluster", "shop", "--kind", "scheduled", "--starts-in", "-5")
