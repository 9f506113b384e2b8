"""Writes of the agent channel: API keys, snapshot intake, the action queue and events. Each validates, saves and
audits; views and the console are thin adapters over these functions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import record
from clusters.models import Cluster, Instance
from spotopt.errors import Conflict, NotFound, ValidationFailed

from . import event_hooks
from .models import AgentAction, AgentEvent, AgentStatus, ApiKey, KubeNode, KubePod, connection_state, hash_key
from .validation import validate_events, validate_snapshot

# last_used_at / last_seen_at are refreshed at most this often, so that a poll is not a write.
TOUCH_EVERY = timedelta(seconds=15)


# --- API keys --------------------------------------------------------------------------------------------------------
def api_key_create(*, cluster: Cluster, name: str, actor: Any = None) -> tuple[ApiKey, str]:
    """A new key for ``cluster``; returns the row and the raw key, which is never retrievable again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("A key needs a name of 1 to 100 characters.", fields={"name": ["1 to 100 characters."]})
    raw, prefix = ApiKey.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            cluster=cluster,
            name=name,
            prefix=prefix,
            key_hash=hash_key(raw),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record(
            action="api_key.created",
            organization_id=cluster.organization_id,
            resource=key,
            after={"name": key.name, "prefix": key.prefix, "cluster_id": cluster.pk},
            actor=actor,
        )
    return key, raw


def api_key_revoke(*, api_key: ApiKey, actor: Any = None) -> ApiKey:
    """Revoke ``api_key``; revoking a revoked key changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        if not ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
            api_key.refresh_from_db(fields=["revoked_at"])
            return api_key
        api_key.revoked_at = now
        record(
            action="api_key.revoked",
            organization_id=api_key.cluster.organization_id,
            resource=api_key,
            before={"revoked_at": None},
            after={"revoked_at": now, "prefix": api_key.prefix},
            actor=actor,
        )
    return api_key


def agent_touch(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Record that the agent holding ``api_key`` made contact. At most one write per key every TOUCH_EVERY."""
    now = now or timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < TOUCH_EVERY:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
    if not AgentStatus.objects.filter(cluster_id=api_key.cluster_id).update(last_seen_at=now):
        AgentStatus.objects.get_or_create(
            cluster_id=api_key.cluster_id, defaults={"last_seen_at": now, "poll_seconds": settings.AGENT_POLL_SECONDS}
        )


# --- Snapshot intake -------------------------------------------------------------------------------------------------
# (column, JSON key, PostgreSQL type) of the rows written from the snapshot.
_NODE_COLUMNS = (
    ("name", "name", "text"),
    ("provider_id", "provider_id", "text"),
    ("ec2_instance_id", "ec2_instance_id", "text"),
    ("instance_type", "instance_type", "text"),
    ("zone", "zone", "text"),
    ("capacity_type", "capacity_type", "text"),
    ("labels", "labels", "jsonb"),
    ("taints", "taints", "jsonb"),
    ("unschedulable", "unschedulable", "boolean"),
    ("ready", "ready", "boolean"),
    ("cpu_m", "cpu_m", "bigint"),
    ("memory_mib", "memory_mib", "bigint"),
    ("max_pods", "max_pods", "integer"),
)
_POD_COLUMNS = (
    ("namespace", "namespace", "text"),
    ("name", "name", "text"),
    ("node_name", "node", "text"),
    ("phase", "phase", "text"),
    ("cpu_m", "cpu_m", "bigint"),
    ("memory_mib", "memory_mib", "bigint"),
    ("owner_kind", "owner_kind", "text"),
    ("owner_name", "owner_name", "text"),
    ("daemonset", "daemonset", "boolean"),
    ("do_not_disrupt", "do_not_disrupt", "boolean"),
    ("priority", "priority", "integer"),
)


