"""Interruption intake and handling: one service for both sources (the account's EventBridge queue and the agent).

Intake stores each event once (``event_id`` is unique in the database), routes it by instance id through the
inventory to its cluster, and hands it to :func:`interruption_handle` in the same transaction, so that an event is
stored if and only if it was acted on. The queue consumer deletes a message only after that transaction committed:
a crash in between makes SQS deliver it again, and the unique id turns the second delivery into an acknowledged
duplicate. The agent's notice and the queue's event of one interruption are one interruption: the later of the two
(same instance or node, same kind, within two minutes) is stored as a duplicate and acted on no further.

Handling is policy-driven (see the README's "Interruptions"): a spot warning cordons and drains the node at once
(high-priority agent actions, drain fitted to the time left), puts the pool in the ICE cache and, for a node the
platform launched, starts an ``interruption`` job that launches the replacement; rebalance recommendations follow the
cluster policy's ``on_rebalance``; a terminated instance is closed in the inventory; a scheduled retirement gets a
replacement before its date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import CloudAccount
from agentapi.models import AgentAction, AgentEvent, KubeNode
from agentapi.services import PRIORITY_INTERRUPTION, enqueue_action
from audit.services import record
from clusters.models import Cluster, ClusterPolicy, Instance
from clusters.policy_services import policy_for
from optimization import ice
from optimization.models import JobStep
from optimization.services.interruption_jobs import Replacement, interruption_jobs_start, template_offerings
from optimization.services.runner import advance_job

from . import actions
from .events import SPOT_NOTICE, ParsedEvent
from .models import Interruption

logger = logging.getLogger(__name__)

Kind = Interruption.Kind
#: Two notices of one interruption from the two sources are this close at most.
SAME_INTERRUPTION_WINDOW = timedelta(minutes=2)
#: A pool interrupted this often within BURST_WINDOW is avoided for new launches for BURST_AVOID.
BURST_COUNT = 2
BURST_WINDOW = timedelta(minutes=10)
BURST_AVOID = timedelta(hours=1)
ACTOR = "system:interruptions"
#: The label a node gets while its scheduled retirement or maintenance waits (the value: the date, UTC).
SCHEDULED_LABEL = "spotopt.io/scheduled-change"
AGENT_KINDS = {
    AgentEvent.Type.SPOT_INTERRUPTION: Kind.SPOT_INTERRUPTION,
    AgentEvent.Type.REBALANCE_RECOMMENDATION: Kind.REBALANCE,
}


@dataclass
class IngestReport:
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    unrouted: int = 0

    def merge(self, other: IngestReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.unrouted += other.unrouted


# --- routing ---------------------------------------------------------------------------------------------------------


def _route(account: CloudAccount, events: list[ParsedEvent]) -> tuple[dict[tuple[str, str], Instance], dict]:
    """(instance id, region) → the inventory's instance (running ones first) among the clusters of the AWS account
    (whichever organization linked it), and (cluster id, instance id) → node name. Two queries for a batch."""
    ids = {e.instance_id for e in events if e.instance_id}
    if not ids:
        return {}, {}
    same_account = Q(cluster__cloud_account=account)
    aws_ids = {e.aws_account_id for e in events if e.aws_account_id} | (
        {account.aws_account_id} if account.aws_account_id else set()
    )
    if aws_ids:
        same_account |= Q(cluster__cloud_account__aws_account_id__in=aws_ids)
    rows = (
        Instance.objects.filter(same_account, instance_id__in=ids)
        .select_related("cluster", "cluster__cloud_account")
        .order_by("instance_id", "-terminated_at", "-id")  # NULLs (running) first on PostgreSQL; sorted below too
    )
    found: dict[tuple[str, str], Instance] = {}
    for row in sorted(rows, key=lambda r: (r.terminated_at is not None, -r.pk)):
        found.setdefault((row.instance_id, row.cluster.region), row)
    nodes = {
        (c, i): n
        for c, i, n in KubeNode.objects.filter(
            cluster_id__in={r.cluster_id for r in found.values()}, ec2_instance_id__in=ids
        ).values_list("cluster_id", "ec2_instance_id", "name")
    }
    return found, nodes


def _pool_facts(instance: Instance | None, at: datetime) -> dict[str, Any]:
    if instance is None:
        return {}
    age = int((at - instance.launch_time).total_seconds()) if instance.launch_time else None
    return {
        "instance_type": instance.instance_type,
        "zone": instance.zone,
        "lifecycle": instance.lifecycle,
        "instance_age_seconds": max(0, age) if age is not None else None,
    }


def _build(account: CloudAccount, parsed: ParsedEvent, found: dict, nodes: dict, at: datetime) -> Interruption:
    instance = found.get((parsed.instance_id, parsed.region or account_region(account)))
    if instance is None:
        instance = next((i for (iid, _), i in found.items() if iid == parsed.instance_id), None)
    cluster = instance.cluster if instance else None
    row = Interruption(
        organization_id=cluster.organization_id if cluster else account.organization_id,
        cloud_account=cluster.cloud_account if cluster else account,
        event_id=parsed.event_id,
        source=Interruption.Source.QUEUE,
        kind=parsed.kind,
        detail_type=parsed.detail_type,
        aws_account_id=parsed.aws_account_id,
        region=parsed.region,
        ec2_instance_id=parsed.instance_id,
        cluster=cluster,
        instance=instance,
        node_name=nodes.get((cluster.pk, parsed.instance_id), "") if cluster else "",
        routed=cluster is not None,
        state=parsed.state,
        action_at=parsed.action_at,
        occurred_at=parsed.occurred_at,
        received_at=at,
        payload=parsed.payload,
        **_pool_facts(instance, parsed.occurred_at),
    )
    row.cluster = cluster
    row.instance = instance
    return row


def interruptions_store(
    *, account: CloudAccount, events: list[ParsedEvent], now: datetime | None = None
) -> IngestReport:
    """Store a batch of queue events of ``account``'s queue and give the first response, in one transaction: the
    events are inserted together (an id already stored is a duplicate, acknowledged and skipped), and each spot
    warning's cordon and drain are queued at once (high priority, one audit entry per organization for the batch).
    Handling is completed by :func:`interruption_complete` for each stored id (``report.stored``).

    A concurrent consumer storing the same event makes the batch fall back to one event at a time."""
    report = IngestReport()
    at = now or timezone.now()
    found, nodes = _route(account, events)
    try:
        with transaction.atomic():
            existing = set(
                Interruption.objects.filter(event_id__in=[e.event_id for e in events]).values_list(
                    "event_id", flat=True
                )
            )
            rows: list[Interruption] = []
            for parsed in events:
                if parsed.event_id in existing:
                    report.duplicates += 1
                    continue
                existing.add(parsed.event_id)
                rows.append(_build(account, parsed, found, nodes, at))
            if not rows:
                return report
            clusters = sorted({r.cluster_id for r in rows if r.cluster_id})
            if clusters:
                list(Cluster.objects.select_for_update().filter(pk__in=clusters).order_by("pk").values_list("pk"))
            Interruption.objects.bulk_create(rows)
            _first_response(rows, at)
    except IntegrityError:
        return _store_one_by_one(account, events, found, nodes, at)
    report.stored = [r.pk for r in rows]
    report.unrouted = sum(1 for r in rows if not r.routed)
    return report


def _store_one_by_one(
    account: CloudAccount, events: list[ParsedEvent], found: dict, nodes: dict, at: datetime
) -> IngestReport:
    report = IngestReport()
    for parsed in events:
        row = _build(account, parsed, found, nodes, at)
        try:
            with transaction.atomic():
                if row.cluster_id:
                    list(Cluster.objects.select_for_update().filter(pk=row.cluster_id).values_list("pk"))
                row.save()
                _first_response([row], at)
        except IntegrityError:
            if not Interruption.objects.filter(event_id=parsed.event_id).exists():
                raise
            report.duplicates += 1
            continue
        report.stored.append(row.pk)
        report.unrouted += 0 if row.routed else 1
    return report


def _first_response(rows: list[Interruption], now: datetime) -> None:
    """What cannot wait: each routed spot warning's cordon and drain, queued ahead of everything else (bulk, one
    audit entry per organization); notices of an interruption already handled are marked duplicates."""
    queued: list[AgentAction] = []
    owners: list[Interruption] = []
    spot = [r for r in rows if r.routed and r.kind == Kind.SPOT_INTERRUPTION]
    open_drains = set(
        AgentAction.objects.open()
        .filter(
            cluster_id__in={r.cluster_id for r in spot},
            type="drain",
            target__in={r.node_name for r in spot if r.node_name},
            origin__startswith="interruption:",
        )
        .values_list("cluster_id", "target")
    )
    earlier_of = _earlier_notices(rows)
    for row in rows:
        row.outcome = []
        if not row.routed:
            row.outcome.append({"what": "unrouted", "detail": "no cluster's inventory has this instance"})
            continue
        earlier = earlier_of.get(row.pk)
        if earlier is not None:
            row.duplicate_of = earlier
            row.outcome.append({"what": "duplicate", "of": earlier.pk, "detail": f"already handled as #{earlier.pk}"})
            continue
        if row.kind != Kind.SPOT_INTERRUPTION:
            continue
        if not row.node_name:
            row.outcome.append({"what": "no_node", "detail": "the agent does not report a node for this instance"})
            continue
        params, deadline = _drain_params(row, now)
        reason = f"{row.get_kind_display()} ({row.event_id})"[:255]
        common = {
            "cluster_id": row.cluster_id,
            "target": row.node_name,
            "deadline": deadline,
            "reason": reason,
            "origin": f"interruption:{row.pk}",
            "priority": PRIORITY_INTERRUPTION,
            "created_at": now,
        }
        queued.append(AgentAction(type="cordon", params={}, max_attempts=3, **common))
        owners.append(row)
        if (row.cluster_id, row.node_name) in open_drains:
            row.outcome.append({"what": "drain", "already_queued": True})
            continue
        open_drains.add((row.cluster_id, row.node_name))
        queued.append(AgentAction(type="drain", params=params, max_attempts=2, **common))
        owners.append(row)
    if queued:
        AgentAction.objects.bulk_create(queued)
        for action, row in zip(queued, owners, strict=True):
            entry = {"what": action.type, "action_id": action.pk}
            row.outcome.append(entry | (action.params if action.type == "drain" else {}))
        by_org: dict[int, list[AgentAction]] = {}
        for action, row in zip(queued, owners, strict=True):
            by_org.setdefault(row.organization_id, []).append(action)
        for org_id, org_actions in by_org.items():
            record(
                action=actions.FIRST_RESPONSE,
                organization_id=org_id,
                resource_type="agentaction",
                resource_id=org_actions[0].pk,
                after={
                    "actions": [
                        {"id": a.pk, "type": a.type, "cluster_id": a.cluster_id, "target": a.target, "params": a.params}
                        for a in org_actions
                    ],
                    "priority": PRIORITY_INTERRUPTION,
                },
                actor=ACTOR,
            )
    for row in rows:
        row.outcome_summary = "; ".join(o["what"].replace("_", " ") for o in row.outcome)[:255]
    Interruption.objects.bulk_update(rows, ["outcome", "outcome_summary", "duplicate_of"])


def interruption_complete(*, interruption_id: int, offerings: dict | None = None) -> int | None:
    """Finish handling one stored event (idempotent). Returns the replacement job's id when it has one."""
    interruptions_complete(interruption_ids=[interruption_id], offerings=offerings)
    return Interruption.objects.filter(pk=interruption_id).values_list("job_id", flat=True).first()


