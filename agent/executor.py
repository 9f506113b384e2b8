"""Carries out one action against a cluster backend and says how it went. Every action is idempotent: a lease can
be handed out again after a crash, so cordoning a cordoned node or draining an empty one succeeds and changes
nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .backend import ClusterBackend, EvictionBlocked, Node, Pod, Workload

logger = logging.getLogger("agent.executor")

DEFAULT_DRAIN_TIMEOUT = 600
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class Result:
    status: str  # "succeeded" | "failed"
    message: str
    output: dict | None = None  # what the action reports back (``scale``: the workloads and their previous values)

    @classmethod
    def ok(cls, message: str, output: dict | None = None) -> Result:
        return cls("succeeded", message, output)

    @classmethod
    def fail(cls, message: str) -> Result:
        return cls("failed", message)


def parse_deadline(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def evictable(pod: Pod) -> bool:
    """kubectl drain's rules: DaemonSet pods come back at once and mirror pods cannot be evicted; finished pods hold
    nothing."""
    return not (pod.daemonset or pod.mirror or pod.phase in TERMINAL_PHASES)


class Executor:
    """``clock`` is wall-clock seconds (deadlines are absolute UTC); ``sleep`` waits. Both are injectable so the
    simulated cluster can run minutes of PDB back-off in milliseconds."""

    def __init__(
        self,
        backend: ClusterBackend,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        eviction_retry_seconds: float = 5.0,
        wait_poll_seconds: float = 2.0,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.sleep = sleep
        self.eviction_retry_seconds = eviction_retry_seconds
        self.wait_poll_seconds = wait_poll_seconds

    def execute(self, action: dict) -> Result:
        handler = getattr(self, f"_do_{action.get('type')}", None)
        if handler is None:
            return Result.fail(f"unknown action type {action.get('type')!r}")
        try:
            return handler(action["target"], action.get("params") or {}, parse_deadline(action.get("deadline")))
        except Exception as exc:  # any failure is reported to the platform, not fatal to the agent
            logger.exception("action %s failed", action.get("id"))
            return Result.fail(f"{type(exc).__name__}: {exc}"[:2000])

    # --- node patches -----------------------------------------------------------------------------------------------
    def _node_or_none(self, name: str) -> Node | None:
        return self.backend.get_node(name)

    def _do_cordon(self, target: str, params: dict, deadline: float | None) -> Result:
        node = self._node_or_none(target)
        if node is None:
            return Result.ok(f"node {target} is gone; nothing to cordon")
        if node.unschedulable:
            return Result.ok(f"node {target} already cordoned")
        self.backend.patch_node(target, {"spec": {"unschedulable": True}})
        return Result.ok(f"cordoned {target}")

    def _do_uncordon(self, target: str, params: dict, deadline: float | None) -> Result:
        node = self._node_or_none(target)
        if node is None:
            return Result.fail(f"node {target} not found")
        if not node.unschedulable:
            return Result.ok(f"node {target} already schedulable")
        self.backend.patch_node(target, {"spec": {"unschedulable": False}})
        return Result.ok(f"uncordoned {target}")

    def _do_label(self, target: str, params: dict, deadline: float | None) -> Result:
        node = self._node_or_none(target)
        if node is None:
            return Result.fail(f"node {target} not found")
        wanted: dict[str, str | None] = params.get("labels") or {}
        changes = {k: v for k, v in wanted.items() if node.labels.get(k) != v}
        if not changes:
            return Result.ok(f"labels of {target} already as requested")
        self.backend.patch_node(target, {"metadata": {"labels": changes}})
        return Result.ok(f"labelled {target}: {', '.join(sorted(changes))}")

    def _do_taint(self, target: str, params: dict, deadline: float | None) -> Result:
        node = self._node_or_none(target)
        if node is None:
            return Result.fail(f"node {target} not found")
        key, effect = params["key"], params["effect"]
        others = [t for t in node.taints if not (t.get("key") == key and t.get("effect") == effect)]
        if params.get("remove"):
            taints = others
        else:
            taints = [*others, {"key": key, "value": str(params.get("value") or ""), "effect": effect}]
        normal = lambda ts: sorted((t["key"], t.get("value") or "", t["effect"]) for t in ts)  # noqa: E731
        if normal(taints) == normal(node.taints):
            return Result.ok(f"taints of {target} already as requested")
        self.backend.patch_node(target, {"spec": {"taints": taints}})
        return Result.ok(f"{'removed' if params.get('remove') else 'set'} taint {key}:{effect} on {target}")

    # --- evictions --------------------------------------------------------------------------------------------------
    def _limit(self, params: dict, deadline: float | None) -> float:
        timeout = params.get("timeout_seconds")
        limit = self.clock() + (timeout if timeout is not None else DEFAULT_DRAIN_TIMEOUT)
        return min(limit, deadline) if deadline else limit

    def _evict_all(self, pods: list[Pod], grace: int | None, limit: float) -> tuple[list[Pod], list[Pod]]:
        """Evict ``pods``, retrying those a PDB protects (429) until ``limit``. Returns (evicted, still blocked)."""
        pending = list(pods)
        evicted: list[Pod] = []
        while pending:
            blocked = []
            for pod in pending:
                try:
                    self.backend.evict_pod(pod.namespace, pod.name, grace)
                    evicted.append(pod)
                except EvictionBlocked:
                    blocked.append(pod)
            pending = blocked
            if not pending or self.clock() + self.eviction_retry_seconds > limit:
                break
            self.sleep(self.eviction_retry_seconds)
        return evicted, pending

    def _wait_gone(self, pods: list[Pod], limit: float) -> list[Pod]:
        remaining = [p for p in pods if self.backend.pod_exists(p.namespace, p.name)]
        while remaining and self.clock() + self.wait_poll_seconds <= limit:
            self.sleep(self.wait_poll_seconds)
            remaining = [p for p in remaining if self.backend.pod_exists(p.namespace, p.name)]
        return remaining

    def _do_drain(self, target: str, params: dict, deadline: float | None) -> Result:
        limit = self._limit(params, deadline)
        node = self._node_or_none(target)
        if node is None:
            return Result.ok(f"node {target} is gone; nothing to drain")
        if not node.unschedulable:
            self.backend.patch_node(target, {"spec": {"unschedulable": True}})
        pods = self.backend.list_pods(node=target)
        to_evict = [p for p in pods if evictable(p)]
        skipped = len(pods) - len(to_evict)
        if not to_evict:
            return Result.ok(f"drained {target}: no pods to evict ({skipped} daemonset/mirror/finished skipped)")
        evicted, blocked = self._evict_all(to_evict, params.get("grace_period_seconds"), limit)
        if blocked:
            names = ", ".join(p.key for p in blocked[:10])
            return Result.fail(
                f"drain of {target} timed out: {len(blocked)} pod(s) still protected by a PodDisruptionBudget "
                f"({names}); {len(evicted)} evicted"
            )
        lingering = self._wait_gone(evicted, limit)
        if lingering:
            return Result.fail(
                f"drain of {target} timed out: {len(lingering)} evicted pod(s) still terminating "
                f"({', '.join(p.key for p in lingering[:10])})"
            )
        return Result.ok(
            f"drained {target}: evicted {len(evicted)} pod(s), skipped {skipped} daemonset/mirror/finished"
        )

    def _do_evict(self, target: str, params: dict, deadline: float | None) -> Result:
        namespace, _, name = target.partition("/")
        if not self.backend.pod_exists(namespace, name):
            return Result.ok(f"pod {target} is gone")
        limit = self._limit(params, deadline)
        pod = Pod(namespace=namespace, name=name)
        evicted, blocked = self._evict_all([pod], params.get("grace_period_seconds"), limit)
        if blocked:
            return Result.fail(f"eviction of {target} timed out: a PodDisruptionBudget does not allow it")
        if self._wait_gone(evicted, limit):
            return Result.fail(f"pod {target} evicted but still terminating")
        return Result.ok(f"evicted {target}")

    # --- workloads --------------------------------------------------------------------------------------------------
    def _do_scale(self, target: str, params: dict, deadline: float | None) -> Result:
        """``{"select": "all", "dry_run": true, "exclude_namespaces": [...]}`` reports every Deployment and
        StatefulSet (replicas) and CronJob (suspend) and changes nothing; ``{"workloads": [...]}`` sets each listed
        one and reports its previous value (a workload that is gone is reported with ``"found": false``)."""
        if params.get("select") == "all":
            excluded = set(params.get("exclude_namespaces") or ())
            found = [w for w in self.backend.list_workloads() if w.namespace not in excluded]
            return Result.ok(f"listed {len(found)} workload(s)", {"workloads": [w.as_report() for w in found]})
        report: list[dict] = []
        changed = missing = 0
        for wanted in params.get("workloads") or ():
            kind, namespace, name = wanted["kind"], wanted["namespace"], wanted["name"]
            current: Workload | None = self.backend.get_workload(kind, namespace, name)
            if current is None:
                missing += 1
                report.append({"kind": kind, "namespace": namespace, "name": name, "found": False})
                continue
            report.append(current.as_report() | {"found": True})
            if kind == "CronJob":
                if bool(current.suspend) != bool(wanted["suspend"]):
                    self.backend.set_suspend(namespace, name, bool(wanted["suspend"]))
                    changed += 1
            elif current.replicas != wanted["replicas"]:
                self.backend.set_replicas(kind, namespace, name, int(wanted["replicas"]))
                changed += 1
        return Result.ok(f"scaled {changed} of {len(report)} workload(s); {missing} not found", {"workloads": report})
