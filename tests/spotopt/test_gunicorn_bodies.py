"""Request bodies under a real gunicorn: a chunked body (no Content-Length) is read, not taken as empty, and the
body limit holds for it as for a declared one. The endpoint used answers from the body alone (a parse error, a
validation error or a 413), so the server needs no database."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 4096


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[int]:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    } | {
        "DJANGO_SETTINGS_MODULE": "spotopt.settings",
        "VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "DATA_UPLOAD_MAX_MEMORY_SIZE": str(LIMIT),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "spotopt.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _chunks(body: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _post(port: int, body: bytes, *, chunked: bool) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if chunked:
            conn.request("POST", "/api/v1/auth/login", body=_chunks(body), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/api/v1/auth/login", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_chunked_body_is_read_not_taken_as_empty(server):
    status, body = _post(server, b'{"email": "not json', chunked=True)
    # Taken as empty, this would be "email: This field is required."; read, it is the JSON error.
    assert status == 400
    assert body["error"]["code"] == "parse_error"


def test_chunked_body_reaches_validation_whole(server):
    status, body = _post(server, json.dumps({"email": "someone@example.com" + " " * 500}).encode(), chunked=True)
    # Empty, both fields would be missing; read whole, only the password is.
    assert status == 400
    assert set(body["error"]["fields"]) == {"password"}


def test_chunked_body_over_the_limit_is_413(server):
    status, body = _post(server, json.dumps({"email": "a" * (LIMIT + 10)}).encode(), chunked=True)
    assert status == 413
    assert body == {"error": {"code": "payload_too_large", "message": f"Request body larger than {LIMIT} bytes."}}


def test_declared_body_over_the_limit_is_413(server):
    status, body = _post(server, json.dumps({"email": "a" * (LIMIT + 10)}).encode(), chunked=False)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


def test_deep_chunked_body_is_400(server):
    status, body = _post(server, b"[" * 1000 + b"]" * 1000, chunked=True)
    assert status == 400
    assert body["error"]["code"] == "parse_error"
