"""Webhook notifications: Slack-compatible JSON posted to the organization's URL, failures raised for the task's
retries, queued only after the transition commits, and never when no URL is set."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest

from optimization.models import NotificationSettings, OptimizationJob
from optimization.services import notifications
from optimization.services.jobs import job_transition
from spotopt.errors import ValidationFailed
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook():
    received: list[dict] = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, status
    server.shutdown()


def test_a_failed_job_posts_slack_json_after_commit(hook, django_capture_on_commit_callbacks):
    url, received, _ = hook
    cluster = ClusterFactory()
    notifications.notification_settings_update(organization=cluster.organization, webhook_url=url, actor="system")
    job = OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="draining")
    with mock.patch("optimization.services.notifications.current_app.send_task") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            job_transition(job=job, to="failed", error="Draining node-1 was blocked")
        send.assert_not_called()  # nothing leaves before the transition commits
        for callback in callbacks:
            callback()
    (name,), kwargs = send.call_args
    assert name == "optimization.tasks.deliver_webhook"
    org_id, payload = kwargs["args"]
    assert notifications.webhook_deliver(organization_id=org_id, payload=payload) is True
    assert received[0]["text"].startswith(f"Optimization job #{job.pk} on cluster {cluster.name}")
    assert "failed" in received[0]["text"] and "blocked" in received[0]["text"]
    assert received[0]["blocks"][0]["type"] == "section"


def test_a_webhook_error_is_raised_for_the_retry(hook):
    url, _, status = hook
    cluster = ClusterFactory()
    notifications.notification_settings_update(organization=cluster.organization, webhook_url=url)
    status["code"] = 500
    with pytest.raises(notifications.WebhookFailed):
        notifications.webhook_deliver(organization_id=cluster.organization_id, payload={"text": "x"})


def test_no_url_no_notification():
    cluster = ClusterFactory()
    job = OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="waiting_ready")
    with mock.patch("optimization.services.notifications.current_app.send_task") as send:
        job_transition(job=job, to="rolled_back", error="x")
    send.assert_not_called()
    assert notifications.webhook_deliver(organization_id=cluster.organization_id, payload={}) is False


def test_webhook_url_is_validated():
    cluster = ClusterFactory()
    with pytest.raises(ValidationFailed):
        notifications.notification_settings_update(organization=cluster.organization, webhook_url="javascript:x")
    assert not NotificationSettings.objects.exists()