def _sync_rows(
    model,
    *,
    cluster_id: int,
    rows: list[dict],
    columns,
    key: tuple[str, ...],
    now: datetime,
    computed: dict[str, str] | None = None,
) -> None:
    """Make the cluster's rows of ``model`` exactly ``rows`` in TWO statements whatever their number.

    The rows travel as a single JSON parameter that the database expands (``jsonb_to_recordset`` on PostgreSQL,
    ``json_each`` on SQLite); Django's ``bulk_create(update_conflicts=True)`` would split 5,000 rows into many
    statements to stay under the parameter limits. The upsert only rewrites rows that changed, so a steady cluster
    costs reads, not writes; the delete removes the rows the snapshot no longer has.

    ``key`` are the snapshot's identity columns (besides ``cluster_id``); ``computed`` maps a column to an SQL
    expression over ``{src_<json key>}`` placeholders.
    """
    qn = connection.ops.quote_name
    pg = connection.vendor == "postgresql"
    table = qn(model._meta.db_table)
    types = {json_key: sqltype for _, json_key, sqltype in columns}
    json_key_of = {col: json_key for col, json_key, _ in columns}

    def src(json_key: str) -> str:
        return f"r.{qn(json_key)}" if pg else f"json_extract(j.value, '$.{json_key}')"

    def source(wanted: list[str]) -> str:
        if pg:
            record_def = ", ".join(f"{qn(k)} {types[k]}" for k in wanted)
            return f"jsonb_to_recordset(%s::jsonb) AS r({record_def})"
        return "json_each(%s) AS j"

    payload = json.dumps(rows)
    data_cols = [c for c, _, _ in columns] + list(computed or {})
    select = [src(k) for _, k, _ in columns] + [
        expr.format(**{f"src_{k}": src(k) for k in types}) for expr in (computed or {}).values()
    ]
    changed = [c for c in data_cols if c not in key]
    distinct = " OR ".join(f"cur.{qn(c)} {'IS DISTINCT FROM' if pg else 'IS NOT'} excluded.{qn(c)}" for c in changed)
    updates = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in [*changed, "updated_at"])
    conflict = ", ".join(qn(c) for c in ("cluster_id", *key))
    # Only identifiers from model metadata are interpolated; every value is a parameter.
    upsert = (
        f"INSERT INTO {table} AS cur ({', '.join(qn(c) for c in [*data_cols, 'cluster_id', 'updated_at'])}) "  # noqa: S608
        f"SELECT {', '.join(select)}, %s, %s FROM {source(list(types))}{'' if pg else ' WHERE true'} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {distinct}"
    )
    key_cols = ", ".join(qn(c) for c in key)
    key_src = ", ".join(src(json_key_of[c]) for c in key)
    delete = (
        f"DELETE FROM {table} WHERE cluster_id = %s AND ({key_cols}) NOT IN "  # noqa: S608
        f"(SELECT {key_src} FROM {source([json_key_of[c] for c in key])})"
    )
    with connection.cursor() as cursor:
        if rows:
            # Placeholders are positional in SQL text order: the SELECT list's constants, then FROM's JSON.
            cursor.execute(upsert, [cluster_id, now, payload])
        cursor.execute(delete, [cluster_id, payload])


