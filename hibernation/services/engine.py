"""The sleep / wake state machine: ``awake → sleeping → asleep → waking → awake``.

One tick (:func:`hibernation_tick`, from beat every minute or ``manage.py hibernation_tick``) reads every schedule
that may need work with its cluster in one query and evaluates each timetable in memory; only schedules whose
cluster is not where its timetable says, whose override ran out, or whose transition is under way are touched.

Each of those advances step by step, each step in its own transaction with the schedule's row locked
(``SELECT … FOR UPDATE SKIP LOCKED``): a tick that finds the row locked leaves it to the tick that holds it, and a
tick that comes after re-reads where the transition stands, so two ticks act once. Every step is idempotent (AWS
sizes are set, not added; agent actions are deduplicated), so a crash between steps resumes where it stopped.

Sleeping: record the node groups' and Auto Scaling groups' sizes on the schedule → list the workloads through the
agent (a ``scale`` dry run) and record their replicas → scale Deployments and StatefulSets to 0 and suspend
CronJobs → cordon and drain every node except ``keep`` (PodDisruptionBudgets honoured up to the drain timeout, then
the sleep proceeds) → node groups and Auto Scaling groups to 0 → asleep.
Waking (``pre_warm_minutes`` before the wake time): groups back to their recorded sizes → wait until the nodes are
Ready (the agent's snapshot) → StatefulSets, then Deployments, then CronJobs resumed → awake, with the sleep's
saving recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.aws import session_for
from agentapi.manifest import NAMESPACE as AGENT_NAMESPACE
from agentapi.models import AgentAction, AgentStatus, KubeNode
from agentapi.services import enqueue_action
from audit.services import record
from cloud import autoscaling, ec2, eks
from cloud import errors as cloud_errors
from cloud.session import AccountSession
from clusters.models import Cluster, Instance
from clusters.services import cluster_set_hibernation_state
from optimization.models import OptimizationJob
from optimization.services import evaluation
from optimization.services.jobs import job_cancel, job_create
from optimization.services.runner import TAG_MANAGED
from pricing import selectors as prices
from savings.selectors import realized as ledger_realized
from savings.services import hibernation_entry, ledger_pause_cluster, ledger_resume_cluster
from spotopt.errors import ApplicationError

from .. import timetable
from ..actions import Audit
from ..models import HibernationPeriod, HibernationSchedule
from .schedules import override_expire

logger = logging.getLogger(__name__)

ACTOR = "system:hibernation"
SLEEP = "sleep"
WAKE = "wake"
#: Namespaces whose workloads never sleep: the control plane's add-ons and the agent itself.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", AGENT_NAMESPACE)
#: Label of the EKS managed node group on its nodes.
NODE_GROUP_LABEL = "eks.amazonaws.com/nodegroup"
MAX_STEPS_PER_TICK = 12

SLEEP_STEPS = ("inventory", "scale_down", "drain", "capacity", "done")
WAKE_STEPS = ("capacity", "nodes_ready", "statefulsets", "deployments", "cronjobs", "done")
WORKLOAD_STEP_KIND = {"statefulsets": "StatefulSet", "deployments": "Deployment", "cronjobs": "CronJob"}


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def drain_timeout() -> timedelta:
    return timedelta(seconds=_setting("HIBERNATION_DRAIN_TIMEOUT_SECONDS", 600))


def action_timeout() -> timedelta:
    """How long a step waits for the agent before it proceeds without it."""
    return timedelta(seconds=_setting("HIBERNATION_ACTION_TIMEOUT_SECONDS", 900))


def ready_timeout() -> timedelta:
    """How long after the wake time waking waits for nodes before it restores the workloads anyway."""
    return timedelta(seconds=_setting("HIBERNATION_READY_TIMEOUT_SECONDS", 1800))


SessionFactory = Callable[[Cluster], AccountSession | None]


def default_session(cluster: Cluster) -> AccountSession | None:
    """The cluster's account in the cluster's region; None for a cluster without a linked account."""
    if cluster.cloud_account is None:
        return None
    return session_for(cluster.cloud_account, cluster.region)


# --- What the tick reads -------------------------------------------------------------------------------------------


def tick_candidates():
    """Enabled schedules, and disabled ones whose cluster is not awake (they must wake it), with their clusters and
    accounts: one query."""
    return HibernationSchedule.objects.filter(
        Q(enabled=True) | ~Q(cluster__hibernation_state=Cluster.HibernationState.AWAKE)
    ).select_related("cluster", "cluster__cloud_account")


def desired(schedule: HibernationSchedule, now: datetime) -> timetable.Evaluation:
    """What the timetable (with the override in force at ``now``) says; a disabled schedule says awake."""
    if not schedule.enabled:
        return timetable.Evaluation(timetable.AWAKE, None)
    return timetable.evaluate(schedule.timetable(now=now), now, horizon=timedelta(seconds=1))


def needs_attention(schedule: HibernationSchedule, now: datetime) -> bool:
    """Pure: whether the tick must lock and advance this schedule."""
    if schedule.override_state and schedule.override_until is not None and schedule.override_until <= now:
        return True
    if schedule.progress:
        return True
    state = schedule.cluster.hibernation_state
    want = desired(schedule, now).state
    if want == timetable.ASLEEP:
        return state == Cluster.HibernationState.AWAKE
    return state == Cluster.HibernationState.ASLEEP


@dataclass
class TickReport:
    evaluated: int = 0
    attended: int = 0
    steps: int = 0
    skipped_locked: int = 0
    errors: dict[int, str] = field(default_factory=dict)


def hibernation_tick(*, now: datetime | None = None, session_factory: SessionFactory = default_session) -> TickReport:
    """One tick over every schedule. Idempotent: a second tick right after finds nothing new to do."""
    now = now or timezone.now()
    report = TickReport()
    due: list[int] = []
    for schedule in tick_candidates():
        report.evaluated += 1
        try:
            if needs_attention(schedule, now):
                due.append(schedule.pk)
        except timetable.TimetableError as exc:  # stored values are validated on save; an unknown zone after an
            report.errors[schedule.pk] = str(exc)  # upgrade of tzdata must not stop the others
    for pk in due:
        report.attended += 1
        try:
            steps, locked = advance(pk, now=now, session_factory=session_factory)
        except Exception as exc:  # one cluster's failure never stops the others; it is retried next tick
            logger.exception("hibernation of schedule %s failed", pk)
            report.errors[pk] = f"{type(exc).__name__}: {exc}"
            continue
        report.steps += steps
        report.skipped_locked += int(locked)
    return report


# --- Advancing one schedule ----------------------------------------------------------------------------------------


def advance(
    schedule_id: int, *, now: datetime | None = None, session_factory: SessionFactory = default_session
) -> tuple[int, bool]:
    """Advance one schedule as far as it can go now. Returns (steps taken, whether another tick held the row)."""
    steps = 0
    for _ in range(MAX_STEPS_PER_TICK):
        with transaction.atomic():
            schedule = (
                HibernationSchedule.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("cluster", "cluster__cloud_account")
                .filter(pk=schedule_id)
                .first()
            )
            if schedule is None:
                return steps, steps == 0
            moved = _step(schedule, now or timezone.now(), session_factory)
        if not moved:
            return steps, False
        steps += 1
    return steps, False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _save_progress(schedule: HibernationSchedule, progress: dict, **extra: Any) -> None:
    schedule.progress = progress
    fields = ["progress"]
    for name, value in extra.items():
        setattr(schedule, name, value)
        fields.append(name)
    HibernationSchedule.objects.filter(pk=schedule.pk).update(**{f: getattr(schedule, f) for f in fields})


def _audit(schedule: HibernationSchedule, action: str, after: dict) -> None:
    record(
        action=action,
        organization_id=schedule.cluster.organization_id,
        actor=ACTOR,
        resource=schedule.cluster,
        after={"schedule_id": schedule.pk, **after},
    )


def _step(schedule: HibernationSchedule, now: datetime, session_factory: SessionFactory) -> bool:
    """One step with the row locked. Returns whether something changed (then the caller tries the next step)."""
    changed = override_expire(schedule=schedule, now=now)
    evaluation = desired(schedule, now)
    progress = dict(schedule.progress or {})
    cluster = schedule.cluster
    if not progress:
        if evaluation.state == timetable.ASLEEP and cluster.hibernation_state == Cluster.HibernationState.AWAKE:
            _begin_sleep(schedule, evaluation, now, session_factory)
            return True
        if evaluation.state == timetable.AWAKE and cluster.hibernation_state != Cluster.HibernationState.AWAKE:
            _begin_wake(schedule, evaluation, now)
            return True
        return changed
    if progress["direction"] == SLEEP and evaluation.state == timetable.AWAKE:
        # The window closed (or an override came) before the sleep finished: wake from wherever it got to.
        _audit(schedule, Audit.SLEEP_STEP, {"step": "aborted", "at_step": progress.get("step")})
        _begin_wake(schedule, evaluation, now)
        return True
    handler = (_sleep_step if progress["direction"] == SLEEP else _wake_step)[progress["step"]]
    return handler(schedule, progress, now, session_factory)


def _next(schedule: HibernationSchedule, progress: dict, step: str, now: datetime, **extra: Any) -> bool:
    direction = progress["direction"]
    _audit(
        schedule,
        Audit.SLEEP_STEP if direction == SLEEP else Audit.WAKE_STEP,
        {"step": progress["step"], "next": step, **{k: v for k, v in extra.items() if k != "errors"}},
    )
    progress = {**progress, "step": step, "step_started_at": _iso(now)}
    _save_progress(schedule, progress)
    return True


def _note(progress: dict, message: str) -> None:
    progress.setdefault("errors", []).append(message[:500])


# --- Keep rules ----------------------------------------------------------------------------------------------------


def _kept_group(schedule: HibernationSchedule, name: str) -> bool:
    return name in set((schedule.keep or {}).get("node_groups") or ())


def _kept_node(schedule: HibernationSchedule, node: KubeNode, groups_by_instance: dict[str, str]) -> bool:
    keep = schedule.keep or {}
    labels = keep.get("labels") or {}
    if labels and all(node.labels.get(k) == v for k, v in labels.items()):
        return True
    group = node.labels.get(NODE_GROUP_LABEL) or groups_by_instance.get(node.ec2_instance_id, "")
    return bool(group) and _kept_group(schedule, group)


# --- Sleeping -------------------------------------------------------------------------------------------------------


def _discover_groups(schedule: HibernationSchedule, session: AccountSession) -> dict[str, list[dict]]:
    """The cluster's EKS managed node groups and its other Auto Scaling groups (by inventory and by the cluster tag),
    with their sizes, except ``keep``."""
    cluster = schedule.cluster
    node_groups: list[dict] = []
    managed_asgs: set[str] = set()
    if cluster.kind == Cluster.Kind.EKS:
        try:
            groups = eks.describe_node_groups(session, cluster_name=cluster.name)
        except cloud_errors.NotFound:
            groups = []
        for g in groups:
            managed_asgs.update(g.autoscaling_groups)
            if _kept_group(schedule, g.name):
                continue
            node_groups.append(
                {"name": g.name, "min_size": g.min_size, "max_size": g.max_size, "desired": g.desired_size}
            )
    tag = f"kubernetes.io/cluster/{cluster.name}"
    names = set(
        Instance.objects.filter(cluster=cluster, terminated_at__isnull=True)
        .exclude(asg_name="")
        .values_list("asg_name", flat=True)
    )
    asgs = []
    for group in autoscaling.describe_auto_scaling_groups(session):
        if group.name in managed_asgs or _kept_group(schedule, group.name):
            continue
        if group.name in names or tag in group.tags or group.tags.get("eks:cluster-name") == cluster.name:
            asgs.append(
                {
                    "name": group.name,
                    "min_size": group.min_size,
                    "max_size": group.max_size,
                    "desired": group.desired_capacity,
                }
            )
    return {"node_groups": node_groups, "auto_scaling_groups": sorted(asgs, key=lambda g: g["name"])}


def _sleeping_capacity(schedule: HibernationSchedule) -> tuple[int, Decimal]:
    """The running instances that will sleep (all but ``keep``), and what they cost per hour: the inventory's price,
    else the catalog's current price of the instance."""
    cluster = schedule.cluster
    rows = [
        i
        for i in Instance.objects.filter(cluster=cluster, terminated_at__isnull=True, state__in=("pending", "running"))
        if not (_kept_group(schedule, i.node_group) or _kept_group(schedule, i.asg_name))
    ]
    unpriced = {i.instance_type for i in rows if i.hourly_price is None}
    book = prices.price_book((cluster.region, t) for t in unpriced)
    total = Decimal(0)
    for i in rows:
        price = i.hourly_price
        if price is None:
            price = book.price(i.instance_type, i.zone, i.lifecycle, cluster.region)
        total += price or Decimal(0)
    return len(rows), total


