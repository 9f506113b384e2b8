"""The action queue: leasing, visibility timeout, attempts, deadline, idempotent results."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from agentapi.models import AgentAction
from agentapi.services import actions_lease, api_key_create, enqueue_action
from audit.models import AuditLog
from spotopt.errors import ValidationFailed
from tests.factories import ClusterFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _lease(client, n=10):
    response = client.get(f"/api/v1/agent/actions?max={n}")
    assert response.status_code == 200, response.content
    return [a["id"] for a in response.json()["actions"]]


def test_enqueue_is_audited_and_validated(cluster):
    action = enqueue_action(
        cluster=cluster, type="label", target="node-1", params={"labels": {"spot": "true"}}, reason="test"
    )
    entry = AuditLog.objects.get(action="agent_action.enqueued")
    assert entry.resource_id == str(action.pk)
    assert entry.after["params"] == {"labels": {"spot": "true"}}
    for bad in (
        ("reboot", "node-1", {}),
        ("evict", "no-namespace", {}),
        ("label", "n", {"labels": {}}),
        ("taint", "n", {"key": "k", "effect": "Never"}),
        ("cordon", "", {}),
    ):
        with pytest.raises(ValidationFailed):
            enqueue_action(cluster=cluster, type=bad[0], target=bad[1], params=bad[2])
    assert AgentAction.objects.count() == 1


def test_enqueue_dedupes_an_identical_open_action(cluster):
    first = enqueue_action(cluster=cluster, type="drain", target="node-1", params={"grace_period_seconds": 30})
    assert enqueue_action(cluster=cluster, type="drain", target="node-1", params={"grace_period_seconds": 30}) == first
    assert enqueue_action(cluster=cluster, type="drain", target="node-1", params={"grace_period_seconds": 10}) != first


def test_lease_hands_out_oldest_first_and_hides_leased_ones(agent_client, cluster):
    ids = [enqueue_action(cluster=cluster, type="cordon", target=f"node-{i}").pk for i in range(5)]
    assert _lease(agent_client, 2) == ids[:2]
    assert _lease(agent_client, 10) == ids[2:]
    assert _lease(agent_client, 10) == []
    action = AgentAction.objects.get(pk=ids[0])
    assert (action.state, action.attempts) == ("leased", 1)
    assert action.lease_expires_at == action.leased_at + timedelta(seconds=300)


def test_lease_query_count_does_not_grow_with_the_batch(agent_client, cluster, django_assert_num_queries):
    assert _lease(agent_client) == []  # first contact records the agent as seen
    for i in range(30):
        enqueue_action(cluster=cluster, type="cordon", target=f"node-{i}")
    # key lookup; savepoint; SELECT … FOR UPDATE SKIP LOCKED; one UPDATE of the leased rows; release
    with django_assert_num_queries(5):
        assert len(_lease(agent_client, 30)) == 30


def test_expired_lease_is_handed_out_again(agent_client, cluster):
    action = enqueue_action(cluster=cluster, type="drain", target="node-1")
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert _lease(agent_client) == [action.pk]
        traveller.shift(timedelta(seconds=299))
        assert _lease(agent_client) == []
        traveller.shift(timedelta(seconds=2))
        assert _lease(agent_client) == [action.pk]
    action.refresh_from_db()
    assert (action.state, action.attempts) == ("leased", 2)


def test_action_fails_after_its_last_attempt(agent_client, cluster):
    action = enqueue_action(cluster=cluster, type="drain", target="node-1", max_attempts=2)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(2):
            assert _lease(agent_client) == [action.pk]
            traveller.shift(timedelta(seconds=301))
        assert _lease(agent_client) == []
    action.refresh_from_db()
    assert (action.state, action.attempts) == ("failed", 2)
    assert "2 attempt" in action.result_message
    assert AuditLog.objects.filter(action="agent_action.failed", resource_id=str(action.pk)).count() == 1


def test_action_past_its_deadline_expires(agent_client, cluster):
    action = enqueue_action(
        cluster=cluster, type="cordon", target="node-1", deadline=timezone.now() + timedelta(seconds=60)
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert _lease(agent_client) == []
    action.refresh_from_db()
    assert action.state == "expired"


def test_result_is_idempotent(agent_client, cluster):
    action = enqueue_action(cluster=cluster, type="cordon", target="node-1")
    _lease(agent_client)
    url = f"/api/v1/agent/actions/{action.pk}/result"
    first = agent_client.post(url, {"status": "succeeded", "message": "cordoned"}, format="json")
    assert first.status_code == 200
    assert first.json()["recorded"] is True
    finished_at = AgentAction.objects.get(pk=action.pk).finished_at
    second = agent_client.post(url, {"status": "succeeded", "message": "cordoned"}, format="json")
    assert second.status_code == 200
    assert second.json()["recorded"] is False
    # A contradicting late report changes nothing either.
    third = agent_client.post(url, {"status": "failed", "message": "late"}, format="json")
    assert third.status_code == 200
    action.refresh_from_db()
    assert (action.state, action.result_message, action.finished_at) == ("succeeded", "cordoned", finished_at)
    assert AuditLog.objects.filter(action="agent_action.succeeded").count() == 1


def test_result_validation_and_unknown_actions(agent_client, cluster):
    action = enqueue_action(cluster=cluster, type="cordon", target="node-1")
    url = f"/api/v1/agent/actions/{action.pk}/result"
    assert agent_client.post(url, {"status": "succeeded"}, format="json").status_code == 409  # never leased
    _lease(agent_client)
    bad = agent_client.post(url, {"status": "done"}, format="json")
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["fields"]
    missing = agent_client.post("/api/v1/agent/actions/999999/result", {"status": "failed"}, format="json")
    assert missing.status_code == 404
    assert agent_client.get("/api/v1/agent/actions?max=0").status_code == 400
    assert agent_client.get("/api/v1/agent/actions?max=abc").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_pg_concurrent_polls_never_receive_the_same_action():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    cluster = ClusterFactory(organization=OrganizationFactory())
    key, raw = api_key_create(cluster=cluster, name="k")
    total = 200
    for i in range(total):
        enqueue_action(cluster=cluster, type="cordon", target=f"node-{i}")
    received: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def poll():
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
            barrier.wait()
            mine: list[int] = []
            while True:
                got = _lease(client, 7)
                if not got:
                    break
                mine.extend(got)
            received.append(mine)
        except BaseException as exc:  # noqa: BLE001 - surfaced in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    flat = [i for mine in received for i in mine]
    assert len(flat) == len(set(flat)) == total
    assert sum(1 for mine in received if mine) > 1  # the polls really ran side by side
    assert AgentAction.objects.filter(state="leased", attempts=1).count() == total


@pytest.mark.django_db(transaction=True)
def test_pg_skip_locked_lease_skips_rows_locked_by_another_poll():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    cluster = ClusterFactory(organization=OrganizationFactory())
    key, _ = api_key_create(cluster=cluster, name="k")
    first = enqueue_action(cluster=cluster, type="cordon", target="node-1")
    second = enqueue_action(cluster=cluster, type="cordon", target="node-2")
    locked = threading.Event()
    release = threading.Event()

    def hold_first():
        from django.db import transaction

        with transaction.atomic():
            AgentAction.objects.select_for_update().get(pk=first.pk)
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert locked.wait(10)
    try:
        key = type(key).objects.select_related("cluster").get(pk=key.pk)
        assert [a.pk for a in actions_lease(api_key=key, max_actions=10)] == [second.pk]
    finally:
        release.set()
        holder.join()


def test_enqueue_is_keyword_only_and_records_its_origin(cluster):
    with pytest.raises(TypeError):
        enqueue_action(cluster, "cordon", "node-1")  # the positional form is refused on purpose
    action = enqueue_action(cluster=cluster, type="cordon", target="node-1", origin="optimization_job:4:step:9")
    assert action.origin == "optimization_job:4:step:9"
    assert action.as_message()["origin"] == "optimization_job:4:step:9"
    # An identical open action is reused whoever asks (one cordon is enough); dedupe=False makes a second one.
    assert enqueue_action(cluster=cluster, type="cordon", target="node-1", origin="agent_event:1") == action
    other = enqueue_action(cluster=cluster, type="cordon", target="node-1", origin="agent_event:1", dedupe=False)
    assert other.pk != action.pk and other.origin == "agent_event:1"
    with pytest.raises(ValidationFailed):
        enqueue_action(cluster=cluster, type="cordon", target="node-1", origin="x" * 129)


def test_sweeper_closes_dead_actions_of_a_cluster_whose_agent_never_polls_again(cluster):
    from agentapi.services import actions_expire

    now = timezone.now()
    late = enqueue_action(cluster=cluster, type="cordon", target="node-1", deadline=now + timedelta(seconds=30))
    spent = enqueue_action(cluster=cluster, type="drain", target="node-2", max_attempts=1)
    alive = enqueue_action(cluster=cluster, type="cordon", target="node-3")
    AgentAction.objects.filter(pk=spent.pk).update(
        state="leased", attempts=1, lease_expires_at=now - timedelta(seconds=1)
    )
    assert actions_expire(now=now + timedelta(seconds=31)) == 2
    states = dict(AgentAction.objects.values_list("pk", "state"))
    assert states == {late.pk: "expired", spent.pk: "failed", alive.pk: "pending"}
    assert actions_expire(now=now + timedelta(seconds=31)) == 0