def interruptions_complete(
    *,
    interruption_ids: list[int],
    offerings: dict | None = None,
    on_jobs: Callable[[list[int]], object] | None = None,
    on_error: Callable[[list[int], Exception], object] | None = None,
) -> list[int]:
    """Finish handling stored events (idempotent: handled ones are left alone), one transaction per cluster: the
    burst's interrupted pools go into the ICE cache together, the nodes the platform launched get ONE replacement job
    (launches grouped by pool), one audit entry per cluster. ``on_jobs`` is called with each cluster's new jobs as soon
    as its transaction committed (the consumer requests their launches while the next cluster is handled); with
    ``on_error``, a cluster whose handling fails is reported to it (its events stay pending, the sweep retries them)
    and the other clusters go on. Returns the ids of the jobs started."""
    offerings = {} if offerings is None else offerings
    by_cluster: dict[int | None, list[int]] = {}
    for pk, cluster_id in (
        Interruption.objects.filter(pk__in=interruption_ids, handled_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "cluster_id")
    ):
        by_cluster.setdefault(cluster_id, []).append(pk)
    # Each cluster's template offerings before its row is locked (the catalog match is the slow part; the intake of
    # the same cluster's next notices waits for that lock).
    for cluster in Cluster.objects.filter(pk__in=[c for c in by_cluster if c and c not in offerings]):
        offerings[cluster.pk] = template_offerings(cluster)
    started: list[int] = []
    for cluster_id, pks in by_cluster.items():
        try:
            jobs = _complete_cluster(cluster_id, pks, offerings)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(pks, exc)
            continue
        started += jobs
        if jobs and on_jobs is not None:
            on_jobs(jobs)
    return started