def _begin_sleep(
    schedule: HibernationSchedule, evaluation: timetable.Evaluation, now: datetime, session_factory: SessionFactory
) -> None:
    """Record what waking needs, before anything changes; then the cluster is sleeping."""
    progress: dict[str, Any] = {"direction": SLEEP, "step": "inventory", "started_at": _iso(now), "actions": {}}
    restore = dict(schedule.restore or {})
    if "node_groups" not in restore:  # never overwrite what an earlier, unfinished sleep recorded
        session = session_factory(schedule.cluster)
        if session is None:
            restore.update({"node_groups": [], "auto_scaling_groups": []})
            _note(progress, "The cluster has no linked AWS account: its capacity is not scaled.")
        else:
            restore.update(_discover_groups(schedule, session))
        restore["recorded_at"] = _iso(now)
    for job in OptimizationJob.objects.active().filter(cluster=schedule.cluster):
        try:
            job_cancel(job=job, actor=ACTOR, now=now)
        except ApplicationError as exc:
            _note(progress, f"Optimization job {job.pk} could not be cancelled: {exc.message}")
    nodes, hourly = _sleeping_capacity(schedule)
    wake_at = evaluation.period.wake_at if evaluation.period else None
    period = HibernationPeriod.objects.create(
        schedule=schedule,
        cluster=schedule.cluster,
        started_at=now,
        wake_at=wake_at,
        node_count=nodes,
        hourly_cost=hourly,
    )
    progress["period_id"] = period.pk
    _save_progress(schedule, progress, restore=restore)
    cluster_set_hibernation_state(cluster=schedule.cluster, state=Cluster.HibernationState.SLEEPING, actor=ACTOR)
    _audit(
        schedule,
        Audit.SLEEP_STARTED,
        {
            "wake_at": _iso(wake_at),
            "node_groups": restore["node_groups"],
            "auto_scaling_groups": restore["auto_scaling_groups"],
            "nodes": nodes,
            "hourly_cost": str(hourly),
        },
    )