def snapshot_ingest(*, api_key: ApiKey, data: Any) -> dict:
    """Replace the cluster's node and pod state with the agent's snapshot, in a constant number of queries.

    Validates everything before writing; one transaction, so a bad snapshot saves nothing.
    """
    cleaned = validate_snapshot(data)
    cluster_id = api_key.cluster_id
    now = timezone.now()
    with transaction.atomic():
        # Locking the status row serializes two snapshots of one cluster (agent restarted, old one still running).
        status, _ = AgentStatus.objects.select_for_update().get_or_create(
            cluster_id=cluster_id, defaults={"poll_seconds": settings.AGENT_POLL_SECONDS}
        )
        previous = {
            "connection": connection_state(status.last_seen_at, status.poll_seconds, now),
            "agent_version": status.agent_version,
            "kubernetes_version": status.kubernetes_version,
        }
        generation = status.snapshot_generation + 1
        instances = Instance._meta.db_table
        qn = connection.ops.quote_name
        _sync_rows(
            KubeNode,
            cluster_id=cluster_id,
            rows=cleaned["nodes"],
            columns=_NODE_COLUMNS,
            key=("name",),
            now=now,
            computed={
                # Link to the EC2 instance the provider id names (unique per cluster), if the inventory has it.
                "instance_id": f"(SELECT i.id FROM {qn(instances)} i WHERE i.cluster_id = {int(cluster_id)} "  # noqa: S608
                "AND i.instance_id = {src_ec2_instance_id})",
            },
        )
        _sync_rows(
            KubePod,
            cluster_id=cluster_id,
            rows=cleaned["pods"],
            columns=_POD_COLUMNS,
            key=("namespace", "name"),
            now=now,
        )

        status.snapshot_generation = generation
        status.last_seen_at = now
        status.last_snapshot_at = now
        status.poll_seconds = settings.AGENT_POLL_SECONDS
        status.node_count = len(cleaned["nodes"])
        status.pod_count = len(cleaned["pods"])
        if cleaned["agent_version"]:
            status.agent_version = cleaned["agent_version"]
        if cleaned["kubernetes_version"]:
            status.kubernetes_version = cleaned["kubernetes_version"]
        status.save()
        if (
            previous["connection"] != AgentStatus.Connection.CONNECTED
            or previous["agent_version"] != status.agent_version
            or previous["kubernetes_version"] != status.kubernetes_version
        ):
            # Routine snapshots are not audited (they change nothing an operator did); a (re)connection or an
            # upgrade is.
            record(
                action="agent.connected",
                organization_id=api_key.cluster.organization_id,
                resource_type="cluster",
                resource_id=cluster_id,
                before=previous,
                after={
                    "connection": AgentStatus.Connection.CONNECTED,
                    "agent_version": status.agent_version,
                    "kubernetes_version": status.kubernetes_version,
                },
                actor=api_key,
            )
    return {
        "next_poll_seconds": status.poll_seconds,
        "nodes": status.node_count,
        "pods": status.pod_count,
        "generation": generation,
    }


# --- The action queue ------------------------------------------------------------------------------------------------
#: The priority of an interruption's cordon and drain: leased before anything else of the cluster.
PRIORITY_INTERRUPTION = 100
_NODE_TARGET_TYPES = {"cordon", "uncordon", "drain", "label", "taint"}


def _validate_params(action_type: str, target: str, params: dict) -> dict:
    fields: dict[str, list[str]] = {}
    if action_type not in AgentAction.Type.values:
        fields["type"] = [f"Must be one of {', '.join(AgentAction.Type.values)}."]
    if not target or len(target) > 512:
        fields["target"] = ["Required, at most 512 characters."]
    elif action_type == "evict" and target.count("/") != 1:
        fields["target"] = ["An eviction targets namespace/pod."]
    if not isinstance(params, dict):
        fields["params"] = ["Must be an object."]
        params = {}
    if action_type == "label":
        labels = params.get("labels")
        if (
            not isinstance(labels, dict)
            or not labels
            or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in labels.items())
        ):
            fields["params"] = ["label needs {'labels': {key: value or null}}."]
    if action_type == "taint":
        if not isinstance(params.get("key"), str) or not params.get("key"):
            fields["params"] = ["taint needs a key."]
        elif params.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            fields["params"] = ["taint effect must be NoSchedule, PreferNoSchedule or NoExecute."]
    if action_type == "scale":
        problem = scale_params_problem(target, params)
        if problem:
            fields["params"] = [problem]
    if action_type in ("drain", "evict"):
        for key in ("grace_period_seconds", "timeout_seconds"):
            value = params.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                fields["params"] = [f"{key} must be a non-negative integer."]
    if fields:
        raise ValidationFailed("Invalid action.", fields=fields)
    return params