def _complete_cluster(cluster_id: int | None, pks: list[int], offerings: dict) -> list[int]:
    with transaction.atomic():
        if cluster_id:
            list(Cluster.objects.select_for_update().filter(pk=cluster_id).values_list("pk"))
        rows = list(
            Interruption.objects.select_for_update(of=("self",))
            .select_related("cluster", "cluster__cloud_account", "instance")
            .filter(pk__in=pks, handled_at__isnull=True)
            .order_by("pk")
        )
        if not rows:
            return []
        return _handle_rows(rows, now=timezone.now(), actor=ACTOR, offerings=offerings, responded=True)


def interruptions_pending(*, older_than: timedelta = timedelta(seconds=30), limit: int = 500) -> list[int]:
    """Stored events whose handling a crash (or a stopped consumer) left unfinished."""
    return list(
        Interruption.objects.filter(handled_at__isnull=True, received_at__lte=timezone.now() - older_than)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def interruptions_ingest(
    *, account: CloudAccount, events: list[ParsedEvent], now: datetime | None = None
) -> IngestReport:
    """Store a batch of queue events and handle them completely (what the consumer does in two steps)."""
    report = interruptions_store(account=account, events=events, now=now)
    interruptions_complete(interruption_ids=report.stored)
    return report


def account_region(account: CloudAccount) -> str:
    return account.regions[0] if account.regions else settings.AWS_DEFAULT_REGION


def agent_event_handle(*, event: AgentEvent, action_deadline: datetime | None, actor: Any) -> Interruption | None:
    """The agent's event (already stored by ``agentapi``, inside its transaction): interruption and rebalance
    notices go through the same handling as the queue's events. Other events are the agent app's alone."""
    kind = AGENT_KINDS.get(event.type)
    if kind is None:
        return None
    cluster = Cluster.objects.select_for_update(of=("self",)).select_related("cloud_account").get(pk=event.cluster_id)
    node = event.node_name
    instance = None
    if event.instance_id:
        instance = Instance.objects.filter(cluster=cluster, instance_id=event.instance_id).order_by("-id").first()
    if instance is None and node:
        linked = (
            KubeNode.objects.filter(cluster=cluster, name=node).values_list("instance_id", "ec2_instance_id").first()
        )
        if linked and linked[0]:
            instance = Instance.objects.filter(pk=linked[0]).first()
        elif linked and linked[1]:
            instance = Instance.objects.filter(cluster=cluster, instance_id=linked[1]).first()
    if instance is not None:
        instance.cluster = cluster
    interruption = Interruption.objects.create(
        organization_id=cluster.organization_id,
        cloud_account=cluster.cloud_account,
        event_id=f"agent:{event.pk}",
        source=Interruption.Source.AGENT,
        kind=kind,
        detail_type=event.type,
        region=cluster.region,
        ec2_instance_id=event.instance_id or (instance.instance_id if instance else ""),
        cluster=cluster,
        instance=instance,
        node_name=node,
        routed=True,
        action_at=action_deadline or (event.occurred_at + SPOT_NOTICE if kind == Kind.SPOT_INTERRUPTION else None),
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        payload={"agent_event": event.pk, "detail": event.detail},
        **_pool_facts(instance, event.occurred_at),
    )
    interruption.cluster = cluster
    interruption.instance = instance
    if kind != Kind.SPOT_INTERRUPTION:  # a rebalance notice: a cordon at most, handled here
        interruption_handle(interruption=interruption, now=event.received_at, actor=actor)
        return interruption
    # A spot warning, in the request: what cannot wait (the cordon and drain, or the notice recognized as a
    # duplicate); the rest (ICE, the replacement job and its launch) on a task once the request committed, as the
    # queue consumer does it. Should the task be lost, the consumer's sweep of unfinished events completes it.
    _first_response([interruption], event.received_at)
    _complete_later([interruption.pk])
    return interruption


COMPLETE_TASK = "interruptions.tasks.complete"


def _complete_later(interruption_ids: list[int]) -> None:
    def send() -> None:
        try:
            current_app.send_task(COMPLETE_TASK, args=[interruption_ids])
        except Exception:  # a broker outage must not fail the agent's request: the consumer's sweep completes them
            logger.exception("could not queue the completion of interruptions %s", interruption_ids)

    transaction.on_commit(send)


def request_launches(job_id: int) -> None:
    """Request a replacement job's launches now (one runner move per pool) instead of at the runner's next tick."""
    moves = JobStep.objects.filter(job_id=job_id, kind=JobStep.Kind.LAUNCH, state=JobStep.State.PENDING).count()
    if moves:
        advance_job(job_id=job_id, max_moves=moves)


def interruptions_complete_and_launch(*, interruption_ids: list[int]) -> list[int]:
    """:func:`interruptions_complete`, each new job's launches requested as soon as its cluster is done."""

    def launch(job_ids: list[int]) -> None:
        for job_id in job_ids:
            request_launches(job_id)

    return interruptions_complete(interruption_ids=interruption_ids, on_jobs=launch)


# --- handling --------------------------------------------------------------------------------------------------------


def _same_interruption(interruption: Interruption) -> Interruption | None:
    """An earlier notice of the same interruption (either source): same cluster, kind, instance or node, within the
    window. The caller holds the cluster's row lock, so two notices cannot both miss each other."""
    if interruption.kind not in (Kind.SPOT_INTERRUPTION, Kind.REBALANCE):
        return None
    who = Q()
    if interruption.ec2_instance_id:
        who |= Q(ec2_instance_id=interruption.ec2_instance_id)
    if interruption.node_name:
        who |= Q(node_name=interruption.node_name)
    if not who:
        return None
    at = interruption.occurred_at
    return (
        Interruption.objects.filter(
            who,
            cluster_id=interruption.cluster_id,
            kind=interruption.kind,
            duplicate_of__isnull=True,
            occurred_at__gte=at - SAME_INTERRUPTION_WINDOW,
            occurred_at__lte=at + SAME_INTERRUPTION_WINDOW,
        )
        .filter(pk__lt=interruption.pk)  # the notice stored first acts; the later ones are its duplicates
        .order_by("occurred_at", "id")
        .first()
    )


def _earlier_notices(rows: list[Interruption]) -> dict[int, Interruption]:
    """:func:`_same_interruption` for a whole stored batch, in one query: row id → the earlier notice it repeats."""
    relevant = [
        r
        for r in rows
        if r.routed and r.kind in (Kind.SPOT_INTERRUPTION, Kind.REBALANCE) and (r.ec2_instance_id or r.node_name)
    ]
    if not relevant:
        return {}
    ids = {r.ec2_instance_id for r in relevant if r.ec2_instance_id}
    names = {r.node_name for r in relevant if r.node_name}
    candidates = list(
        Interruption.objects.filter(
            Q(ec2_instance_id__in=ids) | Q(node_name__in=names),
            cluster_id__in={r.cluster_id for r in relevant},
            kind__in={r.kind for r in relevant},
            duplicate_of__isnull=True,
            occurred_at__gte=min(r.occurred_at for r in relevant) - SAME_INTERRUPTION_WINDOW,
            occurred_at__lte=max(r.occurred_at for r in relevant) + SAME_INTERRUPTION_WINDOW,
        ).order_by("occurred_at", "id")
    )
    found: dict[int, Interruption] = {}
    for row in sorted(relevant, key=lambda r: r.pk):
        for c in candidates:
            if c.pk >= row.pk or c.pk in found:
                continue
            same_who = (row.ec2_instance_id and c.ec2_instance_id == row.ec2_instance_id) or (
                row.node_name and c.node_name == row.node_name
            )
            if (
                same_who
                and c.cluster_id == row.cluster_id
                and c.kind == row.kind
                and abs(c.occurred_at - row.occurred_at) <= SAME_INTERRUPTION_WINDOW
            ):
                found[row.pk] = c
                break
    return found


def _drain_params(interruption: Interruption, now: datetime) -> tuple[dict[str, int], datetime]:
    """Drain fitted to the time left before AWS acts: the whole drain ends a few seconds before, each pod gets a
    third of it to stop (at most 30 s, Kubernetes' default)."""
    action_at = interruption.action_at or interruption.occurred_at + SPOT_NOTICE
    left = int((action_at - now).total_seconds())
    timeout = max(5, left - 5)
    grace = max(0, min(30, timeout // 3))
    return {"grace_period_seconds": grace, "timeout_seconds": timeout}, max(action_at, now + timedelta(seconds=30))


def _cordon(interruption: Interruption, *, priority: int, deadline: datetime | None, actor: Any) -> AgentAction:
    return enqueue_action(
        cluster=interruption.cluster,
        type="cordon",
        target=interruption.node_name,
        deadline=deadline,
        reason=f"{interruption.get_kind_display()} ({interruption.event_id})"[:255],
        origin=f"interruption:{interruption.pk}",
        actor=actor,
        priority=priority,
    )


def _cordon_and_drain(interruption: Interruption, now: datetime, actor: Any, out: list[dict]) -> None:
    """Cordon and drain at once, ahead of every other action of the cluster; one drain per node."""
    node = interruption.node_name
    if not node:
        out.append({"what": "no_node", "detail": "the agent does not report a node for this instance"})
        return
    params, deadline = _drain_params(interruption, now)
    cordon = _cordon(interruption, priority=PRIORITY_INTERRUPTION, deadline=deadline, actor=actor)
    out.append({"what": "cordon", "action_id": cordon.pk})
    running = (
        AgentAction.objects.open()
        .filter(cluster=interruption.cluster, type="drain", target=node, origin__startswith="interruption:")
        .first()
    )
    if running is not None:
        out.append({"what": "drain", "action_id": running.pk, "already_queued": True})
        return
    drain = enqueue_action(
        cluster=interruption.cluster,
        type="drain",
        target=node,
        params=params,
        deadline=deadline,
        max_attempts=2,
        reason=f"{interruption.get_kind_display()} ({interruption.event_id})"[:255],
        origin=f"interruption:{interruption.pk}",
        actor=actor,
        dedupe=False,
        priority=PRIORITY_INTERRUPTION,
    )
    out.append({"what": "drain", "action_id": drain.pk, **params})


def _platform_launched(instance: Instance | None) -> bool:
    """A node the platform launched (no Auto Scaling group or node group owns it: the group replaces its own)."""
    return instance is not None and not instance.asg_name and not instance.node_group


@dataclass
class _Pending:
    """A replacement asked for while handling a batch: started together, one job per cluster."""

    interruption: Interruption
    out: list[dict]
    drain_after_ready: bool


def _replace(interruption: Interruption, out: list[dict], pending: list[_Pending], *, drain_after_ready: bool) -> None:
    instance = interruption.instance
    if instance is None:
        out.append({"what": "no_replacement", "detail": "the inventory does not know the instance"})
        return
    if not _platform_launched(instance):
        owner = instance.asg_name or instance.node_group
        out.append({"what": "group_replaces", "detail": f"{owner} launches the replacement"})
        return
    pending.append(_Pending(interruption, out, drain_after_ready))


def _start_replacements(pending: list[_Pending], now: datetime, offerings: dict) -> list[int]:
    """One replacement job per cluster (and CPU architecture) for the replacements a batch asked for. Returns the
    ids of the jobs started."""
    by_cluster: dict[int, list[_Pending]] = {}
    for p in pending:
        by_cluster.setdefault(p.interruption.cluster_id, []).append(p)
    started: list[int] = []
    for cluster_id, items in by_cluster.items():
        cluster = items[0].interruption.cluster
        if cluster_id not in offerings:
            offerings[cluster_id] = template_offerings(cluster)
        results = interruption_jobs_start(
            cluster=cluster,
            replacements=[
                Replacement(
                    instance=p.interruption.instance,
                    node_name=p.interruption.node_name,
                    reason=f"{p.interruption.get_kind_display()} of {p.interruption.instance.instance_id} "
                    f"({p.interruption.event_id})",
                    drain_after_ready=p.drain_after_ready,
                )
                for p in items
            ],
            now=now,
            offerings=offerings[cluster_id],
        )
        for p, (job, note) in zip(items, results, strict=True):
            if job is None:
                p.out.append({"what": "no_replacement", "detail": note})
                continue
            p.interruption.job = job
            p.out.append({"what": "replacement_job", "job_id": job.pk, "detail": note})
            if job.created_at == now and job.pk not in started:
                started.append(job.pk)
    return started


def _ice_all(items: list[tuple[Interruption, list[dict], int]], now: datetime) -> None:
    """The interrupted pools go into the ICE cache (one write per cluster for a batch); a pool interrupted twice within
    10 minutes is avoided for an hour (interruptions come in bursts). Each event's outcome gets its entries at
    ``at``, where its handling put them in order."""
    by_cluster: dict[int, list[tuple[Interruption, list[dict], int]]] = {}
    for row, out, at in items:
        if row.instance_type and row.zone:
            by_cluster.setdefault(row.cluster_id, []).append((row, out, at))
    for group in by_cluster.values():
        cluster = group[0][0].cluster
        pools = sorted({(r.instance_type, r.zone, "spot") for r, _, _ in group})
        ice.mark_unavailable(cluster=cluster, offerings=pools, reason="spot interruption warning", now=now)
        seen = list(
            Interruption.objects.filter(
                organization_id=group[0][0].organization_id,
                region__in={r.region for r, _, _ in group},
                instance_type__in={p[0] for p in pools},
                zone__in={p[1] for p in pools},
                kind=Kind.SPOT_INTERRUPTION,
                duplicate_of__isnull=True,
                occurred_at__gte=min(r.occurred_at for r, _, _ in group) - BURST_WINDOW,
            ).values_list("region", "instance_type", "zone", "ec2_instance_id", "occurred_at")
        )
        avoided: dict[tuple[str, str, str], str] = {}
        for row, out, at in group:
            pool = (row.instance_type, row.zone, "spot")
            entries = [{"what": "ice", "pool": list(pool)}]
            recent = len(
                {
                    iid
                    for region, itype, zone, iid, at in seen
                    if (region, itype, zone) == (row.region, row.instance_type, row.zone)
                    and at >= row.occurred_at - BURST_WINDOW
                }
            )
            if recent >= BURST_COUNT:
                minutes = int(BURST_WINDOW.total_seconds() // 60)
                avoided[pool] = f"interrupted {max(recent, BURST_COUNT)} times within {minutes} minutes"
                entries.append({"what": "pool_avoided", "pool": list(pool), "until": (now + BURST_AVOID).isoformat()})
            out[at:at] = entries
        for pool, reason in avoided.items():
            ice.mark_unavailable(cluster=cluster, offerings=[pool], reason=reason, now=now, ttl=BURST_AVOID)


def _state_change(interruption: Interruption, now: datetime, out: list[dict]) -> None:
    instance = interruption.instance
    if instance is None:
        return
    state = interruption.state
    before = {"state": instance.state, "terminated_at": instance.terminated_at}
    update: dict[str, Any] = {"state": state, "updated_at": now}
    if state == "terminated" and instance.terminated_at is None:
        update["terminated_at"] = interruption.occurred_at
    Instance.objects.filter(pk=instance.pk).update(**update)
    for key, value in update.items():
        setattr(instance, key, value)
    record(
        action=actions.INSTANCE_STATE,
        organization_id=interruption.organization_id,
        resource_type="instance",
        resource_id=instance.pk,
        before=before,
        after={"state": state, "terminated_at": instance.terminated_at, "interruption_id": interruption.pk},
        actor=ACTOR,
    )
    out.append({"what": "inventory_closed" if state == "terminated" else "state_marked", "state": state})


def scheduled_lead() -> timedelta:
    """How long before a scheduled retirement or maintenance its node's replacement starts."""
    return timedelta(minutes=settings.INTERRUPTION_SCHEDULED_LEAD_MINUTES)


def _retirement_label(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _scheduled_change(
    interruption: Interruption, now: datetime, actor: Any, out: list[dict], pending: list[_Pending]
) -> None:
    """A scheduled retirement or maintenance: the node's replacement starts ``INTERRUPTION_SCHEDULED_LEAD_MINUTES``
    before the date (at once when that moment has passed or the event has no date); until then the node carries a
    label saying when it goes, and the event waits with ``replace_at`` set (:func:`scheduled_replacements_due`)."""
    date = interruption.action_at
    due = date - scheduled_lead() if date else None
    if due is None or due <= now or not _platform_launched(interruption.instance):
        _replace(interruption, out, pending, drain_after_ready=True)
        return
    interruption.replace_at = due
    out.append({"what": "replacement_scheduled", "at": due.isoformat(), "date": date.isoformat()})
    if interruption.node_name:
        label = enqueue_action(
            cluster=interruption.cluster,
            type="label",
            target=interruption.node_name,
            params={"labels": {SCHEDULED_LABEL: _retirement_label(date)}},
            reason=f"scheduled change on {date.isoformat()} ({interruption.event_id})"[:255],
            origin=f"interruption:{interruption.pk}",
            actor=actor,
        )
        out.append({"what": "label", "action_id": label.pk, "labels": {SCHEDULED_LABEL: _retirement_label(date)}})


def _handle(
    interruption: Interruption,
    now: datetime,
    actor: Any,
    responded: bool,
    pending: list[_Pending],
    to_ice: list[tuple[Interruption, list[dict], int]],
) -> list[dict]:
    """Act on one event of a batch; what can be done for the whole batch (ICE, replacements) is collected in
    ``to_ice`` and ``pending``. Returns the event's outcome list (filled further by the batch)."""
    out: list[dict] = list(interruption.outcome) if responded else []
    if interruption.cluster_id is None:
        if not responded:
            out.append({"what": "unrouted", "detail": "no cluster's inventory has this instance"})
    elif responded and interruption.duplicate_of_id:
        pass
    elif not responded and (earlier := _same_interruption(interruption)) is not None:
        interruption.duplicate_of = earlier
        out.append({"what": "duplicate", "of": earlier.pk, "detail": f"already handled as #{earlier.pk}"})
    elif interruption.kind == Kind.SPOT_INTERRUPTION:
        if not responded:
            _cordon_and_drain(interruption, now, actor, out)
        if interruption.lifecycle in ("", Instance.Lifecycle.SPOT):
            to_ice.append((interruption, out, len(out)))
        _replace(interruption, out, pending, drain_after_ready=False)
    elif interruption.kind == Kind.REBALANCE:
        policy = policy_for(interruption.cluster)
        mode = policy.on_rebalance
        if mode == ClusterPolicy.OnRebalance.IGNORE:
            out.append({"what": "recorded", "detail": "on_rebalance is ignore"})
        elif not interruption.node_name:
            out.append({"what": "no_node", "detail": "the agent does not report a node for this instance"})
        elif mode == ClusterPolicy.OnRebalance.CORDON:
            action = _cordon(interruption, priority=PRIORITY_INTERRUPTION, deadline=None, actor=actor)
            out.append({"what": "cordon", "action_id": action.pk})
            if policy.uncordon_after_minutes:
                interruption.uncordon_at = now + timedelta(minutes=policy.uncordon_after_minutes)
                out.append({"what": "uncordon_scheduled", "at": interruption.uncordon_at.isoformat()})
        else:
            action = _cordon(interruption, priority=PRIORITY_INTERRUPTION, deadline=None, actor=actor)
            out.append({"what": "cordon", "action_id": action.pk})
            _replace(interruption, out, pending, drain_after_ready=True)
            if not _platform_launched(interruption.instance):
                params, deadline = {"grace_period_seconds": 30, "timeout_seconds": 600}, now + timedelta(minutes=15)
                drain = enqueue_action(
                    cluster=interruption.cluster,
                    type="drain",
                    target=interruption.node_name,
                    params=params,
                    deadline=deadline,
                    reason=f"rebalance recommendation ({interruption.event_id})"[:255],
                    origin=f"interruption:{interruption.pk}",
                    actor=actor,
                )
                out.append({"what": "drain", "action_id": drain.pk})
    elif interruption.kind == Kind.STATE_CHANGE:
        _state_change(interruption, now, out)
    elif interruption.kind == Kind.SCHEDULED_CHANGE:
        _scheduled_change(interruption, now, actor, out, pending)
    return out


def _handle_rows(rows: list[Interruption], *, now: datetime, actor: Any, offerings: dict, responded: bool) -> list[int]:
    """Handle a batch of stored events (inside the caller's transaction, their clusters' rows locked): each event's
    own actions, then the batch's ICE entries and replacement jobs, the rows saved together and one audit entry per
    organization. Returns the ids of the replacement jobs started."""
    pending: list[_Pending] = []
    to_ice: list[tuple[Interruption, list[dict], int]] = []
    outs = [_handle(row, now, actor, responded, pending, to_ice) for row in rows]
    if to_ice:
        _ice_all(to_ice, now)
    started = _start_replacements(pending, now, offerings) if pending else []
    spot = [r for r in rows if r.kind == Kind.SPOT_INTERRUPTION and r.cluster_id and r.ec2_instance_id]
    warned = {(r.cluster_id, r.ec2_instance_id) for r in spot}
    for cluster_id in {r.cluster_id for r in spot}:  # a rebalance cordon waiting to be undone is moot now
        Interruption.objects.filter(
            cluster_id=cluster_id,
            ec2_instance_id__in={r.ec2_instance_id for r in spot if r.cluster_id == cluster_id},
            uncordon_at__isnull=False,
        ).update(uncordon_at=None)
    for row, out in zip(rows, outs, strict=True):
        row.outcome = out
        row.outcome_summary = "; ".join(o["what"].replace("_", " ") for o in out)[:255]
        row.handled_at = now
        if row.uncordon_at and (row.cluster_id, row.ec2_instance_id) in warned:
            row.uncordon_at = None
    fields = ["outcome", "outcome_summary", "job", "handled_at"]  # only what a batch may have changed: less SQL
    if not responded:
        fields.append("duplicate_of")
    if any(r.uncordon_at for r in rows) or warned:
        fields.append("uncordon_at")
    if any(r.replace_at for r in rows):
        fields.append("replace_at")
    Interruption.objects.bulk_update(rows, fields)
    by_org: dict[int, list[Interruption]] = {}
    for row in rows:
        by_org.setdefault(row.organization_id, []).append(row)
    for org_id, org_rows in by_org.items():
        record(
            action=actions.HANDLED,
            organization_id=org_id,
            resource_type="interruption",
            resource_id=org_rows[0].pk,
            after={
                "interruptions": [
                    {
                        "id": r.pk,
                        "event_id": r.event_id,
                        "source": r.source,
                        "kind": r.kind,
                        "instance_id": r.ec2_instance_id,
                        "node": r.node_name,
                        "cluster_id": r.cluster_id,
                        "routed": r.routed,
                        "outcome": r.outcome,
                    }
                    for r in org_rows
                ]
            },
            actor=actor,
        )
    return started


def interruption_handle(
    *,
    interruption: Interruption,
    now: datetime | None = None,
    actor: Any = ACTOR,
    offerings: dict | None = None,
    responded: bool = False,
) -> list[int]:
    """Act on one stored interruption event (inside the caller's transaction, the cluster's row locked) and record
    what was done on the row and in the audit log. Returns the ids of the replacement jobs started."""
    return _handle_rows(
        [interruption],
        now=now or timezone.now(),
        actor=actor,
        offerings={} if offerings is None else offerings,
        responded=responded,
    )


def scheduled_replacements_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Start the replacements of scheduled changes whose lead time has come (one job per cluster). Returns the ids of
    the jobs started (the caller requests their launches; the job runner's tick does anyway)."""
    now = now or timezone.now()
    by_cluster: dict[int, list[int]] = {}
    for pk, cluster_id in (
        Interruption.objects.filter(replace_at__isnull=False, replace_at__lte=now)
        .order_by("replace_at", "pk")
        .values_list("pk", "cluster_id")[:limit]
    ):
        by_cluster.setdefault(cluster_id, []).append(pk)
    started: list[int] = []
    for cluster_id, pks in by_cluster.items():
        with transaction.atomic():
            list(Cluster.objects.select_for_update().filter(pk=cluster_id).values_list("pk"))
            rows = list(
                Interruption.objects.select_for_update(of=("self",))
                .select_related("cluster", "cluster__cloud_account", "instance")
                .filter(pk__in=pks, replace_at__isnull=False)
                .order_by("pk")
            )
            if not rows:
                continue
            pending: list[_Pending] = []
            outs: list[list[dict]] = []
            for row in rows:
                out: list[dict] = []
                outs.append(out)
                if row.instance is not None and row.instance.terminated_at is not None:
                    out.append({"what": "no_replacement", "detail": "the instance is already gone"})
                else:
                    _replace(row, out, pending, drain_after_ready=True)
            jobs = _start_replacements(pending, now, {}) if pending else []
            for row, out in zip(rows, outs, strict=True):
                row.replace_at = None
                row.outcome = [*row.outcome, *out]
                row.outcome_summary = "; ".join(o["what"].replace("_", " ") for o in row.outcome)[:255]
            Interruption.objects.bulk_update(rows, ["outcome", "outcome_summary", "job", "replace_at"])
            record(
                action=actions.SCHEDULED_REPLACEMENT,
                organization_id=rows[0].organization_id,
                resource_type="interruption",
                resource_id=rows[0].pk,
                after={
                    "interruptions": [
                        {"id": r.pk, "instance_id": r.ec2_instance_id, "outcome": o}
                        for r, o in zip(rows, outs, strict=True)
                    ]
                },
                actor=ACTOR,
            )
        started += jobs
    return started


def rebalance_uncordon_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Uncordon the nodes a rebalance recommendation cordoned ``uncordon_after_minutes`` ago when no interruption
    followed. Returns how many were uncordoned."""
    now = now or timezone.now()
    done = 0
    due = list(
        Interruption.objects.filter(uncordon_at__isnull=False, uncordon_at__lte=now)
        .select_related("cluster")
        .order_by("uncordon_at")[:limit]
    )
    for item in due:
        with transaction.atomic():
            if not Interruption.objects.filter(pk=item.pk, uncordon_at__isnull=False).update(uncordon_at=None):
                continue
            followed = Interruption.objects.filter(
                cluster_id=item.cluster_id,
                ec2_instance_id=item.ec2_instance_id,
                kind=Kind.SPOT_INTERRUPTION,
                occurred_at__gte=item.occurred_at,
            ).exists()
            if followed or not item.node_name:
                continue
            action = enqueue_action(
                cluster=item.cluster,
                type="uncordon",
                target=item.node_name,
                reason=f"no interruption followed the rebalance recommendation ({item.event_id})"[:255],
                origin=f"interruption:{item.pk}",
                actor=ACTOR,
            )
            Interruption.objects.filter(pk=item.pk).update(
                outcome=[*item.outcome, {"what": "uncordon", "action_id": action.pk}],
            )
            record(
                action=actions.REBALANCE_UNCORDONED,
                organization_id=item.organization_id,
                resource=item,
                after={"node": item.node_name, "action_id": action.pk},
                actor=ACTOR,
            )
            done += 1
    return done
