"""Agent protocol benchmark: N simulated agents (one cluster and API key each) posting snapshots and polling for
actions against a running server on PostgreSQL, compared with a trivial Django view (``/health``) on the same server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spotopt_bench \\
        .venv/bin/python bench/agents.py --agents 50 200 1000 --duration 15

By default it creates the database if needed, migrates it, seeds N clusters with a key and a few queued actions each,
and starts gunicorn on 127.0.0.1 itself (``--url`` to use a server you started; it must share ``DATABASE_URL``).
Loopback only; each phase is bounded by ``--duration`` seconds and ``--max-requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _db import ensure_database  # bench/ is the script's own directory


def seed(n: int, actions_per_agent: int, clusters_per_org: int) -> list[str]:
    """N clusters (``clusters_per_org`` per organization, each organization having its own audit chain) with one
    fresh key each; returns the raw keys."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
    django.setup()
    from accounts.models import Organization
    from agentapi.models import ApiKey, hash_key
    from agentapi.services import enqueue_action
    from clusters.models import Cluster

    stamp = int(time.time() * 1000)
    orgs = Organization.objects.bulk_create(
        [Organization(name=f"bench-{stamp}-{i}") for i in range((n + clusters_per_org - 1) // clusters_per_org)]
    )
    clusters = Cluster.objects.bulk_create(
        [
            Cluster(organization=orgs[i // clusters_per_org], name=f"bench-{stamp}-{i}", region="us-east-1")
            for i in range(n)
        ]
    )
    raws = []
    keys = []
    for cluster in clusters:
        raw, prefix = ApiKey.generate()
        raws.append(raw)
        keys.append(ApiKey(cluster=cluster, name="bench", prefix=prefix, key_hash=hash_key(raw)))
    ApiKey.objects.bulk_create(keys)
    for cluster in clusters:
        for j in range(actions_per_agent):
            enqueue_action(cluster=cluster, type="cordon", target=f"ip-10-0-0-{j}.ec2.internal", reason="bench")
    return raws


def snapshot_body(nodes: int, pods: int) -> bytes:
    from agent.runner import build_snapshot
    from agent.simulated import demo_cluster

    return json.dumps(build_snapshot(demo_cluster(nodes=nodes, pods_per_node=max(2, pods // max(1, nodes))))).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = os.environ | {
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "AGENT_RATE_LIMIT": "100000000/min",
        "API_RATE_LIMIT": "100000000/min",
        "DB_CONN_MAX_AGE": "600",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "spotopt.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--backlog",
            "4096",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.error_kinds: dict[str, dict[str, int]] = {}
        self.count = 0

    def add(self, kind: str, seconds: float, ok: bool, why: str = "") -> None:
        self.count += 1
        self.latencies.setdefault(kind, []).append(seconds)
        if not ok:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            kinds = self.error_kinds.setdefault(kind, {})
            kinds[why] = kinds.get(why, 0) + 1

    def summary(self, elapsed: float) -> dict:
        out = {}
        for kind, values in sorted(self.latencies.items()):
            values.sort()
            out[kind] = {
                "requests": len(values),
                "rps": round(len(values) / elapsed, 1),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 1),
                "errors": self.errors.get(kind, 0),
                "error_kinds": self.error_kinds.get(kind, {}),
            }
        return out


async def _timed(session, rec: Recorder, kind: str, method: str, url: str, **kwargs):
    started = time.perf_counter()
    ok = False
    data = None
    why = ""
    try:
        async with session.request(method, url, **kwargs) as response:
            data = await response.read()
            ok = response.status < 400
            why = str(response.status)
    except Exception as exc:  # noqa: BLE001 - a failed request is counted, not fatal to the benchmark
        why = type(exc).__name__
    rec.add(kind, time.perf_counter() - started, ok, why)
    return data if ok else None


async def run_agents(url: str, keys: list[str], body: bytes, duration: float, max_requests: int) -> tuple[dict, float]:
    import aiohttp

    rec = Recorder()
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=len(keys), force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def agent(raw: str) -> None:
            headers = {"Authorization": f"Api-Key {raw}", "Content-Type": "application/json"}
            while time.perf_counter() < deadline and rec.count < max_requests:
                await _timed(
                    session, rec, "snapshot", "POST", f"{url}/api/v1/agent/snapshot", data=body, headers=headers
                )
                for _ in range(3):  # actions are polled more often than snapshots are sent
                    if time.perf_counter() >= deadline or rec.count >= max_requests:
                        return
                    data = await _timed(
                        session, rec, "actions", "GET", f"{url}/api/v1/agent/actions?max=5", headers=headers
                    )
                    for action in json.loads(data)["actions"] if data else []:
                        await _timed(
                            session,
                            rec,
                            "result",
                            "POST",
                            f"{url}/api/v1/agent/actions/{action['id']}/result",
                            data=json.dumps({"status": "succeeded", "message": "bench"}),
                            headers=headers,
                        )

        started = time.perf_counter()
        await asyncio.gather(*(agent(k) for k in keys))
        return rec.summary(time.perf_counter() - started), time.perf_counter() - started


async def run_health(url: str, concurrency: int, duration: float, max_requests: int) -> dict:
    import aiohttp

    rec = Recorder()
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            while time.perf_counter() < deadline and rec.count < max_requests:
                await _timed(session, rec, "health", "GET", f"{url}/health")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return rec.summary(time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--max-requests", type=int, default=200_000, help="request budget per phase")
    parser.add_argument("--nodes", type=int, default=10, help="nodes per snapshot")
    parser.add_argument("--pods", type=int, default=100, help="pods per snapshot")
    parser.add_argument("--actions-per-agent", type=int, default=3)
    parser.add_argument("--clusters-per-org", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--url", help="use this running server instead of starting gunicorn")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database (it is created and migrated if needed)")
    ensure_database(database_url)
    body = snapshot_body(args.nodes, args.pods)
    proc, url = (None, args.url) if args.url else start_server(args.workers, args.threads)
    results = []
    try:
        for n in args.agents:
            keys = seed(n, args.actions_per_agent, args.clusters_per_org)
            agents, _ = asyncio.run(run_agents(url, keys, body, args.duration, args.max_requests))
            health = asyncio.run(run_health(url, n, args.duration, args.max_requests))
            results.append({"agents": n, **agents, **health})
            print(f"\nN={n} agents (snapshot {len(body) // 1024} KiB: {args.nodes} nodes, {args.pods} pods)")
            print(f"{'endpoint':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for kind in ("snapshot", "actions", "result", "health"):
                if kind in results[-1]:
                    r = results[-1][kind]
                    print(
                        f"{kind:<10} {r['requests']:>9} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
                        f"{r['errors']:>7} {r['error_kinds'] or ''}"
                    )
            sys.stdout.flush()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
