"""The executor against the simulated cluster: PDBs honoured, DaemonSet and mirror pods skipped, idempotent."""

from __future__ import annotations

from agent.backend import Node, Pod
from agent.executor import Executor
from agent.simulated import PodDisruptionBudget, SimulatedBackend, demo_cluster


def _web_cluster(clock, *, spare_node: bool) -> SimulatedBackend:
    sim = SimulatedBackend(clock=clock, reschedule_seconds=20)
    sim.add_node(Node("node-a", cpu_m=4000, memory_mib=8000, max_pods=30))
    if spare_node:
        sim.add_node(Node("node-b", cpu_m=4000, memory_mib=8000, max_pods=30))
    for i in range(3):
        sim.add_pod(Pod("default", f"web-abc-{i}", node="node-a", owner_kind="ReplicaSet", owner_name="web-abc",
                        labels={"app": "web"}))
    sim.add_pod(Pod("kube-system", "aws-node-x", node="node-a", owner_kind="DaemonSet", owner_name="aws-node"))
    sim.add_pod(Pod("kube-system", "kube-proxy-node-a", node="node-a", owner_kind="Node", mirror=True))
    sim.add_pod(Pod("default", "job-done", node="node-a", phase="Succeeded", owner_kind="Job"))
    sim.add_pdb(PodDisruptionBudget("default", "web", {"app": "web"}, min_available=2))
    return sim


def _drain(clock, deadline_in=600, **params):
    return {"id": 1, "type": "drain", "target": "node-a", "params": params, "deadline": clock.iso(deadline_in)}


def test_drain_honours_the_pdb_and_waits_for_replacements(clock):
    sim = _web_cluster(clock, spare_node=True)
    executor = Executor(sim, clock=clock, sleep=clock.sleep, eviction_retry_seconds=5, wait_poll_seconds=1)
    result = executor.execute(_drain(clock, timeout_seconds=300))
    assert result.status == "succeeded", result.message
    assert "evicted 3 pod(s)" in result.message
    # minAvailable 2 of 3: one eviction at a time, each after the previous replacement became ready (20 s).
    assert sim.min_healthy["default/web"] >= 2
    assert sim.blocked_evictions > 0
    assert clock.slept >= 40
    remaining = sim.list_pods(node="node-a")
    assert sorted(p.name for p in remaining) == ["aws-node-x", "job-done", "kube-proxy-node-a"]
    assert sim.get_node("node-a").unschedulable
    assert sum(1 for p in sim.list_pods(node="node-b") if p.labels.get("app") == "web") == 3


def test_drain_that_a_pdb_blocks_fails_at_the_deadline_without_breaking_the_budget(clock):
    sim = _web_cluster(clock, spare_node=False)  # replacements have nowhere to go
    executor = Executor(sim, clock=clock, sleep=clock.sleep, eviction_retry_seconds=5)
    start = clock.now
    result = executor.execute(_drain(clock, deadline_in=60, timeout_seconds=600))
    assert result.status == "failed"
    assert "PodDisruptionBudget" in result.message
    assert clock.now - start <= 60  # retried 429s until the action's deadline, not beyond
    assert sim.min_healthy["default/web"] == 2
    assert len([p for p in sim.list_pods(node="node-a") if p.labels.get("app") == "web"]) == 2


def test_drain_and_cordon_are_idempotent(clock):
    sim = _web_cluster(clock, spare_node=True)
    executor = Executor(sim, clock=clock, sleep=clock.sleep)
    assert executor.execute(_drain(clock)).status == "succeeded"
    patches = len(sim.patches)
    evictions = len(sim.evictions)
    again = executor.execute(_drain(clock))
    assert again.status == "succeeded"
    assert "no pods to evict" in again.message
    cordon = executor.execute({"id": 2, "type": "cordon", "target": "node-a"})
    assert (cordon.status, cordon.message) == ("succeeded", "node node-a already cordoned")
    assert (len(sim.patches), len(sim.evictions)) == (patches, evictions)
    assert executor.execute({"id": 3, "type": "uncordon", "target": "node-a"}).status == "succeeded"
    assert not sim.get_node("node-a").unschedulable
    gone = executor.execute({"id": 4, "type": "drain", "target": "node-zzz", "deadline": clock.iso(60)})
    assert gone.status == "succeeded"


def test_label_and_taint_patch_only_when_needed(clock):
    sim = _web_cluster(clock, spare_node=False)
    executor = Executor(sim, clock=clock, sleep=clock.sleep)
    label = {"id": 1, "type": "label", "target": "node-a", "params": {"labels": {"spot": "true", "old": None}}}
    assert executor.execute(label).status == "succeeded"
    assert sim.get_node("node-a").labels == {"spot": "true"}
    assert "already" in executor.execute(label).message
    taint = {"id": 2, "type": "taint", "target": "node-a",
             "params": {"key": "spot-interruption", "value": "soon", "effect": "NoSchedule"}}
    assert executor.execute(taint).status == "succeeded"
    assert sim.get_node("node-a").taints == [{"key": "spot-interruption", "value": "soon", "effect": "NoSchedule"}]
    assert "already" in executor.execute(taint).message
    untaint = {"id": 3, "type": "taint", "target": "node-a",
               "params": {"key": "spot-interruption", "effect": "NoSchedule", "remove": True}}
    assert executor.execute(untaint).status == "succeeded"
    assert sim.get_node("node-a").taints == []
    assert len(sim.patches) == 3


def test_evict_single_pod_and_unknown_action(clock):
    sim = _web_cluster(clock, spare_node=True)
    executor = Executor(sim, clock=clock, sleep=clock.sleep)
    result = executor.execute({"id": 1, "type": "evict", "target": "default/web-abc-0", "deadline": clock.iso(60)})
    assert result.status == "succeeded"
    assert not sim.pod_exists("default", "web-abc-0")
    assert executor.execute({"id": 2, "type": "evict", "target": "default/web-abc-0"}).status == "succeeded"
    assert executor.execute({"id": 3, "type": "reboot", "target": "x"}).status == "failed"


def test_demo_cluster_drains_a_node_under_its_pdb(clock):
    sim = demo_cluster(nodes=3, pods_per_node=5, clock=clock, reschedule_seconds=5)
    node = sim.list_nodes()[0].name
    executor = Executor(sim, clock=clock, sleep=clock.sleep, eviction_retry_seconds=2)
    result = executor.execute({"id": 1, "type": "drain", "target": node, "deadline": clock.iso(600)})
    assert result.status == "succeeded", result.message
    assert all(p.daemonset or p.mirror for p in sim.list_pods(node=node))
    assert sim.min_healthy["default/web"] >= sim.pdbs[0].min_available