SCALE_KINDS = ("Deployment", "StatefulSet", "CronJob")
MAX_SCALE_WORKLOADS = 5000


def scale_params_problem(target: str, params: dict) -> str:
    """What is wrong with a ``scale`` action, or "". Target ``workloads``; params either
    ``{"select": "all", "dry_run": true, "exclude_namespaces": [...]}`` (report every Deployment, StatefulSet and
    CronJob, change nothing) or ``{"workloads": [{"kind", "namespace", "name", "replicas" | "suspend"}]}``."""
    if target != "workloads":
        return 'scale targets "workloads".'
    if params.get("select") is not None:
        excluded = params.get("exclude_namespaces") or []
        if params.get("select") != "all" or params.get("dry_run") is not True:
            return 'select is "all" with "dry_run": true.'
        if not isinstance(excluded, list) or not all(isinstance(n, str) for n in excluded):
            return "exclude_namespaces must be a list of namespaces."
        return ""
    workloads = params.get("workloads")
    if not isinstance(workloads, list) or not workloads or len(workloads) > MAX_SCALE_WORKLOADS:
        return f"scale needs 1-{MAX_SCALE_WORKLOADS} workloads or select all."
    for i, w in enumerate(workloads):
        if not isinstance(w, dict) or w.get("kind") not in SCALE_KINDS:
            return f"workloads[{i}].kind must be one of {', '.join(SCALE_KINDS)}."
        if not all(isinstance(w.get(k), str) and 0 < len(w[k]) <= 253 for k in ("namespace", "name")):
            return f"workloads[{i}] needs a namespace and a name."
        if w["kind"] == "CronJob":
            if not isinstance(w.get("suspend"), bool):
                return f"workloads[{i}].suspend must be true or false."
        elif isinstance(w.get("replicas"), bool) or not isinstance(w.get("replicas"), int) or w["replicas"] < 0:
            return f"workloads[{i}].replicas must be a non-negative integer."
    return ""


def enqueue_action(
    *,
    cluster: Cluster,
    type: str,
    target: str,
    params: dict | None = None,
    deadline: datetime | None = None,
    max_attempts: int = 3,
    reason: str = "",
    origin: str = "",
    actor: Any = None,
    dedupe: bool = True,
    priority: int = 0,
) -> AgentAction:
    """Queue a Kubernetes action for the cluster's agent: the only way actions are created. Audited.

    ``origin`` names what asked for it (``optimization_job:12:step:40``, ``agent_event:7``) so that the requester can
    find its actions again (after a crash too). With ``dedupe`` an identical open action (same type, target and params,
    whoever asked) is returned instead of a second one, so repeated interruption notices do not pile up drains.
    A higher ``priority`` is leased ahead of every lower one (:data:`PRIORITY_INTERRUPTION`).
    """
    params = _validate_params(type, target, params or {})
    if max_attempts < 1:
        raise ValidationFailed("max_attempts must be at least 1.", fields={"max_attempts": ["At least 1."]})
    if not isinstance(origin, str) or len(origin) > 128:
        raise ValidationFailed("origin is at most 128 characters.", fields={"origin": ["At most 128 characters."]})
    now = timezone.now()
    deadline = deadline or now + timedelta(seconds=settings.AGENT_ACTION_DEADLINE_SECONDS)
    with transaction.atomic():
        if dedupe:
            same = AgentAction.objects.open().filter(cluster=cluster, type=type, target=target)
            existing = (
                same.filter(params=params).first()
                if connection.vendor == "postgresql"
                else next((a for a in same if a.params == params), None)
            )
            if existing is not None:
                return existing
        action = AgentAction.objects.create(
            cluster=cluster,
            type=type,
            target=target,
            params=params,
            deadline=deadline,
            max_attempts=max_attempts,
            reason=reason[:255],
            origin=origin,
            priority=priority,
            created_at=now,
        )
        record(
            action="agent_action.enqueued",
            organization_id=cluster.organization_id,
            resource=action,
            after={
                "type": type,
                "target": target,
                "params": params,
                "deadline": deadline,
                "reason": reason,
                "origin": origin,
            }
            | ({"priority": priority} if priority else {}),
            actor=actor,
        )
    return action