def _action(progress: dict, key: str) -> AgentAction | None:
    pk = (progress.get("actions") or {}).get(key)
    return AgentAction.objects.filter(pk=pk).first() if pk else None


def _enqueue(schedule: HibernationSchedule, progress: dict, key: str, params: dict, reason: str) -> None:
    action = enqueue_action(
        cluster=schedule.cluster,
        type=AgentAction.Type.SCALE,
        target="workloads",
        params=params,
        deadline=timezone.now() + action_timeout(),
        reason=reason,
        origin=f"hibernation_schedule:{schedule.pk}:{key}",
        actor=ACTOR,
    )
    progress.setdefault("actions", {})[key] = action.pk
    _save_progress(schedule, progress)


def _waited_too_long(progress: dict, now: datetime, limit: timedelta) -> bool:
    started = _when(progress.get("step_started_at")) or _when(progress.get("started_at")) or now
    return now - started > limit


def _sleep_inventory(schedule: HibernationSchedule, progress: dict, now: datetime, _sf: SessionFactory) -> bool:
    if "workloads" in (schedule.restore or {}):
        return _next(schedule, progress, "scale_down", now)
    action = _action(progress, "inventory")
    if action is None:
        _enqueue(
            schedule,
            progress,
            "inventory",
            {"select": "all", "dry_run": True, "exclude_namespaces": list(SYSTEM_NAMESPACES)},
            "hibernation: record workloads before sleeping",
        )
        return False
    if not action.is_terminal:
        if not _waited_too_long(progress, now, action_timeout()):
            return False
        _note(progress, "The agent did not list the workloads in time; they are left as they are.")
        workloads: list[dict] = []
    elif action.state == AgentAction.State.SUCCEEDED:
        workloads = [
            w
            for w in (action.result_output or {}).get("workloads") or []
            if isinstance(w, dict) and w.get("namespace") not in SYSTEM_NAMESPACES
        ]
    else:
        _note(progress, f"Listing the workloads failed: {action.result_message}")
        workloads = []
    schedule.restore = {**schedule.restore, "workloads": workloads}
    _save_progress(schedule, progress, restore=schedule.restore)
    return _next(schedule, progress, "scale_down", now, workloads=len(workloads))


