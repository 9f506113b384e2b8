"""Property-based fuzzing of the whole public API (``make fuzz``; CI runs it on PostgreSQL).

Recreates the PostgreSQL database named by ``DATABASE_URL``, migrates it, seeds one organization through the services
(``tests/fuzz/seed.py``), starts moto's server (the AWS the product talks to) and gunicorn on free ports, then runs
schemathesis over the OpenAPI document twice: with the seeded user's Bearer token and with the seeded cluster's
agent ``Api-Key``. A run fails on any 5xx, any undocumented status code or content type, and any response that does
not match its schema. Seeded and with fixed example counts, so a failure reproduces with the same command; the
reports (JUnit, and a pytest file that replays each failure) land in ``var/fuzz/``.

Environment: ``DATABASE_URL`` (required, PostgreSQL; the database is dropped and recreated), ``REDIS_URL`` (optional),
``FUZZ_SEED`` (default 20261129), ``FUZZ_MAX_EXAMPLES`` (per operation and phase, default 25).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REPORTS = ROOT / "var" / "fuzz"
SEED = os.environ.get("FUZZ_SEED", "20261129")
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "25")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# The agent run covers the agent endpoints; every other operation answers an agent key with a documented 401, which
# the Bearer run's negative cases already exercise.
AGENT_PATHS = "^/api/v1/agent/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _recreate_database(url: str) -> None:
    import psycopg2

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    conn = psycopg2.connect(url.replace(parsed.path, "/postgres", 1))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _schemathesis(base: str, *, header: str, label: str, extra: list[str]) -> int:
    command = [
        str(BIN / "schemathesis"),
        "run",
        f"{base}/api/schema/?format=json",
        "--url",
        base,
        "--header",
        header,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--seed",
        SEED,
        "--max-examples",
        MAX_EXAMPLES,
        "--generation-database",
        "none",
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "junit,pytest",
        "--report-junit-path",
        str(REPORTS / f"{label}.junit.xml"),
        "--report-pytest-path",
        str(REPORTS / f"{label}_reproduce.py"),
        *extra,
    ]
    print(f"== fuzz: {label}", flush=True)
    # Run from the reports directory: schemathesis keeps its cache (.schemathesis/) in the working directory.
    return subprocess.call(command, cwd=REPORTS)


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.stderr.write("make fuzz needs DATABASE_URL pointing at PostgreSQL (its database is recreated).\n")
        return 2
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    _recreate_database(database_url)

    from moto.server import ThreadedMotoServer

    with contextlib.ExitStack() as cleanup:
        moto_port = _free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        cleanup.callback(moto.stop)
        var_dir = tempfile.mkdtemp(prefix="spotopt-fuzz-")
        cleanup.callback(shutil.rmtree, var_dir, ignore_errors=True)
        env = os.environ | {
            "DJANGO_SETTINGS_MODULE": "spotopt.settings",
            "ENVIRONMENT": "development",
            "DEBUG": "false",
            "VAR_DIR": var_dir,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CELERY_BROKER_URL": "memory://",
            "BCRYPT_ROUNDS": "4",
            # Rate limits raised for the run: the fuzzer must reach the code behind them, not the 429.
            "API_RATE_LIMIT": "1000000/min",
            "AGENT_RATE_LIMIT": "1000000/min",
            "LOGIN_RATE_LIMIT": "1000000/min",
            "LOGIN_ADDRESS_RATE_LIMIT": "1000000/min",
            "LOG_LEVEL": "ERROR",
        }
        python = str(BIN / "python")
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        seeded = subprocess.run(
            [python, "-m", "tests.fuzz.seed"], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
        )
        credentials = json.loads(seeded.stdout.strip().splitlines()[-1])

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = ["-m", "gunicorn", "spotopt.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        server = subprocess.Popen(
            [python, *gunicorn, "--threads", "4", "--timeout", "60", "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        cleanup.callback(server.wait, timeout=30)
        cleanup.callback(os.killpg, server.pid, signal.SIGTERM)
        _wait_for(f"{base}/health")
        # The agent run first: the Bearer run may revoke keys it happens to name.
        failures = _schemathesis(
            base,
            header=f"Authorization: Api-Key {credentials['api_key']}",
            label="agent",
            extra=["--include-path-regex", AGENT_PATHS],
        )
        bearer = f"Authorization: Bearer {credentials['token']}"
        failures += _schemathesis(base, header=bearer, label="bearer", extra=[])
    print(f"== fuzz: {'failed' if failures else 'passed'} (seed {SEED}, {MAX_EXAMPLES} examples per operation)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
