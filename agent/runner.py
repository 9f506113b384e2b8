"""The agent loop: snapshot, lease, execute, report; back off while the platform is unreachable."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from . import __version__
from .backend import ClusterBackend
from .executor import Executor
from .platform import PlatformClient, PlatformError, PlatformUnavailable, Unauthorized

logger = logging.getLogger("agent")


def build_snapshot(backend: ClusterBackend) -> dict:
    return {
        "agent_version": __version__,
        "kubernetes_version": backend.version(),
        "nodes": [n.as_snapshot() for n in backend.list_nodes()],
        "pods": [p.as_snapshot() for p in backend.list_pods()],
    }


class Agent:
    def __init__(
        self,
        platform: PlatformClient,
        backend: ClusterBackend,
        executor: Executor | None = None,
        *,
        max_actions: int = 5,
        poll_seconds: float = 30.0,
        idle_poll_seconds: float | None = None,
        backoff_max: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.backend = backend
        self.executor = executor or Executor(backend)
        self.max_actions = max_actions
        self.poll_seconds = poll_seconds
        # Actions are polled more often than snapshots are sent: an interruption drain cannot wait 30 s.
        self.idle_poll_seconds = idle_poll_seconds if idle_poll_seconds is not None else min(5.0, poll_seconds)
        self.backoff_max = backoff_max
        self.clock = clock
        self._next_snapshot = 0.0
        self._backoff = 0.0
        self._unreported: dict[int, tuple[str, str, dict | None]] = {}
        self._ready: dict[str, bool] = {}
        self.stats = {"snapshots": 0, "actions": 0, "reports": 0, "errors": 0}

    def _flush_reports(self) -> None:
        for action_id, (status, message, output) in list(self._unreported.items()):
            try:
                if output is None:
                    self.platform.report(action_id, status, message)
                else:
                    self.platform.report(action_id, status, message, output=output)
                self.stats["reports"] += 1
            except PlatformUnavailable:
                raise
            except PlatformError as exc:
                # 404/409: not ours or no longer open. Reporting again cannot help; the platform is the judge.
                logger.warning("result of action %s not accepted: %s", action_id, exc)
            del self._unreported[action_id]

    def _node_events(self, snapshot: dict) -> list[dict]:
        events = []
        now = datetime.now(UTC).isoformat()
        for node in snapshot["nodes"]:
            was = self._ready.get(node["name"])
            if was and not node["ready"]:
                instance = node["provider_id"].rsplit("/", 1)[-1] if node["provider_id"] else ""
                events.append(
                    {"type": "node-not-ready", "node": node["name"], "instance_id": instance, "occurred_at": now}
                )
            self._ready[node["name"]] = node["ready"]
        return events

    def _snapshot(self) -> None:
        snapshot = build_snapshot(self.backend)
        response = self.platform.snapshot(snapshot)
        self.stats["snapshots"] += 1
        self.poll_seconds = float(response.get("next_poll_seconds") or self.poll_seconds)
        events = self._node_events(snapshot)
        if events:
            self.platform.events(events)

    def run_once(self) -> float:
        """One round; returns how long to wait before the next."""
        try:
            self._flush_reports()
            sync = getattr(self.backend, "sync", None)
            if sync is not None:
                sync()  # a simulated cluster that mirrors a cloud catches up with it first
            if self.clock() >= self._next_snapshot:
                self._snapshot()
                self._next_snapshot = self.clock() + self.poll_seconds
            actions = self.platform.lease(self.max_actions)
            for action in actions:
                logger.info("executing action %s: %s %s", action["id"], action["type"], action["target"])
                result = self.executor.execute(action)
                self.stats["actions"] += 1
                logger.info("action %s %s: %s", action["id"], result.status, result.message)
                self._unreported[action["id"]] = (result.status, result.message, result.output)
                self._flush_reports()
        except (PlatformUnavailable, Unauthorized) as exc:
            # Unreachable, overloaded or our key revoked: exponential back-off with jitter, results kept to resend.
            self.stats["errors"] += 1
            self._backoff = min(self.backoff_max, max(1.0, self._backoff * 2))
            wait = self._backoff * random.uniform(0.5, 1.0)
            logger.warning("platform unavailable (%s); retrying in %.1fs", exc, wait)
            return wait
        self._backoff = 0.0
        return 0.0 if actions else min(self.idle_poll_seconds, max(0.0, self._next_snapshot - self.clock()))

    def run(self, stop: threading.Event | None = None, *, iterations: int | None = None) -> None:
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (iterations is None or done < iterations):
            wait = self.run_once()
            done += 1
            if wait:
                stop.wait(wait)