def _sleep_scale_down(schedule: HibernationSchedule, progress: dict, now: datetime, _sf: SessionFactory) -> bool:
    changes = []
    for w in schedule.restore.get("workloads") or []:
        if w["kind"] == "CronJob":
            if not w.get("suspend"):
                changes.append({**_ref(w), "suspend": True})
        elif w.get("replicas"):
            changes.append({**_ref(w), "replicas": 0})
    if not changes:
        return _next(schedule, progress, "drain", now)
    action = _action(progress, "scale_down")
    if action is None:
        _enqueue(schedule, progress, "scale_down", {"workloads": changes}, "hibernation: scale workloads to zero")
        return False
    if not action.is_terminal and not _waited_too_long(progress, now, action_timeout()):
        return False
    if action.state != AgentAction.State.SUCCEEDED:
        _note(progress, f"Scaling the workloads down did not finish: {action.result_message or 'no answer'}")
    return _next(schedule, progress, "drain", now, scaled=len(changes))


def _ref(w: dict) -> dict:
    return {"kind": w["kind"], "namespace": w["namespace"], "name": w["name"]}


def _sleep_drain(schedule: HibernationSchedule, progress: dict, now: datetime, _sf: SessionFactory) -> bool:
    timeout = drain_timeout()
    ids = (progress.get("actions") or {}).get("drain")
    if ids is None:
        groups = dict(
            Instance.objects.filter(cluster=schedule.cluster, terminated_at__isnull=True).values_list(
                "instance_id", "node_group"
            )
        )
        nodes = [n for n in KubeNode.objects.filter(cluster=schedule.cluster) if not _kept_node(schedule, n, groups)]
        ids = []
        for node in nodes:
            action = enqueue_action(
                cluster=schedule.cluster,
                type=AgentAction.Type.DRAIN,
                target=node.name,
                params={"grace_period_seconds": 30, "timeout_seconds": int(timeout.total_seconds())},
                deadline=now + timeout + timedelta(minutes=5),
                reason="hibernation: drain before sleeping",
                origin=f"hibernation_schedule:{schedule.pk}:drain",
                actor=ACTOR,
            )
            ids.append(action.pk)
        progress.setdefault("actions", {})["drain"] = ids
        _save_progress(schedule, progress)
        if ids:
            return False
    open_count = AgentAction.objects.filter(pk__in=ids).open().count() if ids else 0
    if open_count and not _waited_too_long(progress, now, timeout + timedelta(minutes=2)):
        return False
    failed = AgentAction.objects.filter(pk__in=ids).exclude(state=AgentAction.State.SUCCEEDED).count() if ids else 0
    if failed:
        _note(progress, f"{failed} of {len(ids)} drains did not complete (PodDisruptionBudgets or timeout).")
    return _next(schedule, progress, "capacity", now, drained=len(ids) - failed)