def _finish(
    action: AgentAction, state: str, message: str, now: datetime, actor: Any, output: dict | None = None
) -> None:
    before = {"state": action.state, "attempts": action.attempts}
    action.state = state
    action.result_message = message[:4000]
    action.finished_at = now
    action.lease_expires_at = None
    update = ["state", "result_message", "finished_at", "lease_expires_at"]
    if output is not None:
        action.result_output = output
        update.append("result_output")
    action.save(update_fields=update)
    record(
        action=f"agent_action.{state}",
        organization_id=action.cluster.organization_id,
        resource=action,
        before=before,
        after={"state": state, "attempts": action.attempts, "message": action.result_message},
        actor=actor,
    )


def actions_lease(*, api_key: ApiKey, max_actions: int = 10) -> list[AgentAction]:
    """Lease up to ``max_actions`` of the key's cluster: pending ones and those whose lease expired, highest priority
    first, then oldest first.

    ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL) makes concurrent polls take disjoint rows; on SQLite the
    IMMEDIATE transaction serializes them. An action past its deadline expires; one whose last attempt's lease ran
    out fails.
    """
    max_actions = max(1, min(int(max_actions), 100))
    now = timezone.now()
    lease = timedelta(seconds=settings.AGENT_LEASE_SECONDS)
    with transaction.atomic():
        candidates = list(
            AgentAction.objects.select_for_update(skip_locked=True)
            .filter(cluster_id=api_key.cluster_id)
            .filter(Q(state=AgentAction.State.PENDING) | Q(state=AgentAction.State.LEASED, lease_expires_at__lte=now))
            .order_by("-priority", "created_at", "id")[:max_actions]
        )
        leased: list[AgentAction] = []
        for action in candidates:
            action.cluster = api_key.cluster
            if action.deadline <= now:
                _finish(
                    action, AgentAction.State.EXPIRED, "Deadline passed before the action completed.", now, "system"
                )
            elif action.attempts >= action.max_attempts:
                _finish(
                    action,
                    AgentAction.State.FAILED,
                    f"No result after {action.attempts} attempt(s); the last lease expired.",
                    now,
                    "system",
                )
            else:
                leased.append(action)
        if leased:
            AgentAction.objects.filter(pk__in=[a.pk for a in leased]).update(
                state=AgentAction.State.LEASED, attempts=F("attempts") + 1, lease_expires_at=now + lease, leased_at=now
            )
            for action in leased:
                action.state = AgentAction.State.LEASED
                action.attempts += 1
                action.lease_expires_at = now + lease
                action.leased_at = now
    return leased


