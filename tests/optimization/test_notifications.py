"""Webhook notifications: the organization's URL set through the API and the console (validated, masked in answers and
in the audit log, invisible to other organizations), Slack-compatible JSON posted to a real local HTTP server after
the transition commits, failures retried with backoff by the task, and never when no URL is set."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest

from audit.models import AuditLog
from optimization import tasks
from optimization.models import NotificationSettings, OptimizationJob
from optimization.services import notifications
from optimization.services.jobs import job_transition
from spotopt.errors import ValidationFailed
from tests.factories import ClusterFactory

SECRET_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXXabcd"

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(settings):
    settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = True  # the test server listens on 127.0.0.1
    received: list[dict] = []
    status = {"code": 200, "codes": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(status["codes"].pop(0) if status["codes"] else status["code"])
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


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://files.example.com/hook",
        "https://",
        "hooks.slack.com/services/x",
        "https://example.com/" + "a" * 500,
        "http://169.254.169.254/latest/meta-data/",
        12,
    ],
)
def test_webhook_url_is_validated(url, settings):
    settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = False
    cluster = ClusterFactory()
    with pytest.raises(ValidationFailed) as raised:
        notifications.notification_settings_update(organization=cluster.organization, webhook_url=url)
    assert "webhook_url" in raised.value.fields
    assert str(url) not in raised.value.message  # the refused value is not repeated
    assert not NotificationSettings.objects.exists()
    assert not AuditLog.objects.filter(action="notification_settings.updated").exists()


def test_private_addresses_only_when_allowed(settings):
    cluster = ClusterFactory()
    settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:9000/hook", "http://10.0.0.5/hook", "http://localhost/hook"):
        with pytest.raises(ValidationFailed):
            notifications.notification_settings_update(organization=cluster.organization, webhook_url=url)
    settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = True
    row = notifications.notification_settings_update(
        organization=cluster.organization, webhook_url="http://10.0.0.5/hook"
    )
    assert row.webhook_url == "http://10.0.0.5/hook"
    # the link-local metadata address is refused whatever the setting
    with pytest.raises(ValidationFailed):
        notifications.notification_settings_update(
            organization=cluster.organization, webhook_url="http://169.254.169.254/"
        )


def test_delivery_to_a_refused_address_is_skipped_not_retried(settings, caplog):
    cluster = ClusterFactory()
    NotificationSettings.objects.create(organization=cluster.organization, webhook_url="http://127.0.0.1:9/secretpath")
    settings.OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = False
    with caplog.at_level(logging.WARNING):
        assert notifications.webhook_deliver(organization_id=cluster.organization_id, payload={"text": "x"}) is False
    assert "secretpath" not in caplog.text and "127.0.0.1" in caplog.text


def test_api_sets_reads_masked_and_clears_the_webhook(auth_client, user, other_client, caplog):
    url = "/api/v1/notifications"
    assert auth_client.get(url).json() == {"webhook_set": False, "webhook_url": "", "updated_at": None}
    with caplog.at_level(logging.DEBUG):
        response = auth_client.put(url, {"webhook_url": SECRET_URL}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["webhook_set"] is True and body["webhook_url"] == "https://hooks.slack.com/…abcd"
    assert "secret" not in json.dumps(auth_client.get(url).json())
    assert NotificationSettings.objects.get(organization=user.organization).webhook_url == SECRET_URL
    # audited, with the masked URL only; nothing logged carries it
    entry = AuditLog.objects.get(action="notification_settings.updated")
    assert entry.after == {"webhook_set": True, "webhook": "https://hooks.slack.com/…abcd"}
    assert "secret" not in json.dumps([entry.before, entry.after]) and "secret" not in caplog.text
    # another organization sees its own (empty) settings, never this one
    assert other_client.get(url).json()["webhook_set"] is False
    assert other_client.put(url, {"webhook_url": ""}, format="json").status_code == 200
    assert NotificationSettings.objects.get(organization=user.organization).webhook_url == SECRET_URL
    # cleared with ""
    assert auth_client.put(url, {"webhook_url": ""}, format="json").json()["webhook_set"] is False
    assert AuditLog.objects.filter(action="notification_settings.updated").count() == 3


@pytest.mark.parametrize(
    "body", [{}, {"webhook_url": "ftp://x.example.com/"}, {"webhook_url": ["https://a.example.com"]}, "nonsense"]
)
def test_api_bad_input_is_a_400_in_the_error_shape(auth_client, user, body):
    NotificationSettings.objects.create(organization=user.organization, webhook_url=SECRET_URL)
    response = auth_client.put("/api/v1/notifications", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert ("webhook_url" if isinstance(body, dict) else "non_field_errors") in error["fields"]
    assert NotificationSettings.objects.get(organization=user.organization).webhook_url == SECRET_URL


def test_api_needs_a_login(api_client):
    assert api_client.get("/api/v1/notifications").status_code == 401


def test_console_sets_shows_masked_and_removes_the_webhook(client, user):
    client.force_login(user)
    page = client.get("/optimization/notifications/")
    assert page.status_code == 200 and b"Current webhook: none" in page.content
    response = client.post("/optimization/notifications/", {"webhook_url": SECRET_URL})
    assert response.status_code == 302
    page = client.get("/optimization/notifications/")
    assert "https://hooks.slack.com/…abcd".encode() in page.content and b"XXXXsecret" not in page.content
    bad = client.post("/optimization/notifications/", {"webhook_url": "ftp://x.example.com/"})
    assert bad.status_code == 200 and b"Not a valid http(s) URL." in bad.content
    assert NotificationSettings.objects.get(organization=user.organization).webhook_url == SECRET_URL
    client.post("/optimization/notifications/", {"webhook_url": "", "clear": "1"})
    assert NotificationSettings.objects.get(organization=user.organization).webhook_url == ""


@pytest.fixture(autouse=True)
def worker_semantics(monkeypatch):
    """Eager task runs keep a worker's semantics: a failure is the task's result, not raised into the caller."""
    monkeypatch.setitem(tasks.deliver_webhook.app.conf, "task_eager_propagates", False)


def _as_worker(send):
    """send_task's stand-in: run the task as a worker would (eagerly, retries included)."""

    def run(name, args):
        assert name == notifications.DELIVER_TASK
        send.append(tasks.deliver_webhook.apply(args=args, throw=False))

    return run


