"""The sleep / wake state machine over weeks of simulated time: AWS in moto (in process), the agent's real services
over a simulated cluster, the clock moved with time-machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from agentapi.models import AgentAction
from audit.models import AuditLog
from clusters.models import Cluster
from clusters.services import HIBERNATION_STATE_CHANGED
from hibernation import services
from hibernation.actions import Audit
from hibernation.models import HibernationPeriod, HibernationSchedule
from hibernation.services import engine
from tests.factories import ClusterFactory

from . import harness
from .conftest import WEEKNIGHTS

pytestmark = pytest.mark.django_db

# Monday 2026-06-01, Berlin (CEST, UTC+2): the window sleeps at 20:00 local = 18:00 UTC, pre-warms at 06:30 local
# = 04:30 UTC on Tuesday, wakes at 07:00 local = 05:00 UTC.
BEFORE = datetime(2026, 6, 1, 17, 0, tzinfo=UTC)
SLEEP_AT = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)
PRE_WARM_AT = datetime(2026, 6, 2, 4, 30, tzinfo=UTC)
WAKE_AT = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)


def tick(at=None):
    return engine.hibernation_tick(now=at, session_factory=harness.session_factory)


def state(cluster) -> str:
    return Cluster.objects.get(pk=cluster.pk).hibernation_state


def run_until(estate, wanted: str, *, rounds: int = 12) -> None:
    """Alternate ticks and agent rounds until the cluster reaches ``wanted``."""
    for _ in range(rounds):
        tick()
        if state(estate.cluster) == wanted:
            return
        estate.agent_round()
    raise AssertionError(f"cluster stuck in {state(estate.cluster)}: {HibernationSchedule.objects.get().progress}")


@pytest.fixture
def travel():
    with time_machine.travel(BEFORE, tick=False) as traveller:
        yield traveller


@pytest.fixture
def estate(aws, org, travel):
    harness.build_aws()
    return harness.Estate(org)


@pytest.fixture
def schedule(estate):
    return services.schedule_create(
        cluster=estate.cluster,
        values={
            "name": "weeknights",
            "windows": [WEEKNIGHTS],
            "pre_warm_minutes": 30,
            "keep": {"node_groups": ["system"], "labels": {}},
        },
    )


def test_a_night_sleeps_to_zero_and_wakes_with_nodes_ready_by_the_wake_time(estate, schedule, travel):
    estate.agent_round()
    assert len(harness.running_instances()) == 7  # 3 in the node group, 3 in the ASG, 1 system node
    assert tick().attended == 0
    assert state(estate.cluster) == "awake"

    travel.move_to(SLEEP_AT)
    report = tick()
    assert report.attended == 1
    assert state(estate.cluster) == "sleeping"
    schedule.refresh_from_db()
    # Sizes recorded before anything changed; the kept node group is not among them.
    assert schedule.restore["node_groups"] == [{"name": "general", "min_size": 1, "max_size": 6, "desired": 3}]
    assert schedule.restore["auto_scaling_groups"] == [
        {"name": "shop-workers", "min_size": 2, "max_size": 5, "desired": 3}
    ]
    run_until(estate, "asleep")

    schedule.refresh_from_db()
    recorded = {(w["kind"], w["name"]): w for w in schedule.restore["workloads"]}
    assert recorded[("Deployment", "web")]["replicas"] == 7
    assert recorded[("StatefulSet", "db")]["replicas"] == 1
    assert recorded[("CronJob", "nightly-report")]["suspend"] is False
    assert estate.workload("Deployment", "web").replicas == 0
    assert estate.workload("StatefulSet", "db").replicas == 0
    assert estate.workload("CronJob", "nightly-report").suspend is True
    assert harness.node_group_size("general") == (0, 6, 0)
    assert harness.node_group_size("system") == (1, 2, 1)
    assert harness.asg_size() == (0, 5, 0, 0)
    drains = AgentAction.objects.filter(type="drain")
    assert drains.count() == 6 and not drains.filter(target__in=_system_nodes(estate)).exists()
    harness.reconcile()
    estate.agent_round()
    assert len(harness.running_instances()) == 1  # only the kept system node

    # Nothing happens during the night, however often the tick runs; discovery does not touch what waking needs.
    travel.move_to(SLEEP_AT + timedelta(hours=5))
    assert tick().attended == 0
    from clusters.discovery import discover_account

    discover_account(account=estate.account, session=harness.session_factory(estate.cluster))
    assert HibernationSchedule.objects.get().restore["node_groups"][0]["desired"] == 3

    travel.move_to(PRE_WARM_AT)
    tick()
    assert state(estate.cluster) == "waking"
    assert harness.node_group_size("general") == (1, 6, 3)
    assert harness.asg_size()[:3] == (2, 5, 3)
    tick()
    assert state(estate.cluster) == "waking"  # no node Ready yet: workloads wait
    harness.reconcile()  # EKS launches the group's nodes
    travel.move_to(PRE_WARM_AT + timedelta(minutes=6))
    run_until(estate, "awake")

    assert estate.workload("Deployment", "web").replicas == 7
    assert estate.workload("StatefulSet", "db").replicas == 1
    assert estate.workload("CronJob", "nightly-report").suspend is False
    restores = list(AgentAction.objects.filter(type="scale").order_by("id").values_list("params", flat=True))
    kinds = [{w["kind"] for w in p.get("workloads", [])} for p in restores[2:]]
    assert kinds == [{"StatefulSet"}, {"Deployment"}, {"CronJob"}]  # in that order
    period = HibernationPeriod.objects.get()
    assert period.wake_at == WAKE_AT
    assert period.ready_at <= WAKE_AT and period.lateness_seconds < 0
    assert period.node_count == 6
    assert period.node_hours > Decimal("50")  # 6 nodes for ~10.5 h
    schedule.refresh_from_db()
    assert schedule.restore == {} and schedule.progress == {}
    states = [
        e.after["hibernation_state"] for e in AuditLog.objects.filter(action=HIBERNATION_STATE_CHANGED).order_by("seq")
    ]
    assert states == ["sleeping", "asleep", "waking", "awake"]
    assert AuditLog.objects.filter(action=Audit.AWAKE).count() == 1

    # The next tick, and the next night's, act as the timetable says.
    assert tick().attended == 0
    travel.move_to(SLEEP_AT + timedelta(days=1))
    tick()
    assert state(estate.cluster) == "sleeping"


def _system_nodes(estate) -> list[str]:
    return [n.name for n in estate.sim.list_nodes() if n.labels.get("eks.amazonaws.com/nodegroup") == "system"]


def test_saving_is_node_hours_avoided_times_their_price(estate, schedule, travel):
    from clusters.models import Instance

    Instance.objects.filter(cluster=estate.cluster).update(hourly_price=Decimal("0.100000"))
    estate.agent_round()
    travel.move_to(SLEEP_AT)
    run_until(estate, "asleep")
    asleep_at = HibernationPeriod.objects.get().asleep_at
    travel.move_to(PRE_WARM_AT)
    tick()
    harness.reconcile()
    travel.move_to(PRE_WARM_AT + timedelta(minutes=5))
    run_until(estate, "awake")
    period = HibernationPeriod.objects.get()
    hours = Decimal((PRE_WARM_AT - asleep_at).total_seconds()) / 3600
    assert period.hourly_cost == Decimal("0.600000")  # 6 sleeping nodes, the system node kept
    assert period.saving == (hours * Decimal("0.6")).quantize(Decimal("0.000001"))
    assert period.node_hours == (hours * 6).quantize(Decimal("0.0001"))


def test_two_ticks_in_a_row_act_once(estate, schedule, travel):
    travel.move_to(SLEEP_AT)
    tick()
    tick()
    assert AuditLog.objects.filter(action=Audit.SLEEP_STARTED).count() == 1
    assert AgentAction.objects.filter(type="scale").count() == 1
    assert HibernationPeriod.objects.count() == 1


def test_a_sleep_missed_during_downtime_happens_while_the_window_is_open(estate, schedule, travel):
    travel.move_to(SLEEP_AT + timedelta(hours=3))  # the platform was down at 20:00; it is 23:00 now
    tick()
    assert state(estate.cluster) == "sleeping"


def test_a_sleep_missed_during_downtime_never_happens_after_the_window_closed(estate, schedule, travel):
    travel.move_to(WAKE_AT + timedelta(hours=1))  # down all night
    assert tick().attended == 0
    assert state(estate.cluster) == "awake"
    assert not HibernationPeriod.objects.exists()


def test_a_window_that_closes_before_the_sleep_finished_wakes_what_was_changed(estate, schedule, travel):
    estate.agent_round()
    travel.move_to(SLEEP_AT)
    tick()
    estate.agent_round()
    tick()  # workloads recorded, scale-down queued
    estate.agent_round()
    assert estate.workload("Deployment", "web").replicas == 0
    travel.move_to(PRE_WARM_AT)  # the agent and the ticks stalled all night
    run_until(estate, "awake")
    assert estate.workload("Deployment", "web").replicas == 7
    assert AuditLog.objects.filter(action=Audit.SLEEP_STEP, after__step="aborted").count() == 1


def test_a_crash_in_the_middle_of_a_step_resumes_at_the_next_tick(estate, schedule, travel, monkeypatch):
    estate.agent_round()
    travel.move_to(SLEEP_AT)
    calls = {"n": 0}
    real = engine.autoscaling.resize_group

    def crash_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.autoscaling, "resize_group", crash_once)
    for _ in range(6):
        report = tick()
        estate.agent_round()
        if report.errors:
            break
    assert "worker killed" in next(iter(report.errors.values()))
    assert state(estate.cluster) == "sleeping"
    assert harness.node_group_size("general") == (0, 6, 0)  # done before the crash, and done again harmlessly
    tick()
    assert state(estate.cluster) == "asleep"
    assert harness.asg_size() == (0, 5, 0, 0)
    assert AuditLog.objects.filter(action=Audit.SLEEP_STARTED).count() == 1


def test_drains_blocked_by_a_pdb_do_not_stop_the_sleep_after_the_drain_timeout(estate, schedule, travel, settings):
    from agent.simulated import PodDisruptionBudget

    settings.HIBERNATION_DRAIN_TIMEOUT_SECONDS = 60
    estate.agent_round()
    # Every web pod must stay: scaling to zero is done by the scale action, but a pod the Deployment no longer owns
    # (a bare pod under a PDB) blocks its node's drain.
    from agent.backend import Pod

    node = estate.sim.list_nodes()[0].name
    estate.sim.add_pod(
        Pod("default", "pinned", node=node, owner_kind="ReplicaSet", owner_name="other", labels={"app": "pinned"})
    )
    estate.sim.add_pdb(PodDisruptionBudget("default", "pinned", {"app": "pinned"}, min_available=1))
    travel.move_to(SLEEP_AT)
    run_until(estate, "asleep")
    assert AgentAction.objects.filter(type="drain", state="failed").count() == 1
    assert HibernationSchedule.objects.get().restore["sleep_errors"]
    assert harness.asg_size() == (0, 5, 0, 0)


def test_override_keeps_awake_then_expires_audited_and_the_window_applies(estate, schedule, travel, user):
    travel.move_to(SLEEP_AT - timedelta(minutes=5))
    services.schedule_set_override(
        schedule=schedule, state="awake", until=SLEEP_AT + timedelta(hours=2), reason="late deploy", actor=user
    )
    travel.move_to(SLEEP_AT + timedelta(hours=1))
    assert tick().attended == 0
    assert state(estate.cluster) == "awake"
    travel.move_to(SLEEP_AT + timedelta(hours=2))
    tick()
    assert state(estate.cluster) == "sleeping"
    schedule.refresh_from_db()
    assert schedule.override_state == ""
    assert AuditLog.objects.filter(action=Audit.OVERRIDE_EXPIRED).count() == 1


def test_sleep_now_override_and_disabling_wakes(estate, schedule, travel, user):
    estate.agent_round()
    services.schedule_set_override(schedule=schedule, state="asleep", until=BEFORE + timedelta(hours=12), actor=user)
    run_until(estate, "asleep")
    services.schedule_update(schedule=HibernationSchedule.objects.get(), values={"enabled": False}, actor=user)
    tick()
    assert state(estate.cluster) == "waking"
    harness.reconcile()
    travel.move_to(BEFORE + timedelta(minutes=10))
    run_until(estate, "awake")
    assert estate.workload("Deployment", "web").replicas == 7


def test_tick_reads_all_schedules_in_constant_queries(org, django_assert_num_queries):
    for i in range(25):
        cluster = ClusterFactory(organization=org, time_zone="America/New_York")
        services.schedule_create(cluster=cluster, values={"name": f"s{i}", "windows": [WEEKNIGHTS]})
    with time_machine.travel(BEFORE, tick=False):
        # 1: every enabled schedule (and any whose cluster is not awake) with its cluster and account.
        with django_assert_num_queries(1):
            report = engine.hibernation_tick()
    assert report.evaluated == 25 and report.attended == 0


def test_command_runs_one_tick(org, capsys):
    cluster = ClusterFactory(organization=org)
    services.schedule_create(cluster=cluster, values={"name": "n", "windows": [WEEKNIGHTS]})
    call_command("hibernation_tick")
    assert "evaluated 1 schedule(s)" in capsys.readouterr().out


def test_instances_jobs_launched_are_terminated_and_planned_anew_after_waking(estate, schedule, travel):
    from optimization.services.runner import TAG_JOB, TAG_MANAGED
    from tests.aws_fixtures import launch

    (job_instance,) = launch(harness.REGION, cluster="shop", extra_tags={TAG_MANAGED: "spot-optimizer", TAG_JOB: "7"})
    estate.agent_round()
    travel.move_to(SLEEP_AT)
    run_until(estate, "asleep")
    assert job_instance not in {i["InstanceId"] for i in harness.running_instances()}
    assert HibernationSchedule.objects.get().restore["terminated_instances"] == [job_instance]
    travel.move_to(PRE_WARM_AT)
    tick()
    harness.reconcile()
    travel.move_to(PRE_WARM_AT + timedelta(minutes=5))
    run_until(estate, "awake")
    awake = AuditLog.objects.get(action=Audit.AWAKE)
    # Without a node template the planner cannot run: the wake says so rather than failing.
    assert awake.after["optimization_job"] or "planned anew" in " ".join(awake.after["errors"])
    assert awake.after["optimization_job_queued"] is False  # tasks run eagerly here: planned in the tick


def test_where_a_worker_runs_tasks_the_plan_after_waking_is_its_own_task(
    estate, schedule, travel, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from optimization import tasks
    from optimization.models import Recommendation
    from optimization.services import evaluation
    from optimization.services.runner import TAG_JOB, TAG_MANAGED
    from tests.aws_fixtures import launch

    cache.clear()
    queued = []
    monkeypatch.setitem(evaluation.current_app.conf, "task_always_eager", False)
    monkeypatch.setattr(evaluation.current_app, "send_task", lambda name, args=None, **kw: queued.append((name, args)))
    launch(harness.REGION, cluster="shop", extra_tags={TAG_MANAGED: "spot-optimizer", TAG_JOB: "7"})
    estate.agent_round()
    travel.move_to(SLEEP_AT)
    run_until(estate, "asleep")
    travel.move_to(PRE_WARM_AT)
    tick()
    harness.reconcile()
    travel.move_to(PRE_WARM_AT + timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        run_until(estate, "awake")
    awake = AuditLog.objects.get(action=Audit.AWAKE)
    assert awake.after["optimization_job"] is None and awake.after["optimization_job_queued"] is True
    assert awake.after["errors"] == []
    assert queued == [(evaluation.WAKE_TASK, [estate.cluster.pk])]

    assert tasks.plan_after_wake(estate.cluster.pk) is None  # the worker: no template here, so no plan
    assert "template" in Recommendation.objects.get(cluster=estate.cluster).error  # and the cluster page says why