def _sleep_capacity(schedule: HibernationSchedule, progress: dict, now: datetime, sf: SessionFactory) -> bool:
    restore = schedule.restore or {}
    if restore.get("node_groups") or restore.get("auto_scaling_groups"):
        session = sf(schedule.cluster)
        if session is None:
            _note(progress, "The cluster's AWS account is no longer linked: capacity was not scaled down.")
        else:
            try:
                for g in restore.get("node_groups") or []:
                    eks.resize_node_group(
                        session,
                        cluster_name=schedule.cluster.name,
                        name=g["name"],
                        min_size=0,
                        max_size=g["max_size"],
                        desired_size=0,
                    )
                for g in restore.get("auto_scaling_groups") or []:
                    autoscaling.resize_group(
                        session, name=g["name"], min_size=0, max_size=g["max_size"], desired_capacity=0
                    )
                _terminate_launched(schedule, session, progress)
            except cloud_errors.CloudError as exc:
                if exc.transient:
                    return False  # AWS is throttling or down: the next tick tries again
                _note(progress, f"Scaling capacity to zero failed: {exc}")
    return _finish_sleep(schedule, progress, now)


def _terminate_launched(schedule: HibernationSchedule, session: AccountSession, progress: dict) -> None:
    """Instances that optimization jobs launched (tagged by them, in no group) are terminated; an optimization job
    plans that capacity anew once the cluster is awake."""
    launched = [
        i
        for i in ec2.describe_cluster_instances(session, cluster_name=schedule.cluster.name)
        if i.tags.get(TAG_MANAGED)
        and not i.asg_name
        and not i.node_group
        and i.state in ("pending", "running")
        and not _kept_group(schedule, i.tags.get(TAG_MANAGED, ""))
    ]
    if launched:
        ec2.terminate_instances(session, instance_ids=[i.instance_id for i in launched])
        ids = sorted({*(schedule.restore.get("terminated_instances") or []), *(i.instance_id for i in launched)})
        schedule.restore = {**schedule.restore, "terminated_instances": ids}
        _save_progress(schedule, progress, restore=schedule.restore)