def test_a_rolled_back_job_reaches_a_real_server_after_retries(hook, django_capture_on_commit_callbacks):
    url, received, status = hook
    cluster = ClusterFactory()
    notifications.notification_settings_update(organization=cluster.organization, webhook_url=url)
    job = OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="waiting_ready")
    status["codes"] = [503, 500]  # the chat server fails twice, then accepts
    results: list = []
    with mock.patch("optimization.services.notifications.current_app.send_task", side_effect=_as_worker(results)):
        with django_capture_on_commit_callbacks(execute=True):
            job_transition(job=job, to="rolled_back", error="not Ready")
    assert [r.successful() for r in results] == [True] and results[0].result is True
    assert len(received) == 3 and all(r["job"]["id"] == job.pk for r in received)
    assert "was rolled back" in received[-1]["text"]
    job.refresh_from_db()
    assert job.state == "rolled_back"


def test_a_webhook_that_hangs_or_fails_never_holds_the_job(hook, django_capture_on_commit_callbacks):
    url, received, status = hook
    cluster = ClusterFactory()
    notifications.notification_settings_update(organization=cluster.organization, webhook_url=url)
    job = OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="draining")
    status["code"] = 500
    with mock.patch(
        "optimization.services.notifications.current_app.send_task", side_effect=ConnectionError("broker down")
    ):
        start = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            job_transition(job=job, to="failed", error="blocked")
        assert time.monotonic() - start < 2
    job.refresh_from_db()
    assert job.state == "failed" and received == []
    # the task gives up after its retries with the error, never touching the job
    result = tasks.deliver_webhook.apply(args=[cluster.organization_id, {"text": "x"}], throw=False)
    assert result.failed() and isinstance(result.result, notifications.WebhookFailed)
    assert len(received) == tasks.deliver_webhook.max_retries + 1
    assert tasks.deliver_webhook.retry_backoff and tasks.deliver_webhook.retry_backoff_max