def actions_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Close the open actions no agent will ever finish: past their deadline (expired), or whose last lease ran out
    (failed). Leasing does the same for a cluster whose agent polls; this sweep (beat, every minute) covers clusters
    whose agent never polls again, so that what waits on those actions learns they are over. Rows locked by a
    concurrent lease are skipped (they are being handled); returns how many actions were closed."""
    now = now or timezone.now()
    with transaction.atomic():
        dead = list(
            AgentAction.objects.select_for_update(skip_locked=True)
            .filter(
                Q(state__in=AgentAction.OPEN_STATES, deadline__lte=now)
                | Q(state=AgentAction.State.LEASED, lease_expires_at__lte=now, attempts__gte=F("max_attempts"))
            )
            .select_related("cluster")
            .order_by("deadline", "id")[:limit]
        )
        for action in dead:
            if action.deadline <= now:
                _finish(
                    action, AgentAction.State.EXPIRED, "Deadline passed before the action completed.", now, "system"
                )
            else:
                _finish(
                    action,
                    AgentAction.State.FAILED,
                    f"No result after {action.attempts} attempt(s); the last lease expired.",
                    now,
                    "system",
                )
    return len(dead)


def action_report_result(
    *, api_key: ApiKey, action_id: Any, status: str, message: str = "", output: Any = None
) -> tuple[AgentAction, bool]:
    """Record the agent's result (and what the action reports, ``output``). Idempotent: a result for a finished
    action changes nothing (returns changed=False). Another cluster's action does not exist for this key."""
    if status not in (AgentAction.State.SUCCEEDED, AgentAction.State.FAILED):
        raise ValidationFailed("status must be succeeded or failed.", fields={"status": ["succeeded or failed."]})
    if not isinstance(message, str):
        raise ValidationFailed("message must be a string.", fields={"message": ["Must be a string."]})
    if output is not None and not isinstance(output, dict):
        raise ValidationFailed("output must be an object.", fields={"output": ["Must be an object."]})
    try:
        action_id = int(action_id)
    except (TypeError, ValueError):
        raise NotFound("Not found.")
    with transaction.atomic():
        action = AgentAction.objects.select_for_update().filter(pk=action_id, cluster_id=api_key.cluster_id).first()
        if action is None:
            raise NotFound("Not found.")
        action.cluster = api_key.cluster
        if action.is_terminal:
            return action, False
        if action.state == AgentAction.State.PENDING:
            raise Conflict("The action has not been leased.", code="not_leased")
        _finish(action, status, message, timezone.now(), api_key, output)
    return action, True


# --- Events ----------------------------------------------------------------------------------------------------------
SPOT_NOTICE = timedelta(minutes=2)


def events_ingest(*, api_key: ApiKey, data: Any) -> list[AgentEvent]:
    """Store and audit the agent's events, then hand each to the registered event handler (the interruptions app:
    the same handling as the account's EventBridge queue, never twice for one interruption). Without a handler, a
    spot interruption queues cordon + drain of its node. All or nothing."""
    cleaned = validate_events(data)
    cluster = api_key.cluster
    now = timezone.now()
    # Events naming only the instance get their node from the snapshot (one query for all of them).
    by_instance = {}
    missing = {e["instance_id"] for e in cleaned if e["instance_id"] and not e["node"]}
    if missing:
        by_instance = dict(
            KubeNode.objects.filter(cluster=cluster, ec2_instance_id__in=missing).values_list("ec2_instance_id", "name")
        )
    stored = []
    with transaction.atomic():
        for item in cleaned:
            node = item["node"] or by_instance.get(item["instance_id"], "")
            event = AgentEvent.objects.create(
                cluster=cluster,
                type=item["type"],
                node_name=node,
                instance_id=item["instance_id"],
                occurred_at=item["occurred_at"],
                received_at=now,
                detail=item["detail"],
                api_key=api_key,
            )
            record(
                action=f"agent_event.{item['type']}",
                organization_id=cluster.organization_id,
                resource=event,
                after={"type": event.type, "node": node, "instance_id": event.instance_id, "detail": event.detail},
                actor=api_key,
            )
            handler = event_hooks.event_handler()
            if handler is not None:
                handler(event=event, action_deadline=item["action_deadline"], actor=api_key)
            elif event.type == AgentEvent.Type.SPOT_INTERRUPTION and node:
                deadline = max(item["action_deadline"] or now + SPOT_NOTICE, now + timedelta(seconds=30))
                reason = f"spot interruption notice (event {event.pk})"
                origin = f"agent_event:{event.pk}"
                enqueue_action(
                    cluster=cluster,
                    type="cordon",
                    target=node,
                    deadline=deadline,
                    reason=reason,
                    origin=origin,
                    actor=api_key,
                )
                enqueue_action(
                    cluster=cluster,
                    type="drain",
                    target=node,
                    params={"grace_period_seconds": 30, "timeout_seconds": 90},
                    deadline=deadline,
                    reason=reason,
                    origin=origin,
                    actor=api_key,
                )
            stored.append(event)
    return stored