def _finish_sleep(schedule: HibernationSchedule, progress: dict, now: datetime) -> bool:
    HibernationPeriod.objects.filter(pk=progress.get("period_id")).update(asleep_at=now)
    # While capacity is at zero the night is the hibernation entry's: the cluster's other entries stop counting.
    ledger_pause_cluster(cluster=schedule.cluster, at=now, actor=ACTOR)
    errors = progress.get("errors") or []
    _save_progress(schedule, {})
    schedule.restore = {**schedule.restore, "sleep_errors": errors}
    HibernationSchedule.objects.filter(pk=schedule.pk).update(restore=schedule.restore)
    cluster_set_hibernation_state(cluster=schedule.cluster, state=Cluster.HibernationState.ASLEEP, actor=ACTOR)
    _audit(schedule, Audit.ASLEEP, {"errors": errors})
    return True


# --- Waking ---------------------------------------------------------------------------------------------------------


def _begin_wake(schedule: HibernationSchedule, evaluation: timetable.Evaluation, now: datetime) -> None:
    """Capacity back first (from the pre-warm on the cluster counts as awake), workloads once nodes are Ready."""
    previous = schedule.progress or {}
    wake_at = evaluation.period.wake_at if evaluation.period and evaluation.period.wake_at > now else now
    period = HibernationPeriod.objects.filter(cluster=schedule.cluster, awake_at__isnull=True).order_by("-id").first()
    if period is not None:
        HibernationPeriod.objects.filter(pk=period.pk).update(waking_at=now, wake_at=wake_at)
    ledger_resume_cluster(cluster=schedule.cluster, at=now, actor=ACTOR)
    progress = {
        "direction": WAKE,
        "step": "capacity",
        "started_at": _iso(now),
        "step_started_at": _iso(now),
        "wake_at": _iso(wake_at),
        "period_id": period.pk if period else None,
        "actions": {},
        "errors": list(previous.get("errors") or []),
    }
    _save_progress(schedule, progress)
    cluster_set_hibernation_state(cluster=schedule.cluster, state=Cluster.HibernationState.WAKING, actor=ACTOR)
    _audit(schedule, Audit.WAKE_STARTED, {"wake_at": _iso(wake_at)})


