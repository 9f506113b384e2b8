"""The agent loop: back-off while the platform is unreachable, results kept and resent."""

from __future__ import annotations

import socket

from agent.executor import Executor
from agent.platform import PlatformClient, PlatformError, PlatformUnavailable
from agent.runner import Agent
from agent.simulated import demo_cluster


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_agent_backs_off_exponentially_while_the_platform_is_unreachable():
    sim = demo_cluster(nodes=1)
    agent = Agent(PlatformClient(f"http://127.0.0.1:{_closed_port()}", "spk_00000000.x", timeout=1), sim,
                  backoff_max=8)
    waits = [agent.run_once() for _ in range(6)]
    assert all(w > 0 for w in waits)
    assert waits[-1] <= 8
    assert agent._backoff == 8
    assert agent.stats["errors"] == 6


class FlakyPlatform:
    """Leases one cordon, then fails every report until ``up`` is set."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.up = False
        self.reports: list[tuple[int, str]] = []
        self.leased = False

    def snapshot(self, body):
        return {"next_poll_seconds": 30}

    def lease(self, max_actions):
        if self.leased:
            return []
        self.leased = True
        return [{"id": 41, "type": "cordon", "target": self.node, "params": {}}]

    def report(self, action_id, status, message):
        if not self.up:
            raise PlatformUnavailable("HTTP 503", 503)
        self.reports.append((action_id, status))
        return {}

    def events(self, events):
        return {}


def test_results_survive_an_outage_and_are_reported_once_the_platform_is_back():
    sim = demo_cluster(nodes=1)
    platform = FlakyPlatform(sim.list_nodes()[0].name)
    agent = Agent(platform, sim, Executor(sim))
    assert agent.run_once() > 0  # executed, report failed: back off
    assert sim.get_node(platform.node).unschedulable
    assert platform.reports == []
    platform.up = True
    agent.run_once()
    assert platform.reports == [(41, "succeeded")]
    agent.run_once()
    assert platform.reports == [(41, "succeeded")]


def test_a_rejected_result_is_dropped_not_retried_forever():
    sim = demo_cluster(nodes=1)
    platform = FlakyPlatform(sim.list_nodes()[0].name)

    def reject(*args):
        raise PlatformError("HTTP 404: Not found.", 404)

    platform.report = reject
    agent = Agent(platform, sim, Executor(sim))
    agent.run_once()
    assert agent._unreported == {}