def _wake_capacity(schedule: HibernationSchedule, progress: dict, now: datetime, sf: SessionFactory) -> bool:
    restore = schedule.restore or {}
    if restore.get("node_groups") or restore.get("auto_scaling_groups"):
        session = sf(schedule.cluster)
        if session is None:
            _note(progress, "The cluster's AWS account is no longer linked: capacity was not restored.")
        else:
            try:
                for g in restore.get("node_groups") or []:
                    eks.resize_node_group(
                        session,
                        cluster_name=schedule.cluster.name,
                        name=g["name"],
                        min_size=g["min_size"],
                        max_size=g["max_size"],
                        desired_size=g["desired"],
                    )
                for g in restore.get("auto_scaling_groups") or []:
                    autoscaling.resize_group(
                        session,
                        name=g["name"],
                        min_size=g["min_size"],
                        max_size=g["max_size"],
                        desired_capacity=g["desired"],
                    )
            except cloud_errors.CloudError as exc:
                if exc.transient:
                    return False
                _note(progress, f"Restoring capacity failed: {exc}")
    expected = sum(g["desired"] for g in restore.get("node_groups") or []) + sum(
        g["desired"] for g in restore.get("auto_scaling_groups") or []
    )
    progress["expected_nodes"] = expected
    return _next(schedule, progress, "nodes_ready", now, expected_nodes=expected)


def _wake_nodes_ready(schedule: HibernationSchedule, progress: dict, now: datetime, _sf: SessionFactory) -> bool:
    """Enough Ready nodes (except ``keep``) in an agent snapshot received since waking began; the last one's
    Ready time is when its row last changed."""
    expected = int(progress.get("expected_nodes") or 0)
    started = _when(progress.get("started_at")) or now
    ready_at = started
    if expected:
        fresh_snapshot = AgentStatus.objects.filter(cluster=schedule.cluster, last_snapshot_at__gte=started).exists()
        ready: list[KubeNode] = []
        if fresh_snapshot:
            groups = dict(
                Instance.objects.filter(cluster=schedule.cluster, terminated_at__isnull=True).values_list(
                    "instance_id", "node_group"
                )
            )
            ready = [
                n
                for n in KubeNode.objects.filter(cluster=schedule.cluster, ready=True)
                if not _kept_node(schedule, n, groups)
            ]
        if len(ready) < expected:
            wake_at = _when(progress.get("wake_at")) or now
            if now < wake_at + ready_timeout():
                return False
            _note(progress, f"Only {len(ready)} of {expected} nodes were Ready; the workloads are restored anyway.")
        ready_at = max([started, *(n.updated_at for n in ready)])
    HibernationPeriod.objects.filter(pk=progress.get("period_id")).update(ready_at=ready_at)
    progress["ready_at"] = _iso(ready_at)
    return _next(schedule, progress, "statefulsets", now, ready_at=_iso(ready_at))


def _wake_workloads(schedule: HibernationSchedule, progress: dict, now: datetime, _sf: SessionFactory) -> bool:
    step = progress["step"]
    kind = WORKLOAD_STEP_KIND[step]
    following = WAKE_STEPS[WAKE_STEPS.index(step) + 1]
    recorded = [w for w in (schedule.restore or {}).get("workloads") or [] if w["kind"] == kind]
    if kind == "CronJob":
        changes = [{**_ref(w), "suspend": False} for w in recorded if not w.get("suspend")]
    else:
        changes = [{**_ref(w), "replicas": int(w.get("replicas") or 0)} for w in recorded if w.get("replicas")]
    if not changes:
        return (
            _next(schedule, progress, following, now) if following != "done" else _finish_wake(schedule, progress, now)
        )
    action = _action(progress, step)
    if action is None:
        _enqueue(schedule, progress, step, {"workloads": changes}, f"hibernation: restore {kind}s")
        return False
    if not action.is_terminal and not _waited_too_long(progress, now, action_timeout()):
        return False
    if action.state != AgentAction.State.SUCCEEDED:
        _note(progress, f"Restoring the {kind}s did not finish: {action.result_message or 'no answer'}")
    if following == "done":
        return _finish_wake(schedule, progress, now)
    return _next(schedule, progress, following, now, restored=len(changes))


def _finish_wake(schedule: HibernationSchedule, progress: dict, now: datetime) -> bool:
    """Awake: the sleep's saving is the node-hours avoided (while capacity was at zero) × their hourly price."""
    saving = Decimal(0)
    period = HibernationPeriod.objects.filter(pk=progress.get("period_id")).first()
    if period is not None:
        period.awake_at = now
        if period.asleep_at and period.waking_at and period.waking_at > period.asleep_at:
            hours = Decimal((period.waking_at - period.asleep_at).total_seconds()) / Decimal(3600)
            period.node_hours = (hours * period.node_count).quantize(Decimal("0.0001"))
            entry = hibernation_entry(
                cluster=schedule.cluster,
                period_id=period.pk,
                asleep_at=period.asleep_at,
                waking_at=period.waking_at,
                hourly_cost=period.hourly_cost,
                node_count=period.node_count,
                actor=ACTOR,
            )
            period.saving = ledger_realized(entry)
            saving = period.saving
        period.save(update_fields=["awake_at", "node_hours", "saving"])
    errors = progress.get("errors") or []
    replanned = None
    terminated = bool((schedule.restore or {}).get("terminated_instances"))
    # Planning a big cluster takes minutes: where a worker runs tasks, its own task, queued once the cluster is
    # awake (other clusters' steps in this tick do not wait on it).
    queue_plan = terminated and evaluation.queues()
    if terminated and not queue_plan:
        try:
            replanned = job_create(
                cluster=schedule.cluster, trigger=OptimizationJob.Trigger.SCHEDULE, actor=ACTOR, now=now
            )
        except ApplicationError as exc:
            errors = [*errors, f"The capacity optimization jobs had launched was not planned anew: {exc.message}"]
    _save_progress(schedule, {}, restore={})
    cluster_set_hibernation_state(cluster=schedule.cluster, state=Cluster.HibernationState.AWAKE, actor=ACTOR)
    queued = queue_plan and evaluation.schedule(evaluation.WAKE_TASK, schedule.cluster_id)
    if queue_plan and not queued:
        errors = [*errors, "The capacity optimization jobs had launched could not be queued to be planned anew."]
    _audit(
        schedule,
        Audit.AWAKE,
        {
            "ready_at": progress.get("ready_at"),
            "wake_at": progress.get("wake_at"),
            "lateness_seconds": period.lateness_seconds if period else None,
            "saving": str(saving),
            "optimization_job": replanned.pk if replanned else None,
            "optimization_job_queued": queued,
            "errors": errors,
        },
    )
    return True


_sleep_step = {
    "inventory": _sleep_inventory,
    "scale_down": _sleep_scale_down,
    "drain": _sleep_drain,
    "capacity": _sleep_capacity,
}
_wake_step = {
    "capacity": _wake_capacity,
    "nodes_ready": _wake_nodes_ready,
    "statefulsets": _wake_workloads,
    "deployments": _wake_workloads,
    "cronjobs": _wake_workloads,
}
